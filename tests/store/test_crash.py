"""The crash bound: a writer killed with SIGKILL mid-run loses at most one flush interval,
and the next open marks its run interrupted with the partial text intact."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import statistics
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tui.store import Store
from tui.store.store import FLUSH_INTERVAL_S
from tui.stream.events import RawEvent, TextDelta

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import asyncio, sys, time
from tui.config import SessionConfig, StoreConfig
from tui.store import Store
from tui.stream.events import Connecting, RawEvent, TextDelta

async def main():
    store = await Store.open(sys.argv[1], retention=StoreConfig(keep_raw_events=sys.argv[2]))
    session = SessionConfig(name="crash", model="m", prompt="stream until killed")
    run_id = await store.start_run(session, prompt=session.prompt)
    t0 = time.monotonic()
    print("run", run_id, repr(time.time()), flush=True)
    # set after the run line: a flush reported from the writer's thread could cut into it
    store.on_flush = lambda n: print("flushed", n, repr(time.time()), flush=True)
    store.add_event(run_id, Connecting(0.0, 1, "POST", "http://x/v1/responses"))
    i = 0
    while True:  # ~20 token pairs per millisecond, as fast a stream as any server's
        for _ in range(20):
            t = time.monotonic() - t0
            store.add_event(run_id, TextDelta(t, f"w{i} "))
            store.add_event(run_id, RawEvent(t, 1, "response.output_text.delta", "{}"))
            i += 1
        await asyncio.sleep(0.001)

asyncio.run(main())
"""


@pytest.mark.parametrize("keep_raw", ["all", "failed"])
async def test_sigkill_mid_run_loses_at_most_one_flush_interval(
    tmp_path: Path, keep_raw: str
) -> None:
    """With ``keep_raw_events = "failed"`` (the default) the raw events a running run holds
    back (in memory, then in its temporary file) are not in the database yet: those are
    lost too, the rest of the bound holds."""
    db = tmp_path / "crash.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        textwrap.dedent(CHILD),
        str(db),
        keep_raw,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    lines: list[list[str]] = []

    async def read_until_flush() -> None:
        while True:
            line = await child.stdout.readline()  # type: ignore[union-attr]
            assert line, "the child died early"
            lines.append(line.decode().split())
            if lines[-1][0] == "flushed":
                return

    try:
        await asyncio.wait_for(read_until_flush(), 30)
        loop = asyncio.get_running_loop()
        until = loop.time() + 1.5  # about ten flush gaps to measure the bound against

        async def keep_reading() -> None:
            while line := await child.stdout.readline():  # type: ignore[union-attr]
                lines.append(line.decode().split())

        reader = asyncio.create_task(keep_reading())
        await asyncio.sleep(max(0.0, until - loop.time()))
        killed_at = time.time()
        os.kill(child.pid, signal.SIGKILL)
        assert await asyncio.wait_for(child.wait(), 30) == -signal.SIGKILL
        await asyncio.wait_for(reader, 30)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()

    (run_line,) = [line for line in lines if line[0] == "run"]
    run_id, started_wall = run_line[1], float(run_line[2])
    flushes = [(int(n), float(at)) for kind, n, at in (ln for ln in lines if ln[0] == "flushed")]
    assert len(flushes) >= 3
    printed = flushes[-1][0]

    async with await Store.open(db) as store:
        run = await store.get_run(run_id)
        events = await store.run_events(run_id)
    assert run.status == "interrupted"
    # everything a flush reported as committed survived the kill
    assert len(events) >= printed
    assert run.event_count == len(events)
    # the partial text is readable and is exactly the text of the stored events
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert run.output_text == text and text.startswith("w0 w1 w2 ")
    raw = sum(isinstance(e, RawEvent) for e in events)
    deltas = sum(isinstance(e, TextDelta) for e in events)
    if keep_raw == "all":
        assert raw == deltas
    else:  # held back in memory, then in the run's temporary file: gone with the process
        assert raw == 0
    # no holes: what is lost is only the tail
    assert [e.t for e in events] == sorted(e.t for e in events)
    # At most about one flush interval is lost, measured against the flush gaps of this
    # very run (a loaded machine stretches them all alike, so no fixed slack is needed):
    # the loss is the tail after the last reported flush plus what that flush had not
    # seen yet, which is never more than one flush gap (events kept coming while the
    # flusher slept), and the kill cut the gap in progress, a gap like the others.
    lost_s = killed_at - (started_wall + events[-1].t)
    since_last = killed_at - flushes[-1][1]
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(flushes)]
    interval = max(gaps)
    print(
        f"\ncrash bound: lost the last {lost_s * 1000:.0f} ms, {since_last * 1000:.0f} ms of "
        f"it after the last flush; flush gaps median {statistics.median(gaps) * 1000:.0f} ms, "
        f"max {interval * 1000:.0f} ms (interval {FLUSH_INTERVAL_S * 1000:.0f} ms); "
        f"{len(events)} events kept, {printed} last reported"
    )
    # the flusher keeps its period: a median gap is robust to the stalls of a loaded machine
    assert statistics.median(gaps) <= 2 * FLUSH_INTERVAL_S
    assert lost_s - since_last <= interval * 1.05 + 0.002
    assert since_last <= 3 * interval
    assert lost_s <= 4 * interval


async def test_a_store_never_closed_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    db = tmp_path / "forgotten.db"
    code = textwrap.dedent(
        """
        import asyncio, sys
        from tui.config import SessionConfig
        from tui.store import Store
        from tui.stream.events import TextDelta

        async def main():
            store = await Store.open(sys.argv[1])
            session = SessionConfig(name="s", model="m", prompt="p")
            run_id = await store.start_run(session, prompt="p")
            store.add_event(run_id, TextDelta(0.1, "kept"))
            await store.flush()
            print(run_id, flush=True)
            # no close(): the interpreter must still exit

        asyncio.run(main())
        """
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, str(db), cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(child.communicate(), 30)
    assert child.returncode == 0
    async with await Store.open(db) as store:
        run = await store.get_run(out.decode().strip())
    assert (run.status, run.output_text) == ("interrupted", "kept")
