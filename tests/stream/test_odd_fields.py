"""One odd field never drops a whole event (issue 15, part B, kind 1): chunks and events
whose known fields have unexpected types or impossible numbers are read as far as usable,
with one ``Notice`` per kind of oddity per run; both APIs, fed directly and over loopback."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.stream.canned import CannedServer, response
from tests.stream.helpers import feed, fold, make_session, of_type, run_session, sse, texts
from tui.stream.adapter import Outcome
from tui.stream.chat import ChatAdapter
from tui.stream.events import Notice, RawEvent, RunEvent, ToolCallDelta, Usage
from tui.stream.responses import ResponsesAdapter


def chat(choice: dict[str, Any] | None = None, **extra: Any) -> str:
    """One chat chunk with one choice (``choice`` merged into a plain one)."""
    body: dict[str, Any] = {"id": "c1", "model": "m"}
    if choice is not None:
        body["choices"] = [{"index": 0, "delta": {}, "finish_reason": None, **choice}]
    return json.dumps({**body, **extra})


def frame(events: list[dict[str, Any]]) -> bytes:
    """Responses events as SSE, numbered by ``sequence_number`` unless they carry one."""
    out = []
    for i, ev in enumerate(events):
        ev = {"sequence_number": i, **ev}
        out.append(f"event: {ev['type']}\ndata: {json.dumps(ev)}\n\n")
    return "".join(out).encode()


INT64_MAX = 2**63 - 1
"""SQLite's largest INTEGER."""

REF = {"item_id": "msg_1", "output_index": 0, "content_index": 0}


def delta(text: Any, **extra: Any) -> dict[str, Any]:
    """A Responses text delta event."""
    return {"type": "response.output_text.delta", **REF, "delta": text, **extra}


def completed(**resp: Any) -> dict[str, Any]:
    """A ``response.completed`` event with the given response fields."""
    return {"type": "response.completed", "response": {"id": "r1", "status": "completed", **resp}}


def notices(events: list[RunEvent]) -> list[Notice]:
    """The notices among ``events``."""
    return of_type(events, Notice)


def codes(events: list[RunEvent]) -> list[str]:
    """The notice codes among ``events``."""
    return [n.code for n in notices(events)]


# -- chat: fed directly --------------------------------------------------------------------


def test_chat_integral_float_count_on_the_finish_chunk_keeps_length() -> None:
    stream = sse(
        chat({"delta": {"content": "ab"}}),
        chat(
            {"finish_reason": "length"},
            usage={"prompt_tokens": 5.0, "completion_tokens": 123.0, "total_tokens": 128},
        ),
        "[DONE]",
    )
    events, outcome, _ = feed(ChatAdapter(), [stream])
    assert outcome == Outcome("incomplete", "length", "length")
    assert of_type(events, Usage) == [Usage(0.0, 5, 123, None, None, 128)]
    assert all(type(u.output_tokens) is int for u in of_type(events, Usage))
    assert codes(events) == ["odd_field", "odd_field"]  # one per field, not per chunk
    assert "123" in notices(events)[1].message


def test_chat_index_null_on_every_choice_keeps_the_text() -> None:
    stream = sse(
        *(chat({"index": None, "delta": {"content": c}}) for c in "abc"),
        chat({"index": None, "finish_reason": "stop"}),
        "[DONE]",
    )
    events, outcome, _ = feed(ChatAdapter(), [stream])
    assert texts(events) == "abc" and outcome == Outcome("completed", "stop", "stop")
    assert codes(events) == ["odd_field"]  # once per run, not per chunk


def test_chat_tool_arguments_as_an_object_are_kept_as_json() -> None:
    call = {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": {"city": "Oslo"}}}
    stream = sse(
        chat({"delta": {"tool_calls": [call]}}), chat({"finish_reason": "tool_calls"}), "[DONE]"
    )
    events, outcome, _ = feed(ChatAdapter(), [stream])
    (tool,) = fold(events).tool_calls
    assert (tool.name, tool.call_id, json.loads(tool.arguments)) == (
        "f",
        "call_1",
        {"city": "Oslo"},
    )
    assert outcome == Outcome("completed", "tool_calls", "tool_calls")
    assert "arguments" in notices(events)[0].message


def test_chat_tool_calls_without_index_stay_apart_by_id() -> None:
    def call(call_id: str | None, name: str | None, args: str) -> dict[str, Any]:
        fn: dict[str, Any] = {"arguments": args}
        if name:
            fn["name"] = name
        return {"id": call_id, "type": "function", "function": fn} if call_id else {"function": fn}

    stream = sse(
        chat({"delta": {"tool_calls": [call("c1", "f", '{"a":')]}}),
        chat({"delta": {"tool_calls": [call(None, None, "1}")]}}),
        chat({"delta": {"tool_calls": [call("c2", "g", '{"b":2}')]}}),
        chat({"finish_reason": "tool_calls"}),
        "[DONE]",
    )
    events, _, _ = feed(ChatAdapter(), [stream])
    calls = fold(events).tool_calls
    assert [(c.index, c.call_id, c.name, c.arguments) for c in calls] == [
        (0, "c1", "f", '{"a":1}'),
        (1, "c2", "g", '{"b":2}'),
    ]
    assert codes(events) == ["odd_field"]


def test_chat_two_calls_reusing_one_index_stay_apart() -> None:
    def call(call_id: str, name: str) -> dict[str, Any]:
        return {"index": 0, "id": call_id, "function": {"name": name, "arguments": "{}"}}

    stream = sse(
        chat({"delta": {"tool_calls": [call("c1", "f")]}}),
        chat({"delta": {"tool_calls": [call("c2", "g")]}}),
        "[DONE]",
    )
    events, _, _ = feed(ChatAdapter(), [stream])
    assert [(c.call_id, c.name) for c in fold(events).tool_calls] == [("c1", "f"), ("c2", "g")]
    assert codes(events) == ["tool_index_reused"]


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": 1e999, "completion_tokens": 3}, (None, 3)),
        ({"prompt_tokens": 2**70, "completion_tokens": 3}, (None, 3)),
        ({"prompt_tokens": 4, "completion_tokens": -3}, (4, None)),
        ({"prompt_tokens": 4, "completion_tokens": 2.5}, (4, None)),
        ({"prompt_tokens": "7", "completion_tokens": True}, (7, None)),
        ({"prompt_tokens": "²", "completion_tokens": " 12 "}, (None, 12)),  # not int("²")
        ({"prompt_tokens": INT64_MAX, "completion_tokens": INT64_MAX + 1}, (INT64_MAX, None)),
    ],
)
def test_chat_impossible_counts_are_dropped_with_a_notice(
    usage: dict[str, Any], expected: tuple[int | None, int | None]
) -> None:
    raw = json.dumps({"choices": [], "usage": usage}).replace("Infinity", "1e999")
    stream = sse(chat({"delta": {"content": "x"}}), chat({"finish_reason": "stop"}), raw, "[DONE]")
    events, outcome, _ = feed(ChatAdapter(), [stream])
    (u,) = of_type(events, Usage)
    assert (u.input_tokens, u.output_tokens) == expected
    assert outcome == Outcome("completed", "stop", "stop") and texts(events) == "x"
    assert notices(events) and {n.code for n in notices(events)} <= {"odd_field", "odd_number"}


def test_chat_nested_usage_details_of_odd_types() -> None:
    usage = {
        "prompt_tokens": 9,
        "completion_tokens": 3,
        "prompt_tokens_details": "none",
        "completion_tokens_details": {"reasoning_tokens": 1.0},
    }
    stream = sse(chat({"delta": {"content": "x"}}), json.dumps({"choices": [], "usage": usage}))
    events, _, _ = feed(ChatAdapter(), [stream])
    assert of_type(events, Usage) == [Usage(0.0, 9, 3, 1, None, None)]


@pytest.mark.parametrize(
    ("choices", "text"),
    [
        ({"index": 0, "delta": {"content": "one object"}}, "one object"),  # not a list
        ([{"index": 0, "delta": "a string delta"}], "a string delta"),
        ([{"index": 0, "delta": {"content": [{"type": "text", "text": "pa"}, "rts"]}}], "parts"),
        ([{"index": "0", "delta": {"content": {"type": "text", "text": "one part"}}}], "one part"),
        ([{"index": 0.0, "delta": {"content": "float index", "role": 7}}], "float index"),
        ([{"index": 0, "delta": {"content": 42}}], "42"),
        ([{"index": 0, "delta": None, "message": {"content": "whole message"}}], "whole message"),
    ],
)
def test_chat_odd_shapes_of_choices_delta_and_content(choices: Any, text: str) -> None:
    stream = sse(json.dumps({"id": 5, "choices": choices}), chat({"finish_reason": "stop"}))
    events, outcome, _ = feed(ChatAdapter(), [stream])
    assert texts(events) == text and outcome == Outcome("completed", "stop", "stop")
    assert codes(events)  # what was odd is said


def test_chat_null_choices_delta_and_a_null_choice_are_nothing_not_an_error() -> None:
    stream = sse(
        json.dumps({"choices": None, "usage": None}),
        json.dumps({"choices": [{"index": 0, "delta": None, "finish_reason": None}]}),
        json.dumps({"choices": [None, {"index": 0, "delta": {"content": "ok"}}]}),
        chat({"finish_reason": "stop"}),
        "[DONE]",
    )
    events, outcome, _ = feed(ChatAdapter(), [stream])
    assert texts(events) == "ok" and outcome == Outcome("completed", "stop", "stop")


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ({"message": ["bad", "worse"], "code": 1.5, "param": ["messages", 0]}, '["bad","worse"]'),
        (["first failure", {"message": "second"}], "first failure; second"),
        ({"message": {"text": "nested"}}, '{"text":"nested"}'),
    ],
)
def test_chat_errors_of_any_shape_fail_the_run_with_their_message(error: Any, message: str) -> None:
    stream = sse(chat({"delta": {"content": "partial"}}), json.dumps({"error": error}), "[DONE]")
    events, outcome, _ = feed(ChatAdapter(), [stream])
    assert outcome is not None and outcome.status == "failed" and outcome.error is not None
    assert outcome.error.kind == "server" and outcome.error.message == message
    assert texts(events) == "partial"


def test_chat_error_false_is_no_error() -> None:
    stream = sse(chat({"delta": {"content": "ok"}}, error=False), chat({"finish_reason": "stop"}))
    events, outcome, _ = feed(ChatAdapter(), [stream])
    assert texts(events) == "ok" and outcome == Outcome("completed", "stop", "stop")


def test_chat_odd_tool_call_ids_names_and_index_types() -> None:
    calls = [
        {"index": "1", "id": 77, "function": {"name": 5, "arguments": [1, 2]}},
        {"index": 2**40, "id": "c9", "function": {"name": "g", "arguments": None}},
    ]
    stream = sse(chat({"delta": {"tool_calls": calls}}), "[DONE]")
    events, _, _ = feed(ChatAdapter(), [stream])
    got = [(c.call_id, c.name, c.arguments) for c in fold(events).tool_calls]
    assert got == [("77", "5", "[1,2]"), ("c9", "g", "")]
    assert all(0 <= e.index < 2**31 for e in of_type(events, ToolCallDelta))


# -- responses: fed directly ---------------------------------------------------------------


def test_responses_failed_with_a_string_error_keeps_the_message() -> None:
    stream = frame(
        [
            delta("part"),
            {"type": "response.failed", "response": {"status": "failed", "error": "GPU melted"}},
        ]
    )
    events, outcome, _ = feed(ResponsesAdapter(), [stream])
    assert outcome is not None and outcome.status == "failed" and outcome.error is not None
    assert outcome.error.message == "GPU melted" and outcome.error.kind == "server"
    assert texts(events) == "part"


@pytest.mark.parametrize(
    "error",
    [["one", "two"], {"message": 500, "code": {"x": 1}}, 17],
)
def test_responses_errors_of_any_shape_are_failures(error: Any) -> None:
    for terminal in (
        {"type": "response.failed", "response": {"status": "failed", "error": error}},
        {"type": "error", "error": error},
    ):
        events, outcome, _ = feed(ResponsesAdapter(), [frame([delta("p"), terminal])])
        assert outcome is not None and outcome.status == "failed", terminal
        assert outcome.error is not None and outcome.error.message
        assert texts(events) == "p"


def test_responses_integral_float_and_impossible_usage() -> None:
    usage = {
        "input_tokens": 14.0,
        "output_tokens": 2**70,
        "total_tokens": -1,
        "input_tokens_details": {"cached_tokens": "2"},
        "output_tokens_details": [],
    }
    terminal = {
        "type": "response.incomplete",
        "response": {
            "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"},
            "usage": usage,
        },
    }
    events, outcome, _ = feed(ResponsesAdapter(), [frame([delta("ab"), terminal])])
    assert outcome == Outcome("incomplete", "length", "max_output_tokens")
    assert of_type(events, Usage) == [Usage(0.0, 14, None, None, 2, None)]
    assert set(codes(events)) == {"odd_field", "odd_number"}


def test_responses_strict_but_out_of_range_counts_are_dropped() -> None:
    terminal = completed(usage={"input_tokens": -5, "output_tokens": 3, "total_tokens": 2**64})
    events, _, _ = feed(ResponsesAdapter(), [frame([delta("a"), terminal])])
    assert of_type(events, Usage) == [Usage(0.0, None, 3, None, None, None)]
    assert codes(events) == ["odd_number", "odd_number"]


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (delta([{"type": "output_text", "text": "parts"}]), "parts"),
        (delta(12), "12"),
        (delta("idx", output_index="0", content_index=None), "idx"),
        (delta("seq", sequence_number=1.0), "seq"),
        (dict(delta("x"), output_index=[0], logprobs="none", obfuscation=1), "x"),
    ],
)
def test_responses_odd_text_delta_fields_keep_the_text(event: dict[str, Any], text: str) -> None:
    stream = frame([{"type": "response.created", "response": {"id": "r1"}}, event, completed()])
    events, outcome, _ = feed(ResponsesAdapter(), [stream])
    assert texts(events) == text and outcome == Outcome("completed", "stop", "completed")


@pytest.mark.parametrize("resp", ["not an object", ["a"], 3])
def test_responses_terminal_with_a_response_of_the_wrong_type_still_ends(resp: Any) -> None:
    for kind, status in (
        ("response.completed", "completed"),
        ("response.incomplete", "incomplete"),
        ("response.failed", "failed"),
    ):
        stream = frame([delta("a"), {"type": kind, "response": resp}])
        events, outcome, before_eof = feed(ResponsesAdapter(), [stream])
        assert before_eof and outcome is not None and outcome.status == status
        assert texts(events) == "a"


def test_responses_created_of_odd_types_keeps_what_is_usable() -> None:
    adapter = ResponsesAdapter()
    created = {"type": "response.created", "response": {"id": 123, "model": ["m"], "usage": 1}}
    events, _, _ = feed(adapter, [frame([created, delta("a")])])
    assert adapter.response_id == "123" and texts(events) == "a"


def test_responses_function_call_with_object_arguments_and_odd_index() -> None:
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f"}
    stream = frame(
        [
            {"type": "response.output_item.added", "output_index": "1", "item": item},
            {
                "type": "response.output_item.done",
                "output_index": 1,
                "item": dict(item, arguments={"a": 1}),
            },
            completed(),
        ]
    )
    events, outcome, _ = feed(ResponsesAdapter(), [stream])
    (call,) = fold(events, "responses").tool_calls
    assert (call.index, call.name, json.loads(call.arguments)) == (1, "f", {"a": 1})
    assert outcome == Outcome("completed", "tool_calls", "completed")


def test_notices_once_per_kind_per_run_across_attempts() -> None:
    adapter = ChatAdapter()
    first, _, _ = feed(adapter, [sse(chat({"index": None, "delta": {"content": "a"}}))])
    adapter.begin_attempt(2, restart=True)
    second, _, _ = feed(adapter, [sse(chat({"index": None, "delta": {"content": "b"}}))])
    assert codes(first) == ["odd_field"] and codes(second) == []
    assert texts(second) == "b"


# -- over a real loopback socket -----------------------------------------------------------


async def test_chat_odd_fields_end_to_end() -> None:
    call = {"id": "c1", "function": {"name": "f", "arguments": {"q": 1}}}
    body = sse(
        chat({"index": None, "delta": {"content": [{"type": "text", "text": "Hel"}]}}),
        chat({"index": None, "delta": {"content": "lo", "tool_calls": [call]}}),
        chat({"index": None, "finish_reason": "length"}, usage={"completion_tokens": 123.0}),
        json.dumps({"choices": [], "usage": {"prompt_tokens": 2**70, "completion_tokens": 123}}),
        "[DONE]",
    )
    async with CannedServer([[response(body=body)]]) as server:
        events, acc = await run_session(make_session("chat", timing=None), server.base_url)
    assert (acc.status, acc.finish_reason, acc.raw_finish_reason) == (
        "incomplete",
        "length",
        "length",
    )
    assert acc.output_text == "Hello"
    assert [(c.name, json.loads(c.arguments)) for c in acc.tool_calls] == [("f", {"q": 1})]
    m = acc.metrics()
    assert m.output_tokens == 123 and m.input_tokens is None and not m.tokens_estimated
    assert {"odd_field", "odd_number"} <= set(acc.notices)
    assert len(of_type(events, RawEvent)) == 5


async def test_responses_odd_fields_end_to_end() -> None:
    body = frame(
        [
            {"type": "response.created", "response": {"id": "r1", "status": "in_progress"}},
            delta([{"type": "output_text", "text": "Hi"}]),
            delta(" there", output_index=None),
            {
                "type": "response.failed",
                "response": {"status": "failed", "error": "the model crashed", "usage": {}},
            },
        ]
    )
    async with CannedServer([[response(body=body)]]) as server:
        session = make_session("responses", timing=None, max_retries=0)
        events, acc = await run_session(session, server.base_url)
    assert (acc.status, acc.finish_reason) == ("failed", "error")
    assert acc.error is not None and acc.error.message == "the model crashed"
    assert acc.output_text == "Hi there" and "odd_field" in acc.notices
    assert len(of_type(events, RawEvent)) == 4
