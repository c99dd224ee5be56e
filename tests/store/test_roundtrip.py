"""Every event kind survives the store unchanged; the run row agrees with the accumulator."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from tests.store.conftest import completed_events, every_kind_events, make_session, record
from tui.store import Store, result_record
from tui.store.codec import decode_event, encode_event
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import (
    EVENT_TYPES,
    Connecting,
    Finished,
    Retrying,
    RunError,
    RunEvent,
    TextDelta,
)


def test_codec_round_trips_every_kind() -> None:
    events = every_kind_events()
    for event in events:
        back = decode_event(type(event).__name__, encode_event(event))
        assert back == event
        assert type(back) is type(event)
        assert hash(back) == hash(event)  # frozen dataclasses, tuples restored as tuples


async def test_every_kind_round_trips_through_the_db(store: Store, db_path: Path) -> None:
    events = every_kind_events()
    run_id = await record(store, events)
    assert await store.run_events(run_id) == events
    await store.close()
    # and again from a fresh connection
    async with await Store.open(db_path) as again:
        stored = await again.run_events(run_id)
    assert stored == events
    assert [type(e) for e in stored] == [type(e) for e in events]
    assert {type(e).__name__ for e in stored} == set(EVENT_TYPES)


async def test_run_row_matches_the_accumulator_result(store: Store) -> None:
    events = every_kind_events()
    session = make_session()
    run_id = await store.start_run(session, prompt="the prompt")
    acc = RunAccumulator(run_id, session.name, session.api, session.model, "the prompt")
    for event in events:
        store.add_event(run_id, event)
        acc.apply(event)
    run = await store.get_run(run_id)
    record_ = result_record(run)
    assert record_.pop("started_at") == run.started_at.isoformat()
    assert (record_.pop("conversation_id"), record_.pop("turn")) == (run_id, 1)
    # recorded without a session run, nothing measured the client's lag: unknown
    assert (record_.pop("client_lag_p99_ms"), record_.pop("client_bound")) == (None, None)
    live = acc.result()  # the fold knows no conversation: the caller says which it is
    live.pop("conversation_id", None)
    live.pop("turn", None)
    assert record_ == live
    assert run.status == "failed" and run.finish_reason == "error"
    assert run.error is not None and run.error.kind == "server" and run.error.http_status == 500
    assert run.response_id == "resp_abc" and run.request_id == "req_1"
    assert run.output_text == "Hello wörld \u2028 한국어 ✓!"
    assert run.reasoning_text == "thinking…"
    assert [(c.name, c.call_id, c.arguments) for c in run.tool_calls] == [
        ("get_weather", "call_1", '{"city": "Seoul"}')
    ]
    assert (run.input_tokens, run.output_tokens, run.reasoning_tokens) == (12, 5, 1)
    assert (run.cached_tokens, run.total_tokens, run.tokens_estimated) == (3, 17, False)
    assert run.first_token_s == 0.02 and run.ended_s == 0.65
    assert run.event_count == len(events)
    first, second = run.attempt_records
    assert (first.number, first.at_s, first.http_status, first.mode) == (1, 0.0, 200, None)
    assert first.cause is not None and first.cause.kind == "dropped"
    assert (second.number, second.mode, second.resumed_after) == (2, "resume", 7)
    assert second.cause is not None and second.cause.kind == "server"
    assert run.attempts == 2 and run.resumes == 1


async def test_restart_keeps_the_given_up_output_as_the_attempts_record(store: Store) -> None:
    events: list[RunEvent] = [
        Connecting(0.0, 1, "POST", "u"),
        TextDelta(0.1, "first try"),
        Retrying(0.2, 1, 3, 0.1, "restart", RunError("dropped", "reset")),
        Connecting(0.3, 2, "POST", "u"),
        TextDelta(0.4, "second"),
        Finished(0.5, "completed", "stop", "stop"),
    ]
    run = await store.get_run(await record(store, events))
    assert run.output_text == "second"
    assert [a.output_text for a in run.attempt_records] == ["first try", None]
    assert run.attempt_records[1].mode == "restart"
    assert result_record(run)["attempt_log"][0]["output_text"] == "first try"


async def test_finished_is_flushed_at_once_and_checkpoints_within_the_interval(
    store: Store,
) -> None:
    session = make_session()
    run_id = await store.start_run(session, prompt="p")
    # the first background flush comes on the default period; after it, only a wake-up can
    store.flush_period = 30.0
    store.add_event(run_id, TextDelta(0.1, "partial"))
    deadline = asyncio.get_running_loop().time() + 5
    while store.events_written < 1:  # the background flusher, not an explicit flush
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    (summary,) = await store.list_runs()
    assert summary.status == "running" and summary.output_text == "partial"
    flushed = asyncio.Event()
    store.on_flush = lambda written: flushed.set() if written >= 2 else None
    store.add_event(run_id, Finished(0.2, "completed", "stop", "stop"))
    # long before the next periodic flush (30 s away): Finished wakes the flusher
    await asyncio.wait_for(flushed.wait(), 5)
    assert (await store.get_run(run_id)).status == "completed"


async def test_many_runs_newest_first_and_prefix_lookup(store: Store) -> None:
    ids = [await record(store, completed_events(f"answer number {i}")) for i in range(3)]
    runs = await store.list_runs()
    assert [r.run_id for r in runs] == ids[::-1]
    assert (await store.get_run(ids[1][:16])).output_text == "answer number 1"
    assert len(await store.list_runs(limit=2)) == 2


async def test_periodic_flushes_commit_events_but_rewrite_a_running_row_only_per_checkpoint(
    store: Store, db_path: Path
) -> None:
    session = make_session()
    run_id = await store.start_run(session, prompt="p")
    store.flush_period = 0.02
    store.checkpoint_period = 60.0
    store.add_event(run_id, TextDelta(0.1, "first "))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while store.events_written < 1:
        assert loop.time() < deadline
        await asyncio.sleep(0.01)
    store.add_event(run_id, TextDelta(0.2, "second"))
    while store.events_written < 2:
        assert loop.time() < deadline
        await asyncio.sleep(0.01)
    # another reader (the writer's own queries would flush first) sees every event committed
    # by the periodic flushes, and the row as of the first checkpoint: the whole text is not
    # rewritten on every flush
    async with await Store.open(db_path, readonly=True) as reader:
        events = await reader.run_events(run_id)
        assert [e.text for e in events] == ["first ", "second"]  # type: ignore[union-attr]
        assert (await reader.get_run(run_id)).output_text == "first "
        await store.flush()  # an explicit flush checkpoints every active run
        assert (await reader.get_run(run_id)).output_text == "first second"


async def test_add_events_keeps_a_batch_in_order_and_nothing_after_finished(
    store: Store,
) -> None:
    session = make_session()
    one_by_one = await store.start_run(session, prompt="p")
    batched = await store.start_run(session, prompt="p")
    events: list[RunEvent] = [
        TextDelta(0.1, "a"),
        TextDelta(0.2, "b"),
        Finished(0.3, "completed", "stop", "stop"),
        TextDelta(0.4, "late"),
    ]
    for event in events:
        store.add_event(one_by_one, event)
    dropped = store.events_dropped
    store.add_events(batched, events)
    assert store.events_dropped == dropped + 1  # the event after Finished
    await store.flush()
    assert await store.run_events(batched) == await store.run_events(one_by_one) == events[:3]
    assert (await store.get_run(batched)).output_text == "ab"


async def test_a_shared_accumulator_gives_the_same_run_row(store: Store) -> None:
    events = every_kind_events()
    session = make_session()
    own = await store.start_run(session, prompt="the prompt")
    shared_acc = RunAccumulator("x", session.name, session.api, session.model, "the prompt")
    shared = await store.start_run(
        session, prompt="the prompt", run_id=shared_acc.run_id, accumulator=shared_acc
    )
    for event in events:
        store.add_event(own, event)
        shared_acc.apply(event)  # the caller applies first, as SessionController does
        store.add_events(shared, [event])
    a, b = await store.get_run(own), await store.get_run(shared)
    assert (
        dataclasses.replace(
            b, run_id=a.run_id, started_at=a.started_at, conversation_id=a.conversation_id
        )
        == a
    )
    assert await store.run_events(own) == await store.run_events(shared)
