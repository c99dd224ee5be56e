"""A dead writer's running run is re-folded from its committed events by the same
accumulator as a live run: its row is the one the writer would have written on close."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import textwrap
from pathlib import Path

from tests.store.conftest import every_kind_events, make_session
from tui.store import Store
from tui.stream.accumulate import RunAccumulator

ROOT = Path(__file__).resolve().parents[2]

DYING_WRITER = """
import asyncio, os, sys
from tests.store.conftest import every_kind_events, make_session
from tui.config import StoreConfig
from tui.store import Store

async def main():
    # every event is written, raw ones too (the live store below keeps them on close)
    store = await Store.open(sys.argv[1], retention=StoreConfig(keep_raw_events="all"))
    store.checkpoint_period = 3600.0  # the row keeps its first checkpoint only
    session = make_session()
    run_id = await store.start_run(session, prompt=session.prompt)
    events = every_kind_events()[:-1]  # no Finished: still running when it dies
    store.add_event(run_id, events[0])
    while store.events_written < 1:
        await asyncio.sleep(0.01)
    store.add_events(run_id, events[1:])
    while store.events_written < len(events):
        await asyncio.sleep(0.01)
    print(run_id, flush=True)
    os._exit(0)  # dies without closing: its lock goes with the process

asyncio.run(main())
"""


async def test_a_dead_writers_run_is_refolded_as_the_live_writer_would_close_it(
    db_path: Path,
) -> None:
    db_path.parent.mkdir(parents=True)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        textwrap.dedent(DYING_WRITER),
        str(db_path),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode == 0
    dead_id = out.decode().strip()
    events = every_kind_events()[:-1]
    session = make_session()
    async with await Store.open(db_path) as store:  # re-folds the dead writer's run
        refolded = await store.get_run(dead_id)
        closed_id = await store.start_run(session, prompt=session.prompt)
        store.add_events(closed_id, events)
    async with await Store.open(db_path, readonly=True) as reader:
        closed = await reader.get_run(closed_id)  # written by close(): interrupted
    assert refolded.status == closed.status == "interrupted"
    same = dataclasses.replace(
        closed,
        run_id=refolded.run_id,
        started_at=refolded.started_at,
        conversation_id=refolded.conversation_id,
    )
    assert refolded == same
    live = RunAccumulator(dead_id, session.name, session.api, session.model, session.prompt)
    for event in events:
        live.apply(event)
    m = live.metrics()
    assert refolded.output_text == live.output_text and refolded.ttft_ms == m.ttft_ms
    assert (refolded.itl_p50_ms, refolded.itl_p99_ms) == (m.itl_p50_ms, m.itl_p99_ms)
    assert refolded.ended_s == events[-1].t and refolded.first_token_s == live.first_token_s
    assert [dataclasses.replace(a, method=None, url=None) for a in live.attempts] == list(
        refolded.attempt_records
    )
