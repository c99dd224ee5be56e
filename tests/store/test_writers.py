"""Several writers on one database: concurrent runs, interrupting only dead writers' runs,
a database held by another program's transaction, and closing while a flush is in flight."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import tui.store.connection as connection_module
import tui.store.writer as writer_module
from tests.store.conftest import completed_events, make_session, record
from tests.store.test_migrations import build_old
from tui.config import StoreConfig
from tui.store import Store, StoreError
from tui.store.lock import writers_dir
from tui.store.schema import SCHEMA_VERSION
from tui.stream.events import Finished, RawEvent, TextDelta

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 20_000
KEEP_ALL = StoreConfig(keep_raw_events="all")
"""These tests count every event written: raw events are kept as any other."""

WRITER = """
import asyncio, sys
from tui.config import SessionConfig, StoreConfig
from tui.store import Store
from tui.stream.events import Finished, RawEvent, TextDelta

async def main():
    # every raw event is kept: each one counts in what must not be lost
    store = await Store.open(sys.argv[1], retention=StoreConfig(keep_raw_events="all"))
    errors = []
    store.on_error = errors.append
    session = SessionConfig(name="child", model="m", prompt="from the child")
    run_id = await store.start_run(session, prompt=session.prompt)
    print("run", run_id, flush=True)
    mode, n = sys.argv[2], int(sys.argv[3])
    if mode == "stream":
        sys.stdin.readline()  # go
        for i in range(n // 2):
            store.add_event(run_id, TextDelta(i * 1e-4, f"c{i} "))
            store.add_event(run_id, RawEvent(i * 1e-4, 1, "delta", "{}"))
            if i % 200 == 0:
                await asyncio.sleep(0.001)
        store.add_event(run_id, Finished(n * 1e-4, "completed", "stop", "stop"))
        await store.close()
        print("done", store.events_written, errors, flush=True)
        return
    store.add_event(run_id, TextDelta(0.1, "partial from " + mode))
    await store.flush()
    print("flushed", flush=True)
    sys.stdin.readline()  # "hold": stay alive until told; the test kills a "die" writer
    store.add_event(run_id, Finished(0.2, "completed", "stop", "stop"))
    await store.close()
    print("done", store.events_written, errors, flush=True)

asyncio.run(main())
"""


class Child:
    """A writer in another process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        assert proc.stdout is not None and proc.stdin is not None
        self.stdout = proc.stdout
        self.stdin = proc.stdin

    async def line(self) -> list[str]:
        raw = await asyncio.wait_for(self.stdout.readline(), 30)
        assert raw, "the child died early"
        return raw.decode().strip().split(maxsplit=2)

    async def send(self) -> None:
        self.stdin.write(b"\n")
        await self.stdin.drain()


@pytest.fixture
async def children() -> AsyncIterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        if child.proc.returncode is None:
            child.proc.kill()
            await child.proc.wait()


async def spawn(children: list[Child], db: Path, mode: str, n: int = 0) -> Child:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        textwrap.dedent(WRITER),
        str(db),
        mode,
        str(n),
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    child = Child(proc)
    children.append(child)
    return child


async def test_two_processes_write_runs_at_the_same_time(
    db_path: Path, children: list[Child]
) -> None:
    async with await Store.open(db_path, retention=KEEP_ALL) as store:
        errors: list[str] = []
        store.on_error = errors.append
        child = await spawn(children, db_path, "stream", EVENTS)
        kind, child_run = await child.line()
        assert kind == "run"
        run_id = await store.start_run(make_session(), prompt="from the parent")
        await child.send()  # both stream from now on
        flushes_before = store.events_written
        for i in range(EVENTS // 2):
            store.add_event(run_id, TextDelta(i * 1e-4, f"p{i} "))
            store.add_event(run_id, RawEvent(i * 1e-4, 1, "delta", "{}"))
            if i % 200 == 0:
                await asyncio.sleep(0.001)
        store.add_event(run_id, Finished(EVENTS * 1e-4, "completed", "stop", "stop"))
        await store.flush()
        assert store.events_written - flushes_before == EVENTS + 1
        done = await child.line()
        assert done == ["done", str(EVENTS + 1), "[]"]
        assert await asyncio.wait_for(child.proc.wait(), 30) == 0
        assert errors == []
        for rid, who in ((run_id, "p"), (child_run, "c")):
            run = await store.get_run(rid)
            events = await store.run_events(rid)
            assert run.status == "completed" and run.event_count == EVENTS + 1
            assert len(events) == EVENTS + 1
            assert run.output_text == "".join(f"{who}{i} " for i in range(EVENTS // 2))
    con = sqlite3.connect(db_path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


async def test_only_dead_writers_runs_are_interrupted(db_path: Path, children: list[Child]) -> None:
    async with await Store.open(db_path) as here:  # a live writer in this process
        mine = await here.start_run(make_session(), prompt="mine")
        here.add_event(mine, TextDelta(0.1, "still going"))
        await here.flush()
        live = await spawn(children, db_path, "hold")
        dead = await spawn(children, db_path, "die")
        runs: dict[Child, str] = {}
        for child in (live, dead):
            kind, runs[child] = await child.line()
            assert kind == "run"
            assert await child.line() == ["flushed"]
        dead.proc.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(dead.proc.wait(), 30) == -signal.SIGKILL

        async with await Store.open(db_path) as next_writer:  # the next start
            dead_run = await next_writer.get_run(runs[dead])
            assert (dead_run.status, dead_run.output_text) == ("interrupted", "partial from die")
            assert dead_run.ended_s == pytest.approx(0.1)
            assert (await next_writer.get_run(runs[live])).status == "running"
            assert (await next_writer.get_run(mine)).status == "running"
        async with await Store.open(db_path, readonly=True) as reader:  # readers' upkeep too
            assert (await reader.get_run(runs[live])).status == "running"
            assert (await reader.get_run(mine)).status == "running"
        # the dead writer's lock file was cleaned up; the live ones remain
        owners = {p.name for p in writers_dir(db_path).iterdir()}
        assert len(owners) == 2 and f"{here.owner}.lock" in owners

        await live.send()
        assert (await live.line())[:2] == ["done", "2"]
        assert await asyncio.wait_for(live.proc.wait(), 30) == 0
        assert (await here.get_run(runs[live])).status == "completed"
        assert (await here.get_run(mine)).status == "running"
    async with await Store.open(db_path) as after:
        run = await after.get_run(mine)
        assert (run.status, run.output_text) == ("interrupted", "still going")
    assert not writers_dir(db_path).exists()  # the last writer out removed it


async def test_two_writers_upgrade_an_old_database_at_once(db_path: Path) -> None:
    build_old(db_path, 1)
    first, second = await asyncio.gather(Store.open(db_path), Store.open(db_path))
    try:
        for store in (first, second):
            assert await store.schema_version() == SCHEMA_VERSION
            stale = await store.get_run("0000000000bb")
            assert stale.status == "interrupted"  # no owner: an old tokentop's, dead
    finally:
        await first.close()
        await second.close()


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wait 0.3 s instead of 5 s for another connection's transaction."""
    monkeypatch.setattr(connection_module, "BUSY_TIMEOUT_MS", 300)


@pytest.mark.usefixtures("short_busy_timeout")
async def test_opening_a_database_held_exclusively_gives_a_clear_message(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreError) as err:
            await Store.open(db_path)
        message = str(err.value)
        assert f"database {db_path} is locked by another process" in message
        assert "held a write transaction for more than" in message
    finally:
        other.close()
    async with await Store.open(db_path) as store:  # free again
        assert not store.readonly


@pytest.mark.usefixtures("short_busy_timeout")
async def test_writing_while_held_exclusively_waits_and_loses_nothing(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "BUSY_GIVE_UP_S", 0.5)
    async with await Store.open(db_path) as store:
        messages: list[str] = []
        store.on_error = messages.append
        run_id = await store.start_run(make_session(), prompt="p")
        store.add_event(run_id, TextDelta(0.1, "saved "))
        await store.flush()
        other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        try:
            other.execute("BEGIN EXCLUSIVE")
            store.add_event(run_id, TextDelta(0.2, "later"))
            await store.flush()  # never raises; gives up after BUSY_GIVE_UP_S, keeping all
            assert store.busy_retries > 0 and store.errors == [] and messages == []
            # readers still read (WAL)
            async with await Store.open(db_path, readonly=True) as reader:
                assert (await reader.get_run(run_id)).output_text == "saved "
            store.add_event(run_id, Finished(0.3, "completed", "stop", "stop"))
        finally:
            other.close()
        await store.flush()  # free again: everything queued is written
        assert (await store.get_run(run_id)).output_text == "saved later"
        assert store.events_dropped == 0 and messages == []
    async with await Store.open(db_path) as again:
        run = await again.get_run(run_id)
        assert (run.status, run.output_text) == ("completed", "saved later")
        assert len(await again.run_events(run_id)) == 3


async def test_close_while_flushes_are_in_flight_loses_nothing(db_path: Path) -> None:
    total = 0
    for attempt in range(20):
        store = await Store.open(db_path, retention=KEEP_ALL)
        store.flush_period = 0.001  # the flusher is nearly always mid-flush
        errors: list[str] = []
        store.on_error = errors.append
        run_id = await store.start_run(make_session(), prompt=f"attempt {attempt}")
        n = 0
        for chunk in range(5):
            for _ in range(1000):
                store.add_event(run_id, RawEvent(n * 1e-5, 1, "delta", "x" * 50))
                n += 1
            await asyncio.sleep(0.001 * chunk)  # let a flush start (or not)
        store.add_event(run_id, TextDelta(n * 1e-5, "last"))
        store.add_event(run_id, Finished(n * 1e-5, "completed", "stop", "stop"))
        await store.close()  # right after add_event
        assert errors == [] and store.events_dropped == 0
        assert store.events_written == n + 2
        total += n + 2
    con = sqlite3.connect(db_path)
    try:
        stored = con.execute(
            "SELECT (SELECT count(*) FROM events) + (SELECT sum(count) FROM deltas)"
        ).fetchone()[0]
        assert stored == total
        assert con.execute("SELECT DISTINCT status FROM runs").fetchall() == [("completed",)]
    finally:
        con.close()


async def test_a_cancelled_flush_leaves_no_transaction_open(db_path: Path) -> None:
    async with await Store.open(db_path, retention=KEEP_ALL) as store:
        errors: list[str] = []
        store.on_error = errors.append
        run_id = await store.start_run(make_session(), prompt="p")
        for i in range(50_000):
            store.add_event(run_id, RawEvent(i * 1e-5, 1, "delta", "y" * 100))
        flush = asyncio.create_task(store.flush())
        for _ in range(3):
            await asyncio.sleep(0)
        flush.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flush
        # the flush was not cut short: its transaction ran to its end
        assert not store._conn.in_transaction
        assert store.events_written == 50_000 and store.events_dropped == 0
        kept = await record(store, completed_events("after the cancelled flush"))
        assert errors == []
        assert (await store.get_run(kept)).output_text == "after the cancelled flush"
    async with await Store.open(db_path, readonly=True) as reader:
        assert (await reader.get_run(run_id)).event_count == 50_000


@pytest.mark.usefixtures("short_busy_timeout")
async def test_a_full_queue_while_busy_is_reported_and_recording_goes_on(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "PENDING_LIMIT", 10)
    monkeypatch.setattr(writer_module, "BUSY_GIVE_UP_S", 0.3)
    async with await Store.open(db_path) as store:
        messages: list[str] = []
        store.on_error = messages.append
        run_id = await store.start_run(make_session(), prompt="p")
        other = sqlite3.connect(db_path, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            for i in range(25):
                store.add_event(run_id, TextDelta(i * 0.01, "x"))
            await store.flush()  # busy: keeps the 10 it holds
        finally:
            other.close()
        assert store.events_dropped == 15 and store.errors == []
        assert len(messages) == 1 and "events wait to be saved" in messages[0]
        await store.flush()
        store.add_event(run_id, Finished(1.0, "completed", "stop", "stop"))  # accepted again
        await store.flush()
        assert len(await store.run_events(run_id)) == 11
