"""RunAccumulator: the fold of a run's events and its result record."""

from __future__ import annotations

import json

import pytest

from tests.contract import RESULT_KEYS
from tests.stream.helpers import fold
from tui.stream.accumulate import RunAccumulator, fold_events
from tui.stream.events import (
    Connecting,
    Finished,
    Notice,
    RawEvent,
    ReasoningDelta,
    ResponseInfo,
    Resumed,
    Retrying,
    RunError,
    RunEvent,
    Started,
    TextDelta,
    ToolCallDelta,
    Usage,
)

DROP = RunError("dropped", "connection dropped mid-stream")


def restarted_run() -> list[RunEvent]:
    """A chat run whose first attempt dropped and was restarted."""
    return [
        Connecting(0.0, 1, "POST", "http://x/v1/chat/completions"),
        Started(0.1, 1, 200, "req_a", (("x-request-id", "req_a"),)),
        ResponseInfo(0.1, "chatcmpl-1", "m"),
        RawEvent(0.2, 1, None, "{}"),
        TextDelta(0.2, "Hel"),
        ReasoningDelta(0.2, "r1"),
        Retrying(0.3, 1, 4, 0.01, "restart", DROP),
        Connecting(0.31, 2, "POST", "http://x/v1/chat/completions"),
        Started(0.4, 2, 200, "req_b"),
        TextDelta(0.5, "Hello"),
        TextDelta(0.6, " world"),
        ToolCallDelta(0.6, 0, "", "get", "call_1"),
        ToolCallDelta(0.65, 0, '{"a":'),
        ToolCallDelta(0.7, 0, "1}"),
        Usage(0.8, 7, 4, None, None, 11),
        Finished(0.9, "completed", "stop", "stop"),
    ]


def test_result_record_exact_keys_and_values() -> None:
    acc = fold(restarted_run(), "chat")
    result = acc.result()
    assert set(result) == RESULT_KEYS
    json.dumps(result)  # JSON-ready
    assert result["status"] == "completed" and result["finish_reason"] == "stop"
    assert result["raw_finish_reason"] == "stop"
    assert result["output_text"] == "Hello world" and result["reasoning_text"] == ""
    assert result["tool_calls"] == [{"name": "get", "arguments": '{"a":1}'}]
    assert result["input_tokens"] == 7 and result["output_tokens"] == 4
    assert result["tokens_estimated"] is False and result["chunks"] == 5
    assert result["ttft_ms"] == pytest.approx(190.0)  # 0.5 - 0.31
    assert result["duration_ms"] == pytest.approx(900.0)
    assert result["tokens_per_s"] == pytest.approx(3 / 0.2)
    assert set(result["itl_ms"]) == {"p50", "p95", "p99"}
    assert result["error"] is None and result["resumes"] == 0
    assert result["attempts"] == 2
    first, second = result["attempt_log"]
    assert first["number"] == 1 and first["output_text"] == "Hel"
    assert first["cause"] == {"kind": "dropped", "status": None, "message": DROP.message}
    assert second["number"] == 2 and second["output_text"] is None and second["cause"] is None
    assert acc.attempts[0].reasoning_text == "r1"
    assert acc.request_id == "req_b" and acc.response_id == "chatcmpl-1" and acc.done


def test_resume_and_failure() -> None:
    events: list[RunEvent] = [
        Connecting(0.0, 1, "POST", "u"),
        Started(0.1, 1, 200, None),
        TextDelta(0.2, "a"),
        Retrying(0.3, 1, 2, 0.01, "resume", RunError("stalled", "no data")),
        Connecting(0.4, 2, "GET", "u?starting_after=5"),
        Started(0.5, 2, 200, None),
        Resumed(0.5, 2, 5),
        TextDelta(0.6, "b"),
        Retrying(0.7, 2, 2, 0.01, "resume", DROP),
        Connecting(0.8, 3, "POST", "u"),
        Started(0.85, 3, 200, None),
        Resumed(0.85, 3, None, "17"),
        Notice(0.9, "empty_stop", "x"),
        Finished(1.0, "failed", "error", None, RunError("server", "boom", code="server_error")),
    ]
    acc = fold(events, "responses")
    result = acc.result()
    assert result["output_text"] == "ab" and result["resumes"] == 2
    assert [a["resumed_after"] for a in result["attempt_log"]] == [None, 5, "17"]
    assert result["error"] == {"kind": "server", "status": None, "message": "boom"}
    assert result["attempt_log"][-1]["cause"]["message"] == "boom"
    assert acc.notices == ["empty_stop"]
    assert result["tokens_estimated"] is True
    # no usage: a tokenizer counts the kept answer ("x", the notice's), else the 2 chunks
    expected = {"estimated": 1, "chunks": 2}[result["tokens_source"]]
    assert result["output_tokens"] == expected


def test_http_status_of_failed_attempt_comes_from_cause() -> None:
    acc = fold(
        [
            Connecting(0.0, 1, "POST", "u"),
            Retrying(0.1, 1, 3, 1.0, "retry", RunError("http", "HTTP 429", 429)),
            Connecting(1.1, 2, "POST", "u"),
        ]
    )
    assert [a.http_status for a in acc.attempts] == [429, None]
    assert acc.status is None and not acc.done


def test_output_text_is_cached_and_incremental() -> None:
    acc = RunAccumulator("r", "s", "chat", "m", "p", clock=lambda: 0.0)
    for i in range(1000):
        acc.apply(TextDelta(i * 0.001, "x"))
        if i % 100 == 0:
            assert acc.output_text == "x" * (i + 1)
    assert acc.output_text == "x" * 1000
    assert acc.output_text is acc.output_text  # cached until the next delta


def test_fold_events_times_the_metrics_by_the_events_own_t() -> None:
    """A re-fold reads the metrics' clock at each event's ``t``: its rolling rate and
    elapsed time are those the live run had after its last event, whenever it is folded."""
    events = restarted_run()[:-1]  # still running
    now = [0.0]
    live = RunAccumulator("run", "session", "chat", "model", "prompt", clock=lambda: now[0])
    for event in events:
        now[0] = event.t  # a live clock that reads each event the moment it arrives
        live.apply(event)
    refold = fold_events(events, "run", "session", "chat", "model", "prompt")
    assert refold.metrics() == live.metrics()
    assert refold.metrics().elapsed_s == events[-1].t
    assert refold.attempts == live.attempts and refold.result() == live.result()


def test_attempt_records_are_replaced_as_the_run_learns_more() -> None:
    acc = fold(restarted_run()[:2])
    first = acc.attempts[0]
    assert (first.number, first.at_s, first.mode, first.http_status) == (1, 0.0, None, 200)
    assert (first.method, first.request_id) == ("POST", "req_a")
    for event in restarted_run()[2:8]:
        acc.apply(event)
    assert first.cause is None  # records are immutable: the list holds a new one
    assert acc.attempts[0].cause == DROP and acc.attempts[1].mode == "restart"
    assert acc.first_token_s is None  # the restart gave the first output up
    assert acc.usage is None


def test_a_notice_with_the_final_answer_replaces_the_streamed_text() -> None:
    """Deltas lost from the middle: the adapter's ``deltas_lost`` notice carries the final
    text, which the fold (live and re-folded) takes instead of what the deltas built."""
    events: list[RunEvent] = [
        TextDelta(0.1, "Good"),
        TextDelta(0.2, "day"),
        Notice(0.3, "deltas_lost", "text deltas were lost", answer="Good day, sir"),
        TextDelta(0.4, "!"),
        Notice(0.5, "empty_stop", "no answer here"),
    ]
    acc = fold(events, "responses")
    assert acc.output_text == "Good day, sir!"
    assert acc.notices == ["deltas_lost", "empty_stop"]
    again = fold_events(events, "run", "session", "responses", "model", "prompt")
    assert again.output_text == acc.output_text
