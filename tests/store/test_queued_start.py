"""A run's row is queued by ``start_run`` and written by the next flush: starting a run never
waits for the database, its ``started_at`` is its events' clock, and a run id that another
writer stored already is reported instead of stopping the recording."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.store.conftest import completed_events, make_session, record
from tui.store import Store
from tui.store import connection as connection_module
from tui.stream.events import Connecting, TextDelta


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wait 0.3 s instead of 5 s for another connection's transaction."""
    monkeypatch.setattr(connection_module, "BUSY_TIMEOUT_MS", 300)


@pytest.mark.usefixtures("short_busy_timeout")
async def test_runs_start_while_another_program_holds_the_database(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        try:
            other.execute("BEGIN EXCLUSIVE")
            began = time.monotonic()
            ids = [
                await store.start_run(make_session(name=f"s{i}"), prompt=f"p{i}") for i in range(50)
            ]
            # waiting for the database, 50 starts would take 50 busy timeouts (15 s)
            assert time.monotonic() - began < 5.0
            for run_id in ids:
                store.add_events(run_id, completed_events("queued meanwhile"))
            deadline = time.monotonic() + 30
            while store.busy_retries == 0:  # the flusher found it busy and kept everything
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
        finally:
            other.close()
        await store.flush()  # free again: every run, in the order started, with its events
        runs = await store.list_runs(limit=100)
        assert [r.run_id for r in runs] == ids[::-1]
        assert {(r.status, r.output_text) for r in runs} == {("completed", "queued meanwhile")}
        assert store.errors == [] and store.events_dropped == 0


async def test_started_at_is_the_time_of_the_runs_own_clock(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose request waited in the client (for a connection, a busy loop) started when
    its events say: ``now - t`` of its first event, never before ``start_run``."""
    real_time = time.time
    called = real_time()
    late = await store.start_run(make_session(name="late"), prompt="p")
    prompt = await store.start_run(make_session(name="prompt"), prompt="p")
    stored_first = await store.start_run(make_session(name="stored first"), prompt="p")
    await store.flush()  # its row is stored before its first events come
    # the first events of all three reach the store 30 s after start_run (a saturated client)
    monkeypatch.setattr(time, "time", lambda: real_time() + 30.0)
    store.add_event(late, Connecting(0.5, 1, "POST", "http://x"))  # sent 29.5 s after
    store.add_event(prompt, Connecting(45.0, 1, "POST", "http://x"))  # not before start_run
    store.add_events(stored_first, [Connecting(0.0, 1, "POST", "http://x"), TextDelta(1, "x")])
    await store.flush()
    starts = {r.session: r.started_at.timestamp() for r in await store.list_runs()}
    assert starts["late"] - called == pytest.approx(29.5, abs=0.5)
    assert starts["prompt"] - called == pytest.approx(0.0, abs=0.5)
    assert starts["stored first"] - called == pytest.approx(30.0, abs=0.5)


async def test_a_run_id_another_writer_stored_is_reported_and_recording_goes_on(
    db_path: Path,
) -> None:
    async with await Store.open(db_path) as first, await Store.open(db_path) as second:
        taken = await record(first, completed_events("the first writer's"))
        messages: list[str] = []
        second.on_error = messages.append
        again = await second.start_run(make_session(name="again"), prompt="p", run_id=taken)
        other = await second.start_run(make_session(name="other"), prompt="p")
        second.add_events(again, completed_events("not saved"))
        second.add_events(other, completed_events("saved"))
        await second.flush()
        second.add_event(again, TextDelta(9.0, "late"))  # the run is known as not saved
        await second.flush()
        assert second.errors == [] and len(messages) == 1
        assert f"run id {taken} is already in {db_path}" in messages[0]
        assert second.events_dropped == len(completed_events("not saved")) + 1
        assert (await second.get_run(taken)).output_text == "the first writer's"
        assert (await second.get_run(other)).output_text == "saved"
        started = (await second.get_run(other)).started_at
        assert isinstance(started, datetime) and started.tzinfo is not None
