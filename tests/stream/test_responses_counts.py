"""The stream's own word counts (issue 15, part B, kind 3): the Responses ``status`` is
authoritative over the event's name; the final objects complete (never double) what the
deltas gave; ``sequence_number`` only drops duplicates while it is trustworthy; and the
Chat Completions equivalents (finish reason with content, a usage-only last chunk, finish
reasons of unknown spelling)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.stream.canned import CannedServer, response
from tests.stream.helpers import (
    feed,
    fold,
    make_session,
    of_type,
    run_session,
    splits,
    sse,
    texts,
)
from tui.stream.adapter import Outcome
from tui.stream.chat import ChatAdapter
from tui.stream.events import Notice, RawEvent, ReasoningDelta, Resumed, Retrying, Usage
from tui.stream.responses import ResponsesAdapter

REF = {"item_id": "msg_1", "output_index": 0, "content_index": 0}


def frame(events: list[dict[str, Any]], *, numbered: bool = True) -> bytes:
    """Responses events as SSE (numbered by ``sequence_number`` unless they carry one)."""
    out = []
    for i, ev in enumerate(events):
        if numbered:
            ev = {"sequence_number": i, **ev}
        out.append(f"event: {ev['type']}\ndata: {json.dumps(ev)}\n\n")
    return "".join(out).encode()


def delta(text: str, **extra: Any) -> dict[str, Any]:
    """A text delta."""
    return {"type": "response.output_text.delta", **REF, "delta": text, **extra}


def message(text: str) -> dict[str, Any]:
    """A message item holding ``text``."""
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def finals(text: str) -> list[dict[str, Any]]:
    """Every final object of a message holding ``text``, in the order servers send them."""
    return [
        {"type": "response.output_text.done", **REF, "text": text},
        {"type": "response.content_part.done", **REF, "part": message(text)["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": message(text)},
    ]


def terminal(status: str = "completed", kind: str | None = None, **resp: Any) -> dict[str, Any]:
    """A terminal event (named after ``status`` unless ``kind`` says otherwise)."""
    return {
        "type": kind or f"response.{status}",
        "response": {"id": "resp_1", "object": "response", "status": status, **resp},
    }


def codes(events: list[Any]) -> list[str]:
    """Notice codes among ``events``."""
    return [n.code for n in of_type(events, Notice)]


# -- the response's status is authoritative --------------------------------------------------


@pytest.mark.parametrize(
    ("resp", "expected"),
    [
        (
            {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}},
            Outcome("incomplete", "length", "max_output_tokens"),
        ),
        (
            {"status": "incomplete", "incomplete_details": {"reason": "content_filter"}},
            Outcome("incomplete", "content_filter", "content_filter"),
        ),
        ({"status": "incomplete"}, Outcome("incomplete", "length", "incomplete")),  # aimock
        ({"status": "cancelled"}, Outcome("cancelled", "cancelled", "cancelled")),
    ],
)
def test_completed_event_with_a_status_that_is_not_completed(
    resp: dict[str, Any], expected: Outcome
) -> None:
    stream = frame([delta("Hi"), terminal(kind="response.completed", **resp)])
    events, outcome, _ = feed(ResponsesAdapter(), [stream])
    assert outcome == expected and texts(events) == "Hi"
    assert codes(events) == ["status_mismatch"]


@pytest.mark.parametrize(
    ("resp", "message", "code"),
    [
        (
            {"status": "failed", "error": {"code": "content_filter", "message": "Blocked."}},
            "Blocked.",
            "content_filter",
        ),
        ({"status": "failed"}, "the server reported an error (response.completed)", None),
        ({"status": "FAILED", "error": "plain text error"}, "plain text error", None),
    ],
)
def test_completed_event_with_status_failed_is_a_failure(
    resp: dict[str, Any], message: str, code: str | None
) -> None:
    stream = frame([delta("Hi"), terminal(kind="response.completed", **resp)])
    events, outcome, _ = feed(ResponsesAdapter(), [stream])
    assert outcome is not None and (outcome.status, outcome.reason) == ("failed", "error")
    assert outcome.error is not None and outcome.error.kind == "server"
    assert (outcome.error.message, outcome.error.code) == (message, code)
    assert texts(events) == "Hi"


def test_incomplete_reason_of_unknown_spelling_is_nearest() -> None:
    resp: dict[str, Any] = {"incomplete_details": {"reason": "SAFETY_FILTER"}}
    _, outcome, _ = feed(ResponsesAdapter(), [frame([delta("x"), terminal("incomplete", **resp)])])
    assert outcome == Outcome("incomplete", "content_filter", "SAFETY_FILTER")


# -- the final objects ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "only",
    [
        [finals("Good day")[0]],  # output_text.done
        [finals("Good day")[1]],  # content_part.done
        [finals("Good day")[2]],  # output_item.done
        [],  # only the terminal response's output
    ],
    ids=["output_text.done", "content_part.done", "output_item.done", "response.output"],
)
def test_without_deltas_the_final_text_is_the_answer(only: list[dict[str, Any]]) -> None:
    end = terminal(output=[message("Good day")] if not only else [])
    stream = frame([*only, end])
    for chunks in splits(stream, step=23):
        events, outcome, _ = feed(ResponsesAdapter(), chunks)
        assert texts(events) == "Good day"
        assert outcome == Outcome("completed", "stop", "completed")
    # with the deltas too, the final text is never added twice
    stream = frame(
        [
            delta("Good"),
            delta(" day"),
            *finals("Good day"),
            terminal(output=[message("Good day")]),
        ]
    )
    events, _, _ = feed(ResponsesAdapter(), [stream])
    assert texts(events) == "Good day" and codes(events) == []
    assert fold(events, "responses").output_text == "Good day"


def test_deltas_lost_at_the_end_are_completed_from_the_final_text() -> None:
    stream = frame([delta("Good"), *finals("Good day"), terminal()])
    events, _, _ = feed(ResponsesAdapter(), [stream])
    assert texts(events) == "Good day" and codes(events) == ["deltas_lost"]


def test_deltas_lost_in_the_middle_the_final_text_wins() -> None:
    stream = frame([delta("Good"), delta("day"), *finals("Good day, sir"), terminal()])
    events, _, _ = feed(ResponsesAdapter(), [stream])
    (notice,) = of_type(events, Notice)
    assert notice.code == "deltas_lost" and notice.answer == "Good day, sir"
    assert fold(events, "responses").output_text == "Good day, sir"


def test_final_text_that_differs_without_showing_a_loss_keeps_the_deltas() -> None:
    stream = frame([delta("Good day"), *finals("Bad night"), terminal()])
    events, _, _ = feed(ResponsesAdapter(), [stream])
    assert fold(events, "responses").output_text == "Good day"
    assert codes(events) == ["final_differs"]


def test_a_function_call_only_in_the_final_objects() -> None:
    call = {
        "id": "fc_1",
        "type": "function_call",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city":"Oslo"}',
    }
    for only in (
        [{"type": "response.output_item.done", "output_index": 0, "item": call}],
        [],
    ):
        stream = frame([*only, terminal(output=[call])])
        events, outcome, _ = feed(ResponsesAdapter(), [stream])
        (tool,) = fold(events, "responses").tool_calls
        assert (tool.call_id, tool.name, tool.arguments) == (
            "call_1",
            "get_weather",
            '{"city":"Oslo"}',
        )
        assert outcome == Outcome("completed", "tool_calls", "completed")


def test_function_call_arguments_are_not_doubled_and_lost_ends_are_added() -> None:
    call = {"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "f", "arguments": ""}
    done_call = dict(call, arguments='{"a":1}')
    ref = {"item_id": "fc_1", "output_index": 0}
    cases: list[tuple[tuple[str, ...], bool]] = [
        (('{"a":', "1}"), False),
        (('{"a":1}',), False),
        (('{"a":',), True),  # the last delta was lost
    ]
    for deltas, lost in cases:
        stream = frame(
            [
                {"type": "response.output_item.added", "output_index": 0, "item": call},
                *(
                    {"type": "response.function_call_arguments.delta", **ref, "delta": d}
                    for d in deltas
                ),
                {"type": "response.function_call_arguments.done", **ref, "arguments": '{"a":1}'},
                {"type": "response.output_item.done", "output_index": 0, "item": done_call},
                terminal(output=[done_call]),
            ]
        )
        events, _, _ = feed(ResponsesAdapter(), [stream])
        (tool,) = fold(events, "responses").tool_calls
        assert tool.arguments == '{"a":1}', deltas
        assert ("deltas_lost" in codes(events)) == lost


def test_reasoning_summary_only_in_the_final_objects() -> None:
    summary = {"type": "summary_text", "text": "Thought about it."}
    item = {"id": "rs_1", "type": "reasoning", "summary": [summary]}
    ref = {"item_id": "rs_1", "output_index": 0, "summary_index": 0}
    for only in (
        [{"type": "response.reasoning_summary_text.done", **ref, "text": summary["text"]}],
        [{"type": "response.reasoning_summary_part.done", **ref, "part": summary}],
        [{"type": "response.output_item.done", "output_index": 0, "item": item}],
    ):
        events, _, _ = feed(ResponsesAdapter(), [frame([*only, terminal(output=[item])])])
        assert texts(events, ReasoningDelta) == "Thought about it."
    streamed = {"type": "response.reasoning_summary_text.delta", **ref, "delta": "Thought"}
    events, _, _ = feed(ResponsesAdapter(), [frame([streamed, terminal(output=[item])])])
    assert texts(events, ReasoningDelta) == "Thought about it."


# -- sequence numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "numbers",
    [[0, 0, 0, 0, 0], [5, 4, 3, 2, 1], [1, 2, 2, 3, 4], [0, 1, 2, 1, 2]],
    ids=["all-zero", "backwards", "repeats", "restarts"],
)
def test_untrustworthy_numbering_keeps_every_event(numbers: list[int]) -> None:
    events_in = [delta(c) for c in "abcd"] + [terminal()]
    for ev, n in zip(events_in, numbers, strict=True):
        ev["sequence_number"] = n
    adapter = ResponsesAdapter()
    events, outcome, _ = feed(adapter, [frame(events_in, numbered=False)])
    assert texts(events) == "abcd" and outcome == Outcome("completed", "stop", "completed")
    assert codes(events) == ["sequence_unusable"]  # said once
    assert adapter.last_seq is None  # no resume cursor from unusable numbers


def test_trustworthy_numbering_still_drops_a_resumed_streams_repeats() -> None:
    events_in = [delta(c) for c in "abcd"] + [terminal()]
    adapter = ResponsesAdapter()
    first, _, _ = feed(adapter, [frame(events_in[:2])])
    assert adapter.last_seq == 1
    adapter.begin_attempt(2, restart=False)
    second, outcome, _ = feed(adapter, [frame(events_in)])  # replayed from 0
    assert texts(first) + texts(second) == "abcd" and codes(second) == []
    assert outcome == Outcome("completed", "stop", "completed")
    # numbering that breaks inside the resumed attempt: kept from there on
    adapter = ResponsesAdapter()
    feed(adapter, [frame(events_in[:2])])
    adapter.begin_attempt(2, restart=False)
    replay = [dict(ev, sequence_number=n) for ev, n in zip(events_in, [0, 1, 2, 2, 3], strict=True)]
    second, _, _ = feed(adapter, [frame(replay, numbered=False)])
    assert texts(second) == "cd" and codes(second) == ["sequence_unusable"]


async def test_unusable_numbering_restarts_a_dropped_background_stream() -> None:
    """A proxy that numbers every event 0: the dropped stream cannot be resumed with
    ``starting_after`` (the cursor means nothing), so it is restarted, and the restarted
    stream's events are all kept."""
    created = {"type": "response.created", "response": {"id": "resp_1", "background": True}}
    first = frame(
        [dict(ev, sequence_number=0) for ev in (created, delta("Hel"), delta("lo"))],
        numbered=False,
    )
    again = [created, delta("Hi"), delta(" there"), terminal()]
    second = frame([dict(ev, sequence_number=0) for ev in again], numbered=False)
    async with CannedServer([[response(body=first)], [response(body=second)]]) as server:
        session = make_session("responses", timing=None, background=True)
        events, acc = await run_session(session, server.base_url)
        methods = [r.method for r in server.requests]
    assert methods == ["POST", "POST"] and not of_type(events, Resumed)
    assert [r.mode for r in of_type(events, Retrying)] == ["restart"]
    assert (acc.status, acc.finish_reason, acc.output_text) == ("completed", "stop", "Hi there")
    assert acc.notices.count("sequence_unusable") == 1


async def test_responses_counts_end_to_end() -> None:
    """aimock's length cut: ``response.completed`` with status incomplete and no
    ``incomplete_details``, no sequence numbers, text only in the final objects."""
    body = frame(
        [
            {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}},
            *finals("Cut sho"),
            terminal(kind="response.completed", status="incomplete", output=[message("Cut sho")]),
        ],
        numbered=False,
    )
    async with CannedServer([[response(body=body)]]) as server:
        events, acc = await run_session(make_session("responses", timing=None), server.base_url)
    assert (acc.status, acc.finish_reason, acc.raw_finish_reason) == (
        "incomplete",
        "length",
        "incomplete",
    )
    assert acc.output_text == "Cut sho" and "status_mismatch" in acc.notices
    assert "empty_stop" not in acc.notices
    assert len(of_type(events, RawEvent)) == 5


# -- chat equivalents -----------------------------------------------------------------------


def chunk(content: str | None, finish: str | None = None, **extra: Any) -> str:
    """A chat chunk."""
    delta_: dict[str, Any] = {} if content is None else {"content": content}
    return json.dumps(
        {"id": "c1", "choices": [{"index": 0, "delta": delta_, "finish_reason": finish}], **extra}
    )


@pytest.mark.parametrize(
    ("raw", "status", "reason"),
    [
        ("MAX_TOKENS", "incomplete", "length"),  # Gemini
        ("max_length", "incomplete", "length"),
        ("SAFETY", "incomplete", "content_filter"),
        ("tool_use", "completed", "tool_calls"),  # Anthropic
        ("stop_sequence", "completed", "stop"),
        ("eos_token", "completed", "stop"),  # TGI
        ("error", "failed", "error"),
    ],
)
def test_chat_finish_reason_on_the_content_chunk_of_unknown_spelling(
    raw: str, status: str, reason: str
) -> None:
    stream = sse(chunk("Hel"), chunk("lo", raw), "[DONE]")
    events, outcome, _ = feed(ChatAdapter(), [stream])
    assert texts(events) == "Hello"
    assert outcome is not None and (outcome.status, outcome.reason, outcome.raw_reason) == (
        status,
        reason,
        raw,
    )
    assert (outcome.error is not None) == (status == "failed")
    assert codes(events) == ["unknown_finish_reason"]


def test_chat_usage_only_last_chunk_of_odd_shape_keeps_the_finish() -> None:
    shapes: list[Any] = [[], {}, None, [{"index": 0, "delta": {}}]]
    for choices in shapes:
        usage = {"prompt_tokens": 3.0, "completion_tokens": 2, "total_tokens": 5}
        stream = sse(
            chunk("ab", "length"),
            json.dumps({"id": "c1", "choices": choices, "usage": usage}),
            "[DONE]",
        )
        events, outcome, _ = feed(ChatAdapter(), [stream])
        assert outcome == Outcome("incomplete", "length", "length"), choices
        assert of_type(events, Usage) == [Usage(0.0, 3, 2, None, None, 5)]
        assert texts(events) == "ab"


async def test_chat_counts_end_to_end() -> None:
    body = sse(
        chunk("Hel"),
        chunk("lo", "MAX_TOKENS"),
        json.dumps({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2.0}}),
    )  # ends without [DONE], as transformers serve does
    async with CannedServer([[response(body=body)]]) as server:
        _, acc = await run_session(make_session("chat", timing=None), server.base_url)
    assert (acc.status, acc.finish_reason, acc.raw_finish_reason) == (
        "incomplete",
        "length",
        "MAX_TOKENS",
    )
    assert acc.output_text == "Hello" and acc.metrics().output_tokens == 2
    assert "unknown_finish_reason" in acc.notices


def test_chat_finish_reason_on_every_chunk_is_said_once_and_the_last_wins() -> None:
    stream = sse(*(chunk(c, f"odd_{i}") for i, c in enumerate("abc")), chunk("d", "MAX_TOKENS"))
    events, outcome, _ = feed(ChatAdapter(), [stream])
    assert texts(events) == "abcd" and codes(events) == ["unknown_finish_reason"]
    assert outcome == Outcome("incomplete", "length", "MAX_TOKENS")
