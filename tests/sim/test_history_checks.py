"""The simulator checks a conversation's shape as OpenAI does (its 400 error naming the field),
and the pure parts of conversations: turns, the turn marker, the bounded registry."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tui.sim import faults as fx
from tui.sim import text
from tui.sim.conversation import check_messages
from tui.sim.errors import RequestError
from tui.sim.items import input_items, items_conversation
from tui.sim.plan import GenRequest
from tui.sim.registry import ResponseRegistry, StoredResponse

CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
USER = {"role": "user", "content": "hi"}

BAD_MESSAGES: list[tuple[Any, str, str | None]] = [
    (None, "messages", "missing_required_parameter"),
    ("hi", "messages", "invalid_type"),
    ([], "messages", "empty_array"),
    (["hi"], "messages[0]", "invalid_type"),
    ([{"content": "hi"}], "messages[0].role", "missing_required_parameter"),
    ([{"role": "robot", "content": "hi"}], "messages[0].role", "invalid_value"),
    ([{"role": "user"}], "messages[0].content", "missing_required_parameter"),
    ([{"role": "user", "content": 7}], "messages[0].content", "invalid_type"),
    (
        [{"role": "user", "content": [{"type": "nope"}]}],
        "messages[0].content[0].type",
        "invalid_value",
    ),
    (
        [{"role": "user", "content": [{"type": "text"}]}],
        "messages[0].content[0].text",
        "missing_required_parameter",
    ),
    (
        [{"role": "system", "content": [{"type": "image_url"}]}],
        "messages[0].content[0].type",
        "invalid_value",
    ),
    ([USER, {"role": "assistant"}], "messages[1].content", "missing_required_parameter"),
    ([USER, {"role": "assistant", "tool_calls": "x"}], "messages[1].tool_calls", "invalid_type"),
    (
        [USER, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function"}]}],
        "messages[1].tool_calls[0].function",
        "missing_required_parameter",
    ),
    (
        [USER, {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f"}}]}],
        "messages[1].tool_calls[0].function.arguments",
        "missing_required_parameter",
    ),
    ([USER, {"role": "tool", "tool_call_id": "c1", "content": "x"}], "messages.[1].role", None),
    ([USER, {"role": "assistant", "tool_calls": [CALL]}], "messages.[1].role", None),
    ([USER, {"role": "assistant", "tool_calls": [CALL]}, USER], "messages.[1].role", None),
    (
        [
            USER,
            {"role": "assistant", "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "c9", "content": "x"},
        ],
        "messages.[2].tool_call_id",
        None,
    ),
    (
        [USER, {"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "content": "x"}],
        "messages[2].tool_call_id",
        "missing_required_parameter",
    ),
]

BAD_INPUT: list[tuple[Any, str, str | None]] = [
    (7, "input", "invalid_type"),
    ([7], "input[0]", "invalid_type"),
    ([{}], "input[0].type", "missing_required_parameter"),
    ([{"type": "bogus"}], "input[0].type", "invalid_value"),
    ([{"type": "message", "content": "x"}], "input[0].role", "missing_required_parameter"),
    ([{"role": "tool", "content": "x"}], "input[0].role", "invalid_value"),
    ([{"role": "user"}], "input[0].content", "missing_required_parameter"),
    ([{"role": "user", "content": {"text": "x"}}], "input[0].content", "invalid_type"),
    (
        [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}],
        "input[0].content[0].type",
        "invalid_value",
    ),
    (
        [{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}],
        "input[0].content[0].type",
        "invalid_value",
    ),
    (
        [{"role": "user", "content": [{"type": "input_text", "text": 3}]}],
        "input[0].content[0].text",
        "invalid_type",
    ),
    (
        [{"type": "function_call", "name": "f", "arguments": "{}"}],
        "input[0].call_id",
        "missing_required_parameter",
    ),
    (
        [{"type": "function_call_output", "call_id": "c1"}],
        "input[0].output",
        "missing_required_parameter",
    ),
    ([{"type": "function_call_output", "call_id": "c1", "output": "x"}], "input", None),
    (
        [USER, {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}],
        "input",
        None,
    ),
]


def _post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + path, json=body, headers={"X-Sim-Timing": "ttft=0,tps=0,tokens=5"})


@pytest.mark.parametrize(("messages", "param", "code"), BAD_MESSAGES)
def test_bad_messages_get_openais_400(
    sim_url: str, messages: Any, param: str, code: str | None
) -> None:
    body: dict[str, Any] = {"model": "sim"}
    if messages is not None:
        body["messages"] = messages
    resp = _post(sim_url, "/chat/completions", body)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert error["message"]


@pytest.mark.parametrize(("value", "param", "code"), BAD_INPUT)
def test_bad_input_items_get_openais_400(
    sim_url: str, value: Any, param: str, code: str | None
) -> None:
    resp = _post(sim_url, "/responses", {"model": "sim", "input": value})
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


def test_error_messages_read_like_openais(sim_url: str) -> None:
    robot = _post(sim_url, "/chat/completions", {"messages": [{"role": "robot", "content": "x"}]})
    assert robot.json()["error"]["message"] == (
        "Invalid value: 'robot'. Supported values are: 'system', 'assistant', 'user', "
        "'function', 'tool', and 'developer'."
    )
    body = {"messages": [USER, {"role": "assistant", "tool_calls": [CALL]}]}
    unanswered = _post(sim_url, "/chat/completions", body)
    assert unanswered.json()["error"]["message"] == (
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: c1"
    )
    missing = _post(sim_url, "/responses", {"model": "sim"})
    assert missing.json()["error"]["message"] == "Missing required parameter: 'input'."
    typed = _post(sim_url, "/responses", {"input": "x", "previous_response_id": 5})
    assert typed.json()["error"]["param"] == "previous_response_id"


def test_fault_items_for_server_state() -> None:
    items = fx.parse_fault_header("stateless=404,context=50")
    assert fx.server_state(items) == fx.ServerState(404, 50)
    assert fx.server_state(()) == fx.ServerState(None, fx.DEFAULT_CONTEXT)
    assert fx.server_state(fx.preset_for("sim-stateless-400").faults).stateless == 400
    assert fx.server_state(fx.preset_for("SIM-SMALL-CONTEXT").faults).context == 320
    with pytest.raises(fx.SimSpecError, match="400 or 404"):
        fx.parse_fault_header("stateless=500")


def test_turns_count_user_messages() -> None:
    conv = check_messages(
        [
            {"role": "system", "content": "s"},
            {"role": "user", "content": [{"type": "text", "text": "one"}]},
            {"role": "assistant", "content": "a", "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "c1", "content": "r"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "two"},
        ]
    )
    assert (conv.prompt, conv.turn, conv.earlier, conv.tool_result) == ("two", 2, "one", False)
    single = check_messages(
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    )
    assert (single.turn, single.earlier) == (1, "")
    items = [
        *input_items("q"),
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "r"},
    ]
    conv = items_conversation(items)
    assert (conv.prompt, conv.turn, conv.tool_result) == ("q", 1, True)
    with pytest.raises(RequestError, match="No tool call found"):
        items_conversation(items[2:])


def test_turn_marker_and_answers() -> None:
    assert text.turn_marker(3, "now shorter") == '(turn 3) Following up on "now shorter".\n\n'
    long = "Explain how server-sent events carry a streamed answer over HTTP"
    assert text.brief(long) == "Explain how server-sent events carry a…"
    assert text.brief("first line\nsecond") == "first line"
    assert text.turn_marker(2, "   ") == "(turn 2)\n\n"
    assert text.turn_answer_tokens(0, "q", 30, 1, "") == text.answer_tokens(0, "q", 30)
    later = text.turn_answer_tokens(0, "q", 30, 2, "p")
    assert len(later) == 30 and "".join(later).startswith('(turn 2) Following up on "p".')
    assert len(text.turn_answer_tokens(0, "q", 3, 5, "p")) == 3  # a tiny answer is cut


def _stored(rid: str, previous: StoredResponse | None, said: str) -> StoredResponse:
    req = GenRequest("sim", said, 1, None, items=({"role": "user", "content": said},))
    output = [{"type": "message", "role": "assistant", "content": [{"type": "output_text"}]}]
    final = {"id": rid, "output": output}
    return StoredResponse(req, rid, 0, [], [], [], 0.0, final, "k", (), 0, previous=previous)


def test_registry_is_bounded_and_chains_outlive_eviction() -> None:
    registry = ResponseRegistry(capacity=2)
    first = _stored("r1", None, "one")
    registry.put(first)
    second = _stored("r2", first, "two")
    registry.put(second)
    registry.put(_stored("r3", None, "other"))
    assert len(registry) == 2 and registry.get("r1") is None
    state = fx.ServerState()
    with pytest.raises(RequestError) as info:
        registry.previous({"previous_response_id": "r1"}, state)
    assert (info.value.status, info.value.code) == (404, "previous_response_not_found")
    chain = registry.previous({"previous_response_id": "r2"}, state)
    assert chain is second
    said = [i.get("content") for i in chain.history() if i.get("role") == "user"]
    assert said == ["one", "two"]
    assert registry.previous({}, state) is None
