"""A follow-up turn carries its history: Chat Completions gets the whole ``messages`` list,
Responses gets ``previous_response_id`` (server state) or the turns as input items; a server
that refuses ``previous_response_id`` with 400/404 gets the items once, at once, and the run
says so. The bodies are checked as a real server receives them (loopback sockets)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from tests.stream.helpers import make_session, of_type
from tests.stream.hostile import HostileServer, Script, chat_events, head, parts, responses_events
from tui.session.conversation import ConversationState
from tui.stream.accumulate import RunAccumulator
from tui.stream.chat_types import build_chat_body
from tui.stream.events import Finished, Notice, Retrying, RunEvent
from tui.stream.history import Conversation, Turn
from tui.stream.responses_types import build_responses_body
from tui.stream.result import ToolCall
from tui.stream.runner import HISTORY_FALLBACK, StreamRun
from tui.stream.transport import make_client
from tui.vocab import Api, HistoryMode

CALL = ToolCall(index=0, call_id="call_w", name="weather", arguments='{"city": "Seoul"}')
TURNS = (
    Turn("Name a river.", "The Han.", response_id="resp_1"),
    Turn("Its weather?", "", tool_calls=(CALL,), response_id="resp_2"),
)


def history(mode: HistoryMode = "client", *, seed: bool = False) -> Conversation:
    messages = (
        ({"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi."})
        if seed
        else ()
    )
    return Conversation(messages=messages, turns=TURNS, mode=mode)


def test_chat_sends_every_turn_with_its_tool_calls_and_the_prompt_as_their_output() -> None:
    session = replace(make_session("chat", timing=None), system="Be brief.")
    body = build_chat_body(session, "Sunny, 21 C.", history(seed=True))
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "Hi."},
        {"role": "user", "content": "Name a river."},
        {"role": "assistant", "content": "The Han."},
        {"role": "user", "content": "Its weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_w",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Seoul"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_w", "content": "Sunny, 21 C."},
    ]


def test_a_tool_call_without_an_id_is_paired_with_its_output_by_a_stable_stand_in() -> None:
    call = ToolCall(index=0, call_id=None, name="f", arguments="{}")
    turns = (Turn("go", "", tool_calls=(call,)),)
    messages = build_chat_body(make_session("chat"), "done", Conversation(turns=turns))["messages"]
    assert messages[-2]["tool_calls"][0]["id"] == messages[-1]["tool_call_id"]


def test_responses_items_carry_the_turns_the_calls_and_their_outputs() -> None:
    body = build_responses_body(make_session("responses"), "Sunny.", history(seed=True))
    assert "previous_response_id" not in body
    assert body["input"] == [
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "Hi."},
        {"role": "user", "content": "Name a river."},
        {"role": "assistant", "content": "The Han."},
        {"role": "user", "content": "Its weather?"},
        {
            "type": "function_call",
            "call_id": "call_w",
            "name": "weather",
            "arguments": '{"city": "Seoul"}',
        },
        {"type": "function_call_output", "call_id": "call_w", "output": "Sunny."},
    ]


@pytest.mark.parametrize("mode", ["server", "auto"])
def test_responses_with_server_state_sends_the_last_id_and_only_the_new_turn(
    mode: HistoryMode,
) -> None:
    plain = Conversation(turns=TURNS[:1], mode=mode)
    body = build_responses_body(make_session("responses"), "Shorter.", plain)
    assert body["previous_response_id"] == "resp_1"
    assert body["input"] == "Shorter."
    after_call = build_responses_body(make_session("responses"), "Sunny.", history(mode))
    assert after_call["previous_response_id"] == "resp_2"
    assert after_call["input"] == [
        {"type": "function_call_output", "call_id": "call_w", "output": "Sunny."}
    ]


def test_a_turn_the_server_did_not_keep_is_sent_as_items_even_in_server_mode() -> None:
    kept_nothing = Conversation(turns=(Turn("Name a river.", "The Han."),), mode="server")
    body = build_responses_body(make_session("responses"), "Shorter.", kept_nothing)
    assert "previous_response_id" not in body
    assert body["input"][-1] == {"role": "user", "content": "Shorter."}


def test_a_first_turn_is_a_plain_string_and_instructions_go_with_every_turn() -> None:
    session = replace(make_session("responses"), system="Be brief.")
    assert build_responses_body(session, "Hi", None)["input"] == "Hi"
    body = build_responses_body(session, "Again", Conversation(turns=TURNS[:1], mode="server"))
    assert body["instructions"] == "Be brief."


# -- the fallback, over loopback -----------------------------------------------------------
@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as http:
        yield http


def refusal(
    status: int,
    message: str = "Previous response with id 'resp_1' not found.",
    code: str | None = "previous_response_not_found",
) -> Script:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    body = json.dumps({"error": error}).encode()
    reason = "Not Found" if status == 404 else "Bad Request"
    start = head(status, reason=reason, content_type="application/json")
    return parts(start.replace(b"\r\n\r\n", b"\r\ncontent-length: %d\r\n\r\n" % len(body)) + body)


async def run_turn(
    scripts: list[Script], conversation: Conversation, client: httpx.AsyncClient
) -> tuple[list[RunEvent], list[dict[str, Any]]]:
    async with HostileServer(scripts) as server:
        run = StreamRun(
            make_session("responses", timing=None, max_retries=2),
            client=client,
            base_url=server.base_url,
            prompt="Shorter.",
            history=conversation,
        )

        async def drain() -> list[RunEvent]:
            return [event async for event in run]

        events = await asyncio.wait_for(drain(), 10.0)
        return events, [json.loads(r.body) for r in server.requests]


@pytest.mark.parametrize("status", [400, 404])
async def test_auto_falls_back_to_items_once_when_the_server_refuses_the_id(
    status: int, client: httpx.AsyncClient
) -> None:
    answer = parts(head() + b"".join(responses_events(["Short", "er."])))
    events, bodies = await run_turn(
        [refusal(status), answer], Conversation(turns=TURNS[:1], mode="auto"), client
    )
    assert [b.get("previous_response_id") for b in bodies] == ["resp_1", None]
    assert bodies[1]["input"][-1] == {"role": "user", "content": "Shorter."}
    notices = [n for n in of_type(events, Notice) if n.code == HISTORY_FALLBACK]
    assert len(notices) == 1 and f"HTTP {status}" in notices[0].message
    assert not of_type(events, Retrying)  # sent again at once: not a retry
    assert of_type(events, Finished)[0].status == "completed"


async def test_a_second_refusal_fails_the_run_instead_of_looping(
    client: httpx.AsyncClient,
) -> None:
    events, bodies = await run_turn(
        [refusal(404)], Conversation(turns=TURNS[:1], mode="auto"), client
    )
    assert len(bodies) == 2
    finished = of_type(events, Finished)[0]
    assert finished.status == "failed" and finished.error is not None
    assert finished.error.http_status == 404


async def test_server_mode_never_falls_back(client: httpx.AsyncClient) -> None:
    events, bodies = await run_turn(
        [refusal(404)], Conversation(turns=TURNS[:1], mode="server"), client
    )
    assert len(bodies) == 1
    assert of_type(events, Finished)[0].status == "failed"


async def test_chat_history_reaches_the_server(client: httpx.AsyncClient) -> None:
    async with HostileServer([parts(head() + b"".join(chat_events(["ok"])))]) as server:
        run = StreamRun(
            make_session("chat", timing=None),
            client=client,
            base_url=server.base_url,
            prompt="Shorter.",
            history=Conversation(turns=TURNS[:1]),
        )
        assert of_type([e async for e in run], Finished)[0].status == "completed"
        sent = json.loads(server.requests[0].body)["messages"]
    assert [m["content"] for m in sent] == ["Name a river.", "The Han.", "Shorter."]


# -- a whole conversation with the simulator -----------------------------------------------
async def _turns(
    api: Api, model: str, sim_url: str, sim_key: str, mode: HistoryMode
) -> tuple[list[RunAccumulator], ConversationState]:
    """Three turns of one conversation, each run carrying the state's history."""
    session = make_session(api, key=sim_key, model=model)
    state = ConversationState(api, mode=mode)
    accs = []
    async with make_client() as http:
        for prompt in ("Name a river.", "Now shorter.", "In Korean."):
            run = StreamRun(
                session, client=http, base_url=sim_url, prompt=prompt, history=state.history()
            )
            acc = RunAccumulator("run", session.name, api, model, prompt)
            async for event in run:
                acc.apply(event)
            state.finish(prompt, acc)
            accs.append(acc)
    return accs, state


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_three_turns_reach_the_simulator_with_their_history(
    api: Api, sim_url: str, sim_key: str
) -> None:
    accs, state = await _turns(api, "sim-fast", sim_url, sim_key, "auto")
    assert [a.status for a in accs] == ["completed"] * 3
    assert not accs[0].output_text.startswith("(turn")
    assert accs[1].output_text.startswith('(turn 2) Following up on "Name a river."')
    assert accs[2].output_text.startswith('(turn 3) Following up on "Now shorter."')
    assert state.mode == "auto" and len(state.turns) == 3
    inputs = [a.usage.input_tokens or 0 for a in accs if a.usage is not None]
    assert len(inputs) == 3 and 0 < inputs[0] < inputs[1] < inputs[2]  # the context grows


@pytest.mark.parametrize("model", ["sim-stateless-400", "sim-stateless-404"])
async def test_a_gateway_that_keeps_nothing_gets_the_items_and_the_session_remembers(
    model: str, sim_url: str, sim_key: str
) -> None:
    accs, state = await _turns("responses", model, sim_url, sim_key, "auto")
    assert [a.status for a in accs] == ["completed"] * 3
    assert accs[2].output_text.startswith("(turn 3)")
    assert [HISTORY_FALLBACK in a.notices for a in accs] == [False, True, False]
    assert state.mode == "client" and state.fell_back


@pytest.mark.parametrize(
    ("status", "message", "code"),
    [
        (400, "Unrecognized request argument supplied: previous_response_id", None),
        (400, "Unsupported parameter: 'previous_response_id'.", "unsupported_parameter"),
        (404, "Not Found", None),
    ],
)
async def test_other_wordings_of_a_refused_id_fall_back_too(
    status: int, message: str, code: str | None, client: httpx.AsyncClient
) -> None:
    answer = parts(head() + b"".join(responses_events(["ok"])))
    events, bodies = await run_turn(
        [refusal(status, message, code), answer], Conversation(turns=TURNS[:1], mode="auto"), client
    )
    assert [b.get("previous_response_id") for b in bodies] == ["resp_1", None]
    assert of_type(events, Finished)[0].status == "completed"


@pytest.mark.parametrize(
    ("status", "message", "code"),
    [
        (400, "This model's maximum context length is 320 tokens.", "context_length_exceeded"),
        (400, "Invalid value for 'temperature'.", "invalid_value"),
        (404, "The model 'x' does not exist", "model_not_found"),
    ],
)
async def test_a_400_or_404_for_another_cause_is_not_answered_with_more_history(
    status: int, message: str, code: str, client: httpx.AsyncClient
) -> None:
    events, bodies = await run_turn(
        [refusal(status, message, code)], Conversation(turns=TURNS[:1], mode="auto"), client
    )
    assert len(bodies) == 1
    assert not [n for n in of_type(events, Notice) if n.code == HISTORY_FALLBACK]
    finished = of_type(events, Finished)[0]
    assert finished.status == "failed" and finished.error is not None
    assert finished.error.code == code
