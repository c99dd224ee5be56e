"""A stored run shown at once (``Store.whole_events``, ``stored_metrics``,
``replay_conversation(whole=True)``), on a real SQLite file: the events without the deltas
one by one, the text whole in their place, the figures as stored."""

from __future__ import annotations

from pathlib import Path

from tests.store.conftest import completed_events, every_kind_events, make_session, record
from tui.store import Store, TurnStart
from tui.store.whole import stored_metrics
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import (
    Connecting,
    Finished,
    RawEvent,
    ReasoningDelta,
    Retrying,
    RunError,
    RunEvent,
    Started,
    TextDelta,
    Usage,
)


def _fold(events: list[RunEvent]) -> RunAccumulator:
    acc = RunAccumulator("r", "s", "responses", "m", "p")
    for event in events:
        acc.apply(event)
    return acc


def _long_run(words: int) -> list[RunEvent]:
    """A run that restarts after a first try, then streams ``words`` deltas and ends."""
    events: list[RunEvent] = [
        Connecting(0.0, 1, "POST", "http://x/v1/responses"),
        Started(0.001, 1, 200, "req_1"),
        TextDelta(0.01, "given up "),
        Retrying(0.02, 1, 3, 0.0, "restart", RunError("dropped", "reset", None)),
        Connecting(0.03, 2, "POST", "http://x/v1/responses"),
        Started(0.031, 2, 200, "req_2"),
        RawEvent(0.0311, 2, "response.created", "{}", None),
    ]
    events += [TextDelta(0.04 + i * 1e-4, f"w{i} ") for i in range(words)]
    events += [
        Usage(0.05 + words * 1e-4, 9, words),
        Finished(0.06 + words * 1e-4, "completed", "stop", "completed"),
    ]
    return events


async def test_whole_events_are_the_run_without_its_deltas_one_by_one(store: Store) -> None:
    events = _long_run(20_000)
    run_id = await record(store, events)
    run = await store.get_run(run_id)
    whole = await store.whole_events(run)
    # every event but the deltas and raw events, in order; the text whole before the end
    kept = [e for e in events if not isinstance(e, (TextDelta, ReasoningDelta, RawEvent))]
    assert whole[:-2] == kept[:-1]
    assert whole[-2] == TextDelta(run.ended_s or 0.0, run.output_text)
    assert whole[-1] == events[-1]
    assert run.output_text == "".join(f"w{i} " for i in range(20_000))  # the kept answer
    acc = _fold(whole)  # a fold of them: the answer, the attempts and the end
    live = _fold(events)
    assert (acc.output_text, acc.status, acc.finish_reason) == (
        live.output_text,
        live.status,
        live.finish_reason,
    )
    assert [a.number for a in acc.attempts] == [1, 2] and acc.usage == live.usage
    # the figures are the stored ones, which a fold of one delta cannot give
    figures = stored_metrics(run)
    measured = live.metrics()
    assert figures.chunks == measured.chunks == 20_000 and acc.metrics().chunks == 1
    assert figures.output_tokens == measured.output_tokens
    assert figures.tokens_source == measured.tokens_source == "usage"
    assert figures.ttft_ms == measured.ttft_ms
    assert figures.itl_p99_ms == measured.itl_p99_ms
    assert figures.tokens_per_s == measured.tokens_per_s
    assert figures.tpot_ms == measured.tpot_ms and figures.finished


async def test_whole_events_keep_reasoning_tool_calls_and_notices(store: Store) -> None:
    events = every_kind_events()
    run = await store.get_run(await record(store, events))
    whole = await store.whole_events(run)
    acc, live = _fold(whole), _fold(events)
    assert acc.output_text == live.output_text and acc.reasoning_text == live.reasoning_text
    assert acc.tool_calls == live.tool_calls and acc.error == live.error
    assert [type(e).__name__ for e in whole[-3:]] == ["ReasoningDelta", "TextDelta", "Finished"]
    assert not any(isinstance(e, RawEvent) for e in whole)


async def test_a_run_without_its_end_gets_its_text_at_the_end(db_path: Path) -> None:
    events = completed_events("cut short here")[:-1]  # closed before its end came
    async with await Store.open(db_path) as store:
        run_id = await store.start_run(make_session(), prompt="p")
        store.add_events(run_id, events)
    async with await Store.open(db_path, readonly=True) as reader:
        run = await reader.get_run(run_id)
        whole = await reader.whole_events(run)
    assert run.status == "interrupted" and run.ended_s == events[-1].t
    assert whole[-1] == TextDelta(events[-1].t, "cut short here")
    assert not any(isinstance(e, Finished) for e in whole)
    assert not stored_metrics(run).finished


async def test_a_conversation_whole_is_each_turn_whole(store: Store) -> None:
    session = make_session()
    answers = ["first answer", "second answer"]
    run_ids = []
    for turn, answer in enumerate(answers, 1):
        run_id = await store.start_run(session, prompt=f"q{turn}", conversation_id="c1", turn=turn)
        store.add_events(run_id, completed_events(answer))
        run_ids.append(run_id)
    await store.flush()
    items = [item async for item in store.replay_conversation("c1", whole=True)]
    starts = [i for i in items if isinstance(i, TurnStart)]
    assert [(s.turn, s.run_id) for s in starts] == [(1, run_ids[0]), (2, run_ids[1])]
    texts = [i.text for i in items if isinstance(i, TextDelta)]
    assert texts == answers  # one delta per turn
    timed = [item async for item in store.replay_conversation("c1")]
    assert [i for i in timed if isinstance(i, TurnStart)] == starts  # the same timeline
