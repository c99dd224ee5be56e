"""Sessions are conversations, against the real simulator over loopback HTTP: scripted turns
carry their history on both APIs (the simulator's turn markers prove it arrived), follow-ups,
edits and retries keep the history as the dialogue said it, a stateless gateway is learnt
once, a context window that the history outgrew is named with its turn, a drop inside a
later turn resumes without touching the turns before, and the store keeps every run as a
turn of its conversation."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.session.helpers import (
    DEADLINE_S,
    Follower,
    TracedController,
    controller_for,
    count_requests,
    until,
)
from tests.stream.helpers import make_session
from tui.config import Repeat, SessionConfig
from tui.config.conversation import Message
from tui.session import SessionController, SessionRuntime
from tui.session.conversation_view import ConversationOutcome, TurnRefused
from tui.session.rounds import Round
from tui.store import Store
from tui.stream.events import Notice, Resumed
from tui.stream.runner import HISTORY_FALLBACK
from tui.vocab import Api

QUICK = "ttft=0.01,tps=0,tokens=30"
"""A short answer as fast as possible."""

SCRIPT = ("Name a river.", "How long is it?", "Say it in Korean.")


def talker(
    api: Api,
    key: str,
    *,
    model: str = "sim-fast",
    timing: str | None = QUICK,
    fault: str | None = None,
    **changes: Any,
) -> SessionConfig:
    """A scripted session of the simulator (``SCRIPT`` unless ``changes`` says otherwise)."""
    session = make_session(api, key=key, model=model, timing=timing, fault=fault)
    return replace(session, **{"turns": SCRIPT, "prompt": "", **changes})


def marker(turn: int, previous: str) -> str:
    """How the simulator opens its answer to turn ``turn`` (from 2) that followed ``previous``."""
    return f'(turn {turn}) Following up on "{previous}".'


def bodies(sent: list[httpx.Request]) -> list[dict[str, Any]]:
    """The JSON bodies of the POST requests in ``sent``."""
    return [json.loads(r.content) for r in sent if r.method == "POST"]


@contextlib.asynccontextmanager
async def readonly_store(path: Path) -> AsyncIterator[Store]:
    """The database at ``path``, read-only."""
    store = await Store.open(path, readonly=True)
    try:
        yield store
    finally:
        await store.close()


def outcomes_of(controller: SessionController) -> list[ConversationOutcome]:
    kept: list[ConversationOutcome] = []
    controller.on_conversation(lambda _, outcome: kept.append(outcome))
    return kept


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_three_scripted_turns_carry_their_history(
    api: Api, client: httpx.AsyncClient, sim_url: str, sim_key: str, store: Store
) -> None:
    controller = controller_for(talker(api, sim_key), client, sim_url, store=store)
    sent = count_requests(client)
    outcomes = outcomes_of(controller)
    await controller.start()

    view = controller.conversation
    assert [t.turn for t in view.turns] == [1, 2, 3] and all(t.kept for t in view.turns)
    assert [t.prompt for t in view.turns] == list(SCRIPT) and view.planned == 3
    for turn, previous in ((2, SCRIPT[0]), (3, SCRIPT[1])):
        assert view.turns[turn - 1].answer.startswith(marker(turn, previous))
    assert marker(2, "") not in view.turns[0].answer
    # the context grows with the history, and the total so far adds each turn's input
    assert all(t.input_tokens is not None for t in view.turns)
    used = [t.input_tokens or 0 for t in view.turns]
    assert used == sorted(used) and len(set(used)) == 3
    assert [t.input_tokens_so_far for t in view.turns] == [sum(used[:n]) for n in (1, 2, 3)]
    assert view.input_tokens == sum(u or 0 for u in used) and not view.running
    # what went out: chat the whole messages list, responses previous_response_id (auto)
    posted = bodies(sent)
    if api == "chat":
        assert [len(b["messages"]) for b in posted] == [1, 3, 5]
        assert posted[2]["messages"][2] == {"role": "user", "content": SCRIPT[1]}
    else:
        assert "previous_response_id" not in posted[0]
        assert [b["input"] for b in posted[1:]] == list(SCRIPT[1:])
        assert all(b["previous_response_id"].startswith("resp_") for b in posted[1:])
    (outcome,) = outcomes
    assert (outcome.ended, outcome.turns_done, outcome.turns_planned) == ("completed", 3, 3)
    assert outcome.input_tokens == view.input_tokens and outcome.duration_s > 0
    assert outcome.run_ids == tuple(t.run_id for t in view.turns) and outcome.ok
    # the store keeps each run as a turn of the conversation; the records say it too
    conversation = await store.get_conversation(view.conversation_id)
    assert conversation is not None
    assert [(t.turn, t.run.run_id) for t in conversation.turns] == [
        (t.turn, t.run_id) for t in view.turns
    ]
    run = controller.current
    assert run is not None and run.turn == 3
    record = run.result()
    assert (record["conversation_id"], record["turn"]) == (view.conversation_id, 3)
    stored = await store.get_run(run.run_id)
    assert (stored.conversation_id, stored.turn) == (view.conversation_id, 3)


async def test_seeded_messages_go_before_turn_1(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    seed = (Message("user", "Answer briefly."), Message("assistant", "Understood."))
    session = talker("chat", sim_key, turns=SCRIPT[:2], messages=seed, system="Be kind.")
    controller = controller_for(session, client, sim_url)
    sent = count_requests(client)
    await controller.start()
    first, second = bodies(sent)
    assert first["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Answer briefly."},
        {"role": "assistant", "content": "Understood."},
        {"role": "user", "content": SCRIPT[0]},
    ]
    assert len(second["messages"]) == 6
    # the seed counts as the first user message: the simulator answers "turn 2" first
    view = controller.conversation
    assert view.turns[0].answer.startswith(marker(2, "Answer briefly."))
    assert view.turns[1].answer.startswith(marker(3, SCRIPT[0]))


async def test_auto_falls_back_once_on_a_gateway_that_keeps_nothing(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    controller = controller_for(
        talker("responses", sim_key, model="sim-stateless-404"), client, sim_url
    )
    follower = Follower()
    controller.subscribe(follower)
    sent = count_requests(client)
    await controller.start()

    view = controller.conversation
    assert all(t.kept for t in view.turns) and len(view.turns) == 3
    assert view.turns[2].answer.startswith(marker(3, SCRIPT[1]))
    assert view.fell_back and view.mode == "client"
    notices = [
        [e.code for e in follower.events[run.run_id] if isinstance(e, Notice)]
        for run in follower.runs
    ]
    assert [HISTORY_FALLBACK in codes for codes in notices] == [False, True, False]
    posted = bodies(sent)
    # turn 2: refused once, then the items; turn 3 sends the items at once
    assert ["previous_response_id" in b for b in posted] == [False, True, False, False]
    assert [len(b["input"]) for b in posted[2:]] == [3, 5]


async def test_server_mode_stops_clearly_where_the_server_keeps_nothing(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    session = talker("responses", sim_key, model="sim-stateless-404", history="server")
    controller = controller_for(session, client, sim_url)
    outcomes = outcomes_of(controller)
    sent = count_requests(client)
    await controller.start()

    view = controller.conversation
    assert [(t.turn, t.status) for t in view.turns] == [(1, "completed"), (2, "failed")]
    error = view.turns[1].error
    assert error is not None and error.startswith("turn 2: the server refused previous_response_id")
    assert "previous_response_not_found" not in error or "404" in error
    assert 'history = "auto" or "client"' in error and not view.fell_back
    assert len(bodies(sent)) == 2  # turn 2 once, turn 3 never
    (outcome,) = outcomes
    assert (outcome.ended, outcome.stopped_at, outcome.turns_done) == ("stopped", 2, 1)
    assert outcome.reason == error and not outcome.ok


async def test_store_false_continues_with_the_items(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    session = talker("responses", sim_key, params={"store": False})
    controller = controller_for(session, client, sim_url)
    sent = count_requests(client)
    await controller.start()
    posted = bodies(sent)
    assert all(b["store"] is False and "previous_response_id" not in b for b in posted)
    assert [len(b["input"]) if isinstance(b["input"], list) else 0 for b in posted] == [0, 3, 5]
    view = controller.conversation
    assert view.turns[2].answer.startswith(marker(3, SCRIPT[1])) and not view.server_keeps


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_a_tool_call_is_answered_by_the_next_prompt(
    api: Api, client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    session = talker(api, sim_key, model="sim-tools", turns=("Weather in Seoul?",))
    controller = controller_for(session, client, sim_url)
    sent = count_requests(client)
    await controller.start()
    view = controller.conversation
    (call,) = view.pending_tool_calls
    assert view.answers_tool_call and call.name == "get_weather"
    assert view.turns[0].finish_reason == "tool_calls"

    await controller.send("Sunny, 21 C.")
    view = controller.conversation
    assert [t.turn for t in view.turns] == [1, 2] and view.turns[1].answers_tools
    assert view.turns[1].status == "completed" and not view.answers_tool_call
    last = bodies(sent)[-1]
    if api == "chat":
        assert last["messages"][-1] == {
            "role": "tool",
            "tool_call_id": call.call_id,
            "content": "Sunny, 21 C.",
        }
    else:
        assert last["input"] == [
            {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C."}
        ]


async def test_follow_ups_are_refused_while_a_turn_runs_and_continue_after(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    slow = talker("chat", sim_key, timing="ttft=0.01,tps=40,tokens=2000", turns=("first",))
    controller = controller_for(slow, client, sim_url)
    controller.start()
    await until(lambda: controller.current is not None, "turn 1")
    with pytest.raises(TurnRefused, match="turn 1 is still running"):
        controller.send("too early")
    assert controller.send_refused() is not None
    controller.cancel()
    await controller.wait()
    assert controller.send_refused() is None
    with pytest.raises(ValueError, match="must not be empty"):
        controller.send("  ")
    # the cancelled turn 1 was not kept: the follow-up is sent in its place, without it
    controller.session = replace(slow, headers={**slow.headers, "X-Sim-Timing": QUICK})
    first_id = controller.conversation.conversation_id
    await controller.send("again")
    view = controller.conversation
    assert [(t.turn, t.prompt) for t in view.turns] == [(1, "again")]
    assert view.conversation_id == first_id
    await controller.send("and more")
    assert controller.conversation.turns[1].answer.startswith(marker(2, "again"))
    new_id = controller.new_conversation()
    view = controller.conversation
    assert view.conversation_id == new_id != first_id and view.turns == ()
    await controller.send("fresh")
    assert controller.conversation.turns[0].answer.startswith("## ")  # no marker: turn 1


async def test_edit_last_sends_the_turn_again_as_a_branch(
    client: httpx.AsyncClient, sim_url: str, sim_key: str, store: Store
) -> None:
    controller = controller_for(
        talker("chat", sim_key, turns=SCRIPT[:2]), client, sim_url, store=store
    )
    sent = count_requests(client)
    await controller.start()
    before = controller.conversation
    await controller.edit_last("How wide is it?")
    view = controller.conversation
    assert [t.prompt for t in view.turns] == [SCRIPT[0], "How wide is it?"]
    assert view.conversation_id == before.conversation_id
    assert view.turns[1].run_id != before.turns[1].run_id
    # the edited turn carried turn 1 only, not the answer it replaced
    assert len(bodies(sent)[-1]["messages"]) == 3
    conversation = await store.get_conversation(view.conversation_id)
    assert conversation is not None
    turn_2 = conversation.turns[1]
    assert turn_2.run.run_id == view.turns[1].run_id
    assert [b.run_id for b in turn_2.branches] == [before.turns[1].run_id]


async def test_a_failed_turn_is_retried_once_into_the_history(
    client: httpx.AsyncClient, sim_url: str, sim_key: str, store: Store
) -> None:
    answering = iter([sim_url, "http://127.0.0.1:9/v1", sim_url, sim_url])

    async def resolve(_: SessionConfig) -> str:  # turn 2's server is unreachable at first
        return next(answering)

    session = talker("chat", sim_key)
    session = replace(session, reconnect=replace(session.reconnect, max_retries=0))
    controller = TracedController(session, client=client, resolve_base_url=resolve, store=store)
    outcomes = outcomes_of(controller)
    sent = count_requests(client)
    await controller.start()
    view = controller.conversation
    assert [(t.turn, t.status) for t in view.turns] == [(1, "completed"), (2, "failed")]
    assert outcomes[-1].ended == "stopped" and outcomes[-1].stopped_at == 2

    await controller.restart()  # turn 2 again, then the rest of the script
    view = controller.conversation
    assert [(t.turn, t.status) for t in view.turns] == [
        (1, "completed"),
        (2, "completed"),
        (3, "completed"),
    ]
    # the failed try (to the unreachable server) and the retry sent the same history, and
    # turn 3 carries turn 2 once
    chat = bodies(sent)
    assert [len(b["messages"]) for b in chat] == [1, 3, 3, 5] and chat[1] == chat[2]
    assert [m["content"] for m in chat[3]["messages"] if m["role"] == "user"] == list(SCRIPT)
    retried = outcomes[-1]
    assert retried.ended == "completed" and retried.turns_done == 3
    conversation = await store.get_conversation(view.conversation_id)
    assert conversation is not None
    assert [len(t.branches) for t in conversation.turns] == [0, 1, 0]
    assert conversation.turns[1].branches[0].status == "failed"


@pytest.mark.parametrize(
    ("api", "fault", "background"),
    [("chat", "ids,drop=12", False), ("responses", "drop=12", True), ("chat", "drop=12", False)],
    ids=["chat-last-event-id", "responses-background", "chat-restart"],
)
async def test_a_drop_inside_a_later_turn_keeps_the_turns_before(
    api: Api,
    fault: str,
    background: bool,
    client: httpx.AsyncClient,
    sim_url: str,
    sim_key: str,
) -> None:
    session = talker(api, sim_key, fault=fault, background=background, turns=SCRIPT)
    controller = controller_for(session, client, sim_url)
    follower = Follower()
    controller.subscribe(follower)
    sent = count_requests(client)
    await controller.start()

    view = controller.conversation
    assert [t.status for t in view.turns] == ["completed"] * 3
    # every turn's first attempt dropped (the fault counts attempts per turn)
    attempts = [r.accumulator.attempts for r in follower.runs]
    assert all(len(a) >= 2 for a in attempts), attempts
    if fault.startswith("ids") or background:
        assert all(
            any(isinstance(e, Resumed) for e in follower.events[r.run_id]) for r in follower.runs
        )
    # each turn's answer is whole and opens with its own marker (nothing doubled)
    for turn, previous in ((2, SCRIPT[0]), (3, SCRIPT[1])):
        answer = view.turns[turn - 1].answer
        assert answer.startswith(marker(turn, previous)) and answer.count("(turn ") == 1
    # every request of a turn carried the turns before it exactly once
    for body in bodies(sent):
        items = body.get("messages") or body.get("input")
        if isinstance(items, list):
            prompts = [m.get("content") for m in items if m.get("role") == "user"]
            assert len(prompts) == len(set(prompts)), prompts


async def test_a_history_that_outgrows_the_context_window_names_the_turn(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    session = talker("responses", sim_key, model="sim-small-context", timing="ttft=0.01,tps=0")
    controller = controller_for(session, client, sim_url)
    outcomes = outcomes_of(controller)
    await controller.start()
    view = controller.conversation
    assert [t.status for t in view.turns] == ["completed", "completed", "failed"]
    error = view.turns[2].error
    assert error is not None and error.startswith(
        "turn 3 no longer fits the model's context window (context_length_exceeded): "
    )
    assert not view.fell_back and view.mode == "auto"  # a full window says nothing of state
    assert outcomes[0].stopped_at == 3 and outcomes[0].reason == error


async def test_a_scripted_conversation_repeats_as_new_conversations(
    client: httpx.AsyncClient, sim_url: str, sim_key: str, store: Store
) -> None:
    session = talker("chat", sim_key, turns=SCRIPT[:2], repeat=Repeat(every_s=0.01, count=2))
    controller = controller_for(session, client, sim_url, store=store)
    outcomes = outcomes_of(controller)
    follower = Follower()
    controller.subscribe(follower)
    await controller.start()
    assert [(o.ended, o.turns_done) for o in outcomes] == [("completed", 2)] * 2
    ids = [o.conversation_id for o in outcomes]
    assert len(set(ids)) == 2
    assert [(r.conversation_id, r.turn) for r in follower.runs] == [
        (ids[0], 1),
        (ids[0], 2),
        (ids[1], 1),
        (ids[1], 2),
    ]
    # each repetition starts from turn 1 again: no marker in its first answer
    assert follower.runs[2].accumulator.output_text.startswith("## ")
    for cid in ids:
        conversation = await store.get_conversation(cid)
        assert conversation is not None and len(conversation.turns) == 2


async def test_a_one_turn_session_restarts_as_a_new_conversation(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    session = make_session("chat", key=sim_key, timing=QUICK)
    controller = controller_for(session, client, sim_url)
    await controller.start()
    first = controller.conversation
    await controller.restart()
    second = controller.conversation
    assert second.conversation_id != first.conversation_id
    assert [t.turn for t in second.turns] == [1] and second.planned == 1


async def test_a_runtime_holds_conversations_on_its_engine_thread(
    sim_url: str, sim_key: str, db_path: Path
) -> None:
    chat = replace(talker("chat", sim_key, turns=SCRIPT[:2]), name="chat", base_url="sim")
    responses = replace(talker("responses", sim_key, turns=SCRIPT[:2]), name="responses")
    runtime = SessionRuntime([chat, responses], simulator=lambda: sim_url)
    try:
        await runtime.open_store(db_path)
        await runtime.start()
        assert runtime.engine is not None  # the runs stream on the engine's thread
        for controller in runtime.controllers:
            controller.start()
        await runtime.wait_idle(DEADLINE_S)
        for controller in runtime.controllers:
            view = controller.conversation
            assert [t.status for t in view.turns] == ["completed", "completed"]
            assert view.turns[1].answer.startswith(marker(2, SCRIPT[0]))
    finally:
        await runtime.close()
    async with readonly_store(db_path) as store:
        conversations = await store.list_conversations()
        assert sorted(c.turns for c in conversations) == [2, 2]


async def test_a_round_run_is_one_turn_and_a_follow_up_continues_each_column(
    sim_url: str, sim_key: str
) -> None:
    scripted = replace(talker("chat", sim_key), name="scripted")
    plain = replace(make_session("responses", key=sim_key, timing=QUICK), name="plain")
    runtime = SessionRuntime([scripted, plain], simulator=lambda: sim_url)
    try:
        await runtime.start()
        round = Round(runtime, ["scripted", "plain"], count=2, prompt="Name a lake.")
        assert await round.start() == "done"
        for controller in runtime.controllers:
            view = controller.conversation
            assert [(t.turn, t.prompt) for t in view.turns] == [(1, "Name a lake.")]
        runs = [e.run_id for e in round.entries]
        assert len(set(runs)) == 4
        # the compare screen's follow-up: one send per checked column
        tasks = [c.send("How deep is it?") for c in runtime.controllers]
        await asyncio.wait(tasks)
        for controller in runtime.controllers:
            view = controller.conversation
            assert [t.turn for t in view.turns] == [1, 2]
            assert view.turns[1].answer.startswith(marker(2, "Name a lake."))
    finally:
        await runtime.close()
