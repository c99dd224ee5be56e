"""Responses events -> normalized events, against recorded streams (protocol reference
sections 1, 2 and 6), each also split at every byte position."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.stream.helpers import feed, fold, splits, texts
from tui.config import SessionConfig
from tui.stream.adapter import Outcome
from tui.stream.events import (
    RawEvent,
    ReasoningDelta,
    ResponseInfo,
    ToolCallDelta,
    Usage,
)
from tui.stream.responses import (
    ResponsesAdapter,
    build_responses_body,
    normalize_incomplete,
)


def frame(events: list[dict[str, Any]], eol: str = "\n") -> bytes:
    """Frame Responses events as SSE, numbering them with ``sequence_number``."""
    out = []
    for i, ev in enumerate(events):
        ev = {"sequence_number": i, **ev}
        out.append(f"event: {ev['type']}{eol}data: {json.dumps(ev)}{eol}{eol}")
    return "".join(out).encode()


def resp(status: str, **extra: Any) -> dict[str, Any]:
    """A minimal Response object."""
    return {"id": "resp_01", "object": "response", "status": status, "output": [], **extra}


USAGE = {
    "input_tokens": 14,
    "input_tokens_details": {"cached_tokens": 2},
    "output_tokens": 2,
    "output_tokens_details": {"reasoning_tokens": 1},
    "total_tokens": 16,
}
REF = {"item_id": "msg_01", "output_index": 0, "content_index": 0}


def text_stream(terminal: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A text response's events, optionally ending with ``terminal``."""
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": resp("in_progress", model="gpt", usage=None)},
        {"type": "response.in_progress", "response": resp("in_progress")},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"id": "msg_01", "type": "message", "role": "assistant", "content": []},
        },
        {"type": "response.content_part.added", **REF, "part": {"type": "output_text", "text": ""}},
        {
            "type": "response.output_text.delta",
            **REF,
            "delta": "Good",
            "logprobs": [],
            "obfuscation": "k2Pq",
        },
        {"type": "response.output_text.delta", **REF, "delta": " dáy", "logprobs": []},
        {"type": "response.output_text.done", **REF, "text": "Good dáy", "logprobs": []},
    ]
    if terminal is not None:
        events.append(terminal)
    return events


def test_incomplete_max_output_tokens_at_every_split() -> None:
    terminal = {
        "type": "response.incomplete",
        "response": resp(
            "incomplete", incomplete_details={"reason": "max_output_tokens"}, usage=USAGE
        ),
    }
    stream = frame(text_stream(terminal), eol="\r\n")
    for chunks in splits(stream, step=3):
        events, outcome, before_eof = feed(ResponsesAdapter(), chunks)
        assert before_eof
        assert outcome == Outcome("incomplete", "length", "max_output_tokens")
        assert texts(events) == "Good dáy"
        assert [e for e in events if isinstance(e, Usage)] == [Usage(0.0, 14, 2, 1, 2, 16)]
        assert [e for e in events if isinstance(e, ResponseInfo)] == [
            ResponseInfo(0.0, "resp_01", "gpt")
        ]
        assert sum(isinstance(e, RawEvent) for e in events) == 8


@pytest.mark.parametrize(
    ("terminal", "expected"),
    [
        (
            {"type": "response.completed", "response": resp("completed", usage=USAGE)},
            Outcome("completed", "stop", "completed"),
        ),
        (
            {
                "type": "response.incomplete",
                "response": resp("incomplete", incomplete_details={"reason": "content_filter"}),
            },
            Outcome("incomplete", "content_filter", "content_filter"),
        ),
        (
            {"type": "response.cancelled", "response": resp("cancelled")},
            Outcome("cancelled", "cancelled", "cancelled"),
        ),
    ],
)
def test_terminal_events(terminal: dict[str, Any], expected: Outcome) -> None:
    events, outcome, _ = feed(ResponsesAdapter(), [frame(text_stream(terminal))])
    assert outcome == expected and texts(events) == "Good dáy"


def test_failed_keeps_partial_output_and_error() -> None:
    terminal = {
        "type": "response.failed",
        "response": resp(
            "failed", error={"code": "server_error", "message": "The model failed."}, usage=USAGE
        ),
    }
    events, outcome, _ = feed(ResponsesAdapter(), [frame(text_stream(terminal))])
    assert outcome is not None and outcome.status == "failed" and outcome.raw_reason == "failed"
    assert outcome.error is not None and outcome.error.kind == "server"
    assert outcome.error.message == "The model failed." and outcome.error.code == "server_error"
    assert texts(events) == "Good dáy"


@pytest.mark.parametrize(
    "error_event",
    [
        {  # nested, as OpenAI sends it
            "type": "error",
            "error": {
                "type": "too_many_requests",
                "code": "insufficient_quota",
                "message": "You exceeded your current quota.",
                "param": None,
            },
        },
        {  # flat, as documented
            "type": "error",
            "code": "insufficient_quota",
            "message": "You exceeded your current quota.",
            "param": None,
        },
    ],
)
def test_error_event_both_shapes(error_event: dict[str, Any]) -> None:
    stream = frame(text_stream(error_event))
    for chunks in splits(stream, step=7):
        events, outcome, _ = feed(ResponsesAdapter(), chunks)
        assert outcome is not None and outcome.status == "failed" and outcome.reason == "error"
        assert outcome.error is not None
        assert outcome.error.message == "You exceeded your current quota."
        assert outcome.error.code == "insufficient_quota"
        assert texts(events) == "Good dáy"


def test_function_call_completed_maps_to_tool_calls() -> None:
    item = {
        "id": "fc_1",
        "type": "function_call",
        "call_id": "call_9",
        "name": "f",
        "arguments": "",
    }
    ref = {"item_id": "fc_1", "output_index": 1}
    events_in: list[dict[str, Any]] = [
        {"type": "response.created", "response": resp("in_progress")},
        {"type": "response.output_item.added", "output_index": 1, "item": item},
        {"type": "response.function_call_arguments.delta", **ref, "delta": '{"a":'},
        {"type": "response.function_call_arguments.delta", **ref, "delta": "1}"},
        {
            "type": "response.function_call_arguments.done",
            **ref,
            "arguments": '{"a":1}',
            "name": "f",
        },
        {
            "type": "response.completed",
            "response": resp("completed", output=[dict(item, arguments='{"a":1}')]),
        },
    ]
    events, outcome, _ = feed(ResponsesAdapter(), [frame(events_in)])
    assert outcome == Outcome("completed", "tool_calls", "completed")
    assert next(e for e in events if isinstance(e, ToolCallDelta)) == ToolCallDelta(
        0.0, 1, "", "f", "call_9"
    )
    (call,) = fold(events, "responses").tool_calls
    assert (call.index, call.name, call.call_id, call.arguments) == (1, "f", "call_9", '{"a":1}')
    # a completed response whose output holds a function call, even without deltas
    only_final = [events_in[0], events_in[-1]]
    _, outcome, _ = feed(ResponsesAdapter(), [frame(only_final)])
    assert outcome == Outcome("completed", "tool_calls", "completed")


def test_reasoning_and_refusal_deltas() -> None:
    ref = {"item_id": "rs_1", "output_index": 0, "summary_index": 0}
    stream = frame(
        [
            {"type": "response.reasoning_summary_text.delta", **ref, "delta": "Let me "},
            {"type": "response.reasoning_text.delta", **ref, "content_index": 0, "delta": "think"},
            {"type": "response.refusal.delta", **REF, "delta": "No."},
            {"type": "response.completed", "response": resp("completed")},
        ]
    )
    events, outcome, _ = feed(ResponsesAdapter(), [stream])
    assert texts(events, ReasoningDelta) == "Let me think" and texts(events) == "No."
    assert outcome is not None and outcome.reason == "stop"


def test_unknown_event_types_pass_through_raw_only() -> None:
    stream = frame(
        [
            {"type": "response.web_search_call.searching", "item_id": "ws", "output_index": 0},
            {"type": "response.brand_new_thing", "payload": {"deep": [1, 2, 3]}},
            {"type": "response.audio.delta", "delta": "AAAA"},
            {"type": "response.output_text.delta", **REF, "delta": "x"},
        ]
    )
    events, outcome, _ = feed(ResponsesAdapter(), [stream])
    assert outcome is None  # no terminal event: truncated
    assert [type(e).__name__ for e in events] == ["RawEvent"] * 4 + ["TextDelta"]
    assert [e.event for e in events if isinstance(e, RawEvent)][1] == "response.brand_new_thing"


def test_duplicates_dropped_by_sequence_number() -> None:
    """A resumed stream that repeats events (server ignoring starting_after) loses none and
    doubles none."""
    events_in = text_stream({"type": "response.completed", "response": resp("completed")})
    full = frame(events_in)
    adapter = ResponsesAdapter()
    first, _, _ = feed(adapter, [frame(events_in[:5])])  # up to seq 4 ("Good")
    assert adapter.last_seq == 4 and adapter.response_id == "resp_01"
    adapter.begin_attempt(2, restart=False)
    second, outcome, _ = feed(adapter, [full])  # replay from 0
    assert texts(first) + texts(second) == "Good dáy"
    assert outcome == Outcome("completed", "stop", "completed")
    assert all(e.attempt == 2 for e in second if isinstance(e, RawEvent))
    # every received event is in the raw log, duplicates included
    assert len([e for e in second if isinstance(e, RawEvent)]) == len(events_in)
    assert [type(e).__name__ for e in second if not isinstance(e, RawEvent)] == ["TextDelta"]


def test_malformed_json_names_event() -> None:
    stream = frame(text_stream(None)[:3]) + b'event: x\ndata: {"type": \n\n'
    _, outcome, _ = feed(ResponsesAdapter(), [stream])
    assert outcome is not None and outcome.error is not None
    assert outcome.error.kind == "protocol" and "event 4 of attempt 1" in outcome.error.message


def test_no_terminal_event_is_truncated() -> None:
    _, outcome, before_eof = feed(ResponsesAdapter(), [frame(text_stream(None))])
    assert outcome is None and not before_eof


def test_background_flag_and_restart() -> None:
    adapter = ResponsesAdapter()
    created = {"type": "response.created", "response": resp("queued", background=True)}
    feed(adapter, [frame([created])])
    assert adapter.background and adapter.response_id == "resp_01" and adapter.last_seq == 0
    adapter.begin_attempt(2, restart=True)
    assert adapter.response_id is None and adapter.last_seq is None


def test_incomplete_reasons() -> None:
    assert normalize_incomplete("max_output_tokens") == "length"
    assert normalize_incomplete("content_filter") == "content_filter"
    assert normalize_incomplete(None) == "length"


def test_request_body() -> None:
    session = SessionConfig(
        name="s",
        model="m",
        prompt="hi",
        system="be brief",
        max_output_tokens=50,
        temperature=0.2,
        background=True,
        params={"reasoning": {"summary": "auto"}},
    )
    assert build_responses_body(session) == {
        "model": "m",
        "input": "hi",
        "stream": True,
        "instructions": "be brief",
        "max_output_tokens": 50,
        "temperature": 0.2,
        "background": True,
        "reasoning": {"summary": "auto"},
    }
    body = build_responses_body(SessionConfig(name="s", model="m", prompt="p"), "other")
    assert body == {"model": "m", "input": "other", "stream": True}


def test_done_marker_is_not_an_end() -> None:
    stream = frame(text_stream(None)) + b"data: [DONE]\n\n"
    events, outcome, before_eof = feed(ResponsesAdapter(), [stream])
    assert outcome is None and not before_eof  # still truncated: no terminal event
    assert [e.data for e in events if isinstance(e, RawEvent)][-1] == "[DONE]"
