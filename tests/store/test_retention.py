"""Retention: the compact stored form of deltas replays exactly, keep_raw_events keeps what it
says (with bounded memory), schema-3 databases keep working, and the growth bar holds."""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

import tui.store.queue as queue_module
from tests.store.conftest import (
    as_older_jsonl,
    as_older_markdown,
    completed_events,
    every_kind_events,
    make_session,
    record,
)
from tui.config import KeepRawEvents, SessionConfig, StoreConfig
from tui.store import Store, export
from tui.store.codec import REDACTED
from tui.store.replay import ReplayClock
from tui.store.retention import file_bytes
from tui.store.schema import SCHEMA_VERSION
from tui.stream.accumulate import fold_events
from tui.stream.events import (
    Api,
    Finished,
    RawEvent,
    ReasoningDelta,
    RunError,
    RunEvent,
    TextDelta,
)
from tui.stream.runner import StreamRun

DATA = Path(__file__).with_name("data")

GROWTH_BAR = 25_000
"""Bytes a 400-token run may add to the database with the defaults (issue 12)."""


def sim_session(
    name: str,
    sim_url: str,
    *,
    api: Api = "chat",
    model: str = "sim",
    tokens: int = 400,
    tps: int = 4000,
    fault: str | None = None,
    key: str = "",
) -> SessionConfig:
    """A session of the test simulator with a fast timing (and a fault, if any)."""
    headers = {"X-Sim-Timing": f"ttft=0,tps={tps},tokens={tokens}"}
    if fault:
        headers["X-Sim-Fault"] = fault
    if key:
        headers["X-Sim-Key"] = key
    session = make_session(name, model, api=api, headers=headers, prompt=f"Write for {name}.")
    return session


async def stream_run(
    store: Store,
    client: httpx.AsyncClient,
    sim_url: str,
    session: SessionConfig,
    *,
    cancel_after: int | None = None,
) -> tuple[str, list[RunEvent]]:
    """One real run streamed from the simulator through the store's writer, as the session
    layer does (one ``add_events`` per batch); its id and every event as delivered."""
    run = StreamRun(session, client=client, base_url=sim_url)
    run_id = await store.start_run(session, prompt=session.prompt)
    events: list[RunEvent] = []
    async for batch in run.batches():
        events += batch
        store.add_events(run_id, batch)
        if cancel_after is not None and len(events) >= cancel_after:
            run.cancel()
    await store.flush()
    return run_id, events


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as c:
        yield c


def without_raw(events: list[RunEvent]) -> list[RunEvent]:
    return [e for e in events if not isinstance(e, RawEvent)]


def count_rows(db: Path, sql: str, *args: object) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute(sql, args).fetchone()[0] or 0)
    finally:
        con.close()


# -- the compact form -----------------------------------------------------------------------


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_a_compact_run_reads_back_as_the_very_events_it_was(
    db_path: Path, client: httpx.AsyncClient, sim_url: str, api: Api
) -> None:
    keep_all = StoreConfig(keep_raw_events="all")
    async with await Store.open(db_path, retention=keep_all) as store:
        session = sim_session("exact", sim_url, api=api, model="sim-think", tps=2000)
        run_id, original = await stream_run(store, client, sim_url, session)
        stored = await store.run_events(run_id)
        detail = await store.get_run(run_id)
        # same events, same t (the same floats), same pieces, same order among the others
        assert stored == original
        assert [type(e) for e in stored] == [type(e) for e in original]
        assert [e.t for e in stored] == [e.t for e in original]
        assert {ReasoningDelta, TextDelta, RawEvent} <= {type(e) for e in stored}
        # ...and the deltas really are in the compact rows, not in `events`
        assert count_rows(db_path, "SELECT count(*) FROM events WHERE kind = 'TextDelta'") == 0
        assert count_rows(db_path, "SELECT sum(count) FROM deltas") == sum(
            isinstance(e, TextDelta | ReasoningDelta) for e in original
        )
        # exports as they were: jsonl from the events, json with the event count
        assert "".join(export.to_jsonl(stored)) == "".join(export.to_jsonl(original))
        assert detail.event_count == len(original)
        assert json.loads(export.to_json(detail))["events"] == len(original)
        assert detail.output_text == "".join(e.text for e in original if isinstance(e, TextDelta))
        # and the fold of the stored events is the fold of the original ones
        args = (run_id, session.name, session.api, session.model, session.prompt)
        assert fold_events(stored, *args).result() == fold_events(original, *args).result()


async def test_a_compact_run_replays_with_identical_per_delta_timing(
    db_path: Path, client: httpx.AsyncClient, sim_url: str
) -> None:
    async with await Store.open(db_path) as store:
        # ~0.6 s of tokens: a loaded client reads several chunks at once (one time for
        # them all), but not the whole run in a handful of reads
        session = sim_session("paced", sim_url, tokens=60, tps=100)
        run_id, original = await stream_run(store, client, sim_url, session)
        clock = ReplayClock(speed=1.0)
        played: list[tuple[float, RunEvent]] = []
        async for event in store.replay(run_id, clock):
            played.append((clock.position, event))
    expected = without_raw(original)  # the defaults keep no raw events of a completed run
    assert [e for _, e in played] == expected
    assert [e.t for _, e in played] == [e.t for e in expected]  # the very same floats
    # each event was released once the replay reached its original offset, never before
    assert all(position >= event.t for position, event in played)
    deltas = [e for e in expected if isinstance(e, TextDelta)]
    assert len(deltas) == 60 and len({e.t for e in deltas}) > 5  # paced, not all at once


async def test_deltas_of_several_flushes_and_kinds_interleave_exactly(store: Store) -> None:
    """Deltas across flushes, between raw events, kinds alternating, odd times: every
    piece keeps its place and its time."""
    events = every_kind_events()
    run_id = await store.start_run(make_session(), prompt="p")
    for i, event in enumerate(events):
        store.add_event(run_id, event)
        if i % 3 == 0:
            await store.flush()  # segments end at every flush
    more = [TextDelta(1.0 + i / 7, f"piece {i} ") for i in range(10_000)]  # > SEGMENT_LIMIT
    second = await store.start_run(make_session(), prompt="long")
    store.add_events(second, [*more, *completed_events("end")[2:]])
    await store.flush()
    assert await store.run_events(run_id) == events  # a failed run: its raw events kept
    assert [e for e in await store.run_events(second) if isinstance(e, TextDelta)] == [
        *more,
        *[e for e in completed_events("end") if isinstance(e, TextDelta)],
    ]


@pytest.mark.parametrize("between", [1, 255, 256, 3000])
async def test_deltas_far_apart_keep_their_places(db_path: Path, between: int) -> None:
    """Gaps between two deltas of one row of any size (one byte up to 255, four beyond)."""
    async with await Store.open(db_path, retention=StoreConfig(keep_raw_events="all")) as store:
        events: list[RunEvent] = []
        for i in range(3):
            events.append(TextDelta(i + 0.5, f"d{i} "))
            events += [RawEvent(i + 0.6, 1, "ping", "{}") for _ in range(between)]
        run_id = await record(store, [*events, *completed_events("")[-1:]])
        assert (await store.run_events(run_id))[:-1] == events


async def test_a_time_that_is_not_finite_reads_as_zero_as_before(store: Store) -> None:
    run_id = await record(
        store, [TextDelta(float("inf"), "a"), TextDelta(float("nan"), "b"), TextDelta(0.5, "c")]
    )
    assert [(e.t, e.text) for e in await store.run_events(run_id)] == [  # type: ignore[union-attr]
        (0.0, "a"),
        (0.0, "b"),
        (0.5, "c"),
    ]


# -- keep_raw_events --------------------------------------------------------------------------


@pytest.mark.parametrize("keep", ["all", "failed", "none"])
async def test_keep_raw_events_keeps_the_raw_events_of_the_runs_it_names(
    tmp_path: Path, client: httpx.AsyncClient, sim_url: str, sim_key: str, keep: KeepRawEvents
) -> None:
    db = tmp_path / f"{keep}.db"
    async with await Store.open(db, retention=StoreConfig(keep_raw_events=keep)) as store:
        ok_id, ok = await stream_run(store, client, sim_url, sim_session("ok", sim_url))
        bad_id, bad = await stream_run(
            store,
            client,
            sim_url,
            sim_session("bad", sim_url, api="responses", fault="error=30", key=sim_key),
        )
        cut_id, cut = await stream_run(
            store, client, sim_url, sim_session("cut", sim_url, tps=200), cancel_after=40
        )
        outcomes = {rid: (await store.get_run(rid)).status for rid in (ok_id, bad_id, cut_id)}
        assert outcomes == {ok_id: "completed", bad_id: "failed", cut_id: "cancelled"}
        stored = {rid: await store.run_events(rid) for rid in (ok_id, bad_id, cut_id)}
    kept = {"all": {ok_id, bad_id, cut_id}, "failed": {bad_id, cut_id}, "none": set()}[keep]
    for rid, original in ((ok_id, ok), (bad_id, bad), (cut_id, cut)):
        assert any(isinstance(e, RawEvent) for e in original)
        # the raw events of a kept run are all there, in place; the others have none
        assert stored[rid] == (original if rid in kept else without_raw(original)), rid


async def test_raw_events_held_past_the_cap_wait_in_a_file_that_only_a_failed_run_writes(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_module, "RAW_HOLD_EVENTS", 16)
    async with await Store.open(db_path) as store:  # the default: "failed"
        runs: dict[str, list[RunEvent]] = {}
        for status in ("completed", "failed"):
            run_id = await store.start_run(make_session(), prompt=status)
            events: list[RunEvent] = []
            for i in range(100):
                events += [RawEvent(i / 100, 1, "delta", f'{{"n":{i}}}'), TextDelta(i / 100, "w ")]
            store.add_events(run_id, events)
            run = store._active[run_id]
            assert len(run.held) < 16  # memory stays bounded: the rest went to the file
            assert run.raw is not None and run.raw.events == 96
            await store.flush()
            assert count_rows(db_path, "SELECT count(*) FROM events WHERE kind = 'RawEvent'") == 0
            finished = completed_events("x")[-1]
            if status == "failed":
                from tui.stream.events import Finished, RunError

                finished = Finished(1.5, "failed", "error", None, RunError("server", "boom"))
            store.add_event(run_id, finished)
            events.append(finished)
            await store.flush()
            assert run.raw is None  # the file is closed (and so gone)
            runs[run_id] = events
        (done, failed) = runs
        assert await store.run_events(done) == without_raw(runs[done])
        assert await store.run_events(failed) == runs[failed]  # all 100, in place
        # the completed run's raw events never reached the database: no pages to reuse
        assert count_rows(db_path, "PRAGMA freelist_count") == 0


async def test_a_run_open_at_close_writes_the_raw_events_of_its_file(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """...with the session's API key blanked out, as in every stored event."""
    monkeypatch.setattr(queue_module, "RAW_HOLD_EVENTS", 16)
    monkeypatch.setenv("TT_SPILL_KEY", "sk-spilled-secret-42")
    async with await Store.open(db_path) as store:
        run_id = await store.start_run(make_session(api_key_env="TT_SPILL_KEY"), prompt="p")
        events: list[RunEvent] = []
        for i in range(50):
            data = f'{{"n":{i},"echo":"sk-spilled-secret-42"}}'
            events += [RawEvent(i / 100, 1, "delta", data), TextDelta(i / 100, "w ")]
        store.add_events(run_id, events)
    async with await Store.open(db_path, readonly=True) as reader:
        assert (await reader.get_run(run_id)).status == "interrupted"
        stored = await reader.run_events(run_id)
    assert stored == [
        replace(e, data=e.data.replace("sk-spilled-secret-42", REDACTED))
        if isinstance(e, RawEvent)
        else e
        for e in events
    ]


async def test_a_run_still_open_at_close_keeps_its_raw_events(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        run_id = await store.start_run(make_session(), prompt="p")
        events: list[RunEvent] = [RawEvent(0.1, 1, "delta", "{}"), TextDelta(0.1, "half")]
        store.add_events(run_id, events)
    async with await Store.open(db_path, readonly=True) as reader:
        assert (await reader.get_run(run_id)).status == "interrupted"
        assert await reader.run_events(run_id) == events


# -- schema 3 databases -----------------------------------------------------------------------


@pytest.fixture
def v3_db(tmp_path: Path) -> Path:
    """The schema-3 database the V3 store wrote (``tests/store/data/make_v3.py``)."""
    db = tmp_path / "v3" / "tokentop.db"
    db.parent.mkdir()
    with gzip.open(DATA / "v3.db.gz") as src, db.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return db


async def test_a_v3_database_reads_exactly_as_the_v3_code_read_it(
    v3_db: Path, client: httpx.AsyncClient, sim_url: str
) -> None:
    expected = json.loads((DATA / "v3_expected.json").read_text())
    assert count_rows(v3_db, "PRAGMA user_version") == 3
    async with await Store.open(v3_db) as store:  # upgrades, re-folds the dead writer's run
        assert await store.schema_version() == SCHEMA_VERSION
        runs = await store.list_runs()
        assert {r.run_id for r in runs} == set(expected)
        for run in runs:
            want = expected[run.run_id]
            detail = await store.get_run(run.run_id)
            events = await store.run_events(run.run_id)
            assert detail.status == want["status"]
            assert as_older_jsonl("".join(export.to_jsonl(events))) == want["jsonl"]
            # the V3 JSON export had the attempt details under "attempts"; they are
            # "attempt_log" now, and "attempts" is the count, as in every other record
            want_json = json.loads(want["json"])
            want_json["attempt_log"] = want_json["attempts"]
            want_json["attempts"] = len(want_json["attempt_log"])
            # and every run is a one-turn conversation of its own
            want_json |= {"conversation_id": run.run_id, "turn": 1}
            # issue 13's keys: the inter-chunk figures under their own name too, TPOT, and
            # what the token count counts (derived from the V3 columns)
            got_json = json.loads(export.to_json(detail))
            assert got_json.pop("inter_chunk_ms") == want_json["itl_ms"]
            assert got_json.pop("tokens_source") in ("usage", "estimated", "chunks")
            got_json.pop("tpot_ms")
            assert (got_json.pop("client_lag_p99_ms"), got_json.pop("client_bound")) == (None, None)
            assert got_json == want_json
            assert as_older_markdown(export.to_markdown(detail)) == want["md"]
            replayed = [e async for e in store.replay(run.run_id, ReplayClock(1000.0))]
            assert replayed == events
        assert [r.run_id for r in await store.list_runs(search="Write about")] != []
        # new runs go in next to the old ones, in the compact form
        new_id, original = await stream_run(store, client, sim_url, sim_session("new", sim_url))
        assert await store.run_events(new_id) == without_raw(original)
        pruned = await store.prune(1e9)  # nothing is that old
        assert pruned.runs == 0
    con = sqlite3.connect(v3_db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        con.close()


# -- the bar ----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_three_repeating_sessions_grow_the_database_within_the_bar(
    db_path: Path, client: httpx.AsyncClient, sim_url: str
) -> None:
    """Three sessions (chat, responses, responses with reasoning) each repeating a 400-token
    answer, streamed from the simulator through the real writer with the defaults: the main
    file plus its WAL, checkpointed, grows by at most 25 KB per run."""
    sessions = [
        sim_session("chat", sim_url),
        sim_session("responses", sim_url, api="responses"),
        sim_session("reasoning", sim_url, api="responses", model="sim-think"),
    ]
    runs_each = 8

    async def repeat(store: Store, session: SessionConfig, times: int) -> None:
        for _ in range(times):
            await stream_run(store, client, sim_url, session)

    async with await Store.open(db_path) as store:
        await asyncio.gather(*(repeat(store, s, 1) for s in sessions))  # schema, sessions rows
        await store._measure()  # checkpoint (a test may reach into the store)
        before = file_bytes(db_path)
        await asyncio.gather(*(repeat(store, s, runs_each) for s in sessions))
        await store._measure()
        after = file_bytes(db_path)
        runs = await store.list_runs(limit=1000)
    assert len(runs) == 3 * (runs_each + 1) and {r.status for r in runs} == {"completed"}
    assert all((r.output_tokens or 0) >= 400 for r in runs)
    per_run = (after - before) / (3 * runs_each)
    print(f"\ngrowth per 400-token run with the defaults: {per_run / 1000:.1f} KB")
    assert per_run <= GROWTH_BAR


async def test_all_runs_together_hold_a_bounded_number_of_raw_events(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many runs at once (1,024 x 1,000 tokens would hold a million raw events): past the
    writer's total, runs that hold enough put theirs in their files; nothing is lost."""
    monkeypatch.setattr(queue_module, "RAW_HOLD_TOTAL", 64)
    monkeypatch.setattr(queue_module, "RAW_SPILL_MIN", 8)
    async with await Store.open(db_path) as store:
        runs = [await store.start_run(make_session(), prompt=f"p{i}") for i in range(20)]
        sent: dict[str, list[RunEvent]] = {run_id: [] for run_id in runs}
        for i in range(30):  # the runs take turns, as concurrent streams do
            for run_id in runs:
                events: list[RunEvent] = [
                    RawEvent(i / 100, 1, "delta", f'{{"n":{i}}}'),
                    TextDelta(i / 100, "w "),
                ]
                store.add_events(run_id, events)
                sent[run_id] += events
                assert store.queue.held_total <= 64 + 20 * 8
        assert sum(store._active[r].raw is not None for r in runs) > 10
        for k, run_id in enumerate(runs):
            failed = Finished(1.0, "failed", "error", None, RunError("server", "boom"))
            end = failed if k % 2 else completed_events("x")[-1]
            store.add_event(run_id, end)
            sent[run_id].append(end)
        await store.flush()
        assert store.queue.held_total == 0
        assert store.queue.spill_file._end == 0  # one file for all runs, emptied after them
        for k, run_id in enumerate(runs):
            stored = await store.run_events(run_id)
            assert stored == (sent[run_id] if k % 2 else without_raw(sent[run_id]))
