"""Chat Completions chunks -> normalized events, against recorded streams of every server
quirk in the protocol reference (sections 3 and 6), each also split at every byte."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.stream.helpers import feed, fold, splits, sse, texts
from tui.config import SessionConfig
from tui.stream.adapter import Outcome
from tui.stream.chat import ChatAdapter, build_chat_body, normalize_chat_finish
from tui.stream.events import (
    RawEvent,
    ReasoningDelta,
    ResponseInfo,
    RunEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)

HEAD = '"id":"chatcmpl-9","object":"chat.completion.chunk","created":1760000000,"model":"m"'


def chunk(delta: str, finish: str = "null", extra: str = "") -> str:
    """One chat chunk with the given delta JSON, finish_reason and extra fields."""
    return (
        "{" + HEAD + ',"choices":[{"index":0,"delta":' + delta + ',"logprobs":null,'
        '"finish_reason":' + finish + "}]" + extra + "}"
    )


OPENAI = sse(
    chunk('{"role":"assistant","content":"","refusal":null}', extra=',"usage":null'),
    chunk('{"content":"Hel"}', extra=',"usage":null,"obfuscation":"k2"'),
    chunk('{"content":"lo é"}', extra=',"usage":null'),
    chunk("{}", '"stop"', ',"usage":null'),
    "{" + HEAD + ',"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,'
    '"total_tokens":12,"prompt_tokens_details":{"cached_tokens":4},'
    '"completion_tokens_details":{"reasoning_tokens":0}}}',
    "[DONE]",
)


def check_every_split(
    stream: bytes, check: Callable[[list[RunEvent], Outcome | None], None]
) -> None:
    """Run ``check`` on the adapter output for every two-way split of ``stream``."""
    for chunks in splits(stream):
        events, outcome, _ = feed(ChatAdapter(), chunks)
        check(events, outcome)


def test_openai_stream_usage_chunk_and_finish_on_its_own_chunk() -> None:
    def check(events: list[RunEvent], outcome: Outcome | None) -> None:
        assert texts(events) == "Hello é"
        assert outcome == Outcome("completed", "stop", "stop")
        usage = [e for e in events if isinstance(e, Usage)]
        assert usage == [Usage(0.0, 9, 3, 0, 4, 12)]
        assert [e for e in events if isinstance(e, ResponseInfo)] == [
            ResponseInfo(0.0, "chatcmpl-9", "m")
        ]
        raws = [e for e in events if isinstance(e, RawEvent)]
        assert len(raws) == 6 and raws[-1].data == "[DONE]" and raws[0].attempt == 1

    check_every_split(OPENAI, check)
    # the empty role chunk is no content: three chunks in, two deltas out
    events, _, _ = feed(ChatAdapter(), [OPENAI])
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo é"]


def test_vllm_continuous_usage_on_every_chunk() -> None:
    def usage(n: int) -> str:
        return f',"usage":{{"prompt_tokens":5,"completion_tokens":{n},"total_tokens":{5 + n}}}'

    stream = sse(
        chunk('{"role":"assistant","content":""}', extra=usage(0)),
        chunk('{"content":"a"}', extra=usage(1)),
        chunk('{"content":"b"}', extra=usage(2)),
        '{"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"length","stop_reason":null}]'
        + usage(2)
        + "}",
        "[DONE]",
    )
    events, outcome, _ = feed(ChatAdapter(), [stream])
    assert [e.output_tokens for e in events if isinstance(e, Usage)] == [0, 1, 2, 2]
    assert outcome == Outcome("incomplete", "length", "length")
    acc = fold(events)
    assert acc.metrics().output_tokens == 2 and not acc.metrics().tokens_estimated


def test_missing_usage_stays_estimated() -> None:
    stream = sse(
        chunk('{"content":"a"}'), chunk('{"content":"b"}'), chunk("{}", '"stop"'), "[DONE]"
    )
    events, outcome, _ = feed(ChatAdapter(), [stream])
    assert outcome is not None and outcome.reason == "stop"
    m = fold(events).metrics()
    assert m.tokens_estimated and m.output_tokens == 2 and m.input_tokens is None


def test_llamacpp_reasoning_content_null_role_and_done_without_blank_line() -> None:
    stream = (
        sse(
            chunk('{"role":"assistant","content":null}'),
            chunk('{"reasoning_content":"think "}', extra=',"timings":{"predicted_n":1}'),
            chunk('{"reasoning_content":"more"}'),
            chunk('{"content":"answer"}'),
            chunk("{}", '"stop"'),
            "{" + HEAD + ',"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}',
        )
        + b"data: [DONE]"
    )

    def check(events: list[RunEvent], outcome: Outcome | None) -> None:
        assert texts(events, ReasoningDelta) == "think more"
        assert texts(events) == "answer"
        assert outcome == Outcome("completed", "stop", "stop")

    check_every_split(stream, check)


def test_done_line_at_eof_without_finish_reason_is_done() -> None:
    stream = sse(chunk('{"content":"x"}')) + b"data: [DONE]\n"
    _, outcome, before_eof = feed(ChatAdapter(), [stream])
    assert not before_eof and outcome == Outcome("completed", "stop", None)


def test_ollama_reasoning_field_role_on_every_chunk() -> None:
    stream = sse(
        chunk('{"role":"assistant","content":"","reasoning":"hmm"}'),
        chunk('{"role":"assistant","content":"ok"}'),
        chunk('{"role":"assistant","content":""}', '"stop"'),
        "[DONE]",
    )
    events, outcome, _ = feed(ChatAdapter(), [stream])
    assert texts(events, ReasoningDelta) == "hmm" and texts(events) == "ok"
    assert outcome == Outcome("completed", "stop", "stop")


def test_tool_call_fragments_merge() -> None:
    first = (
        '{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1",'
        '"type":"function","function":{"name":"get_weather","arguments":""}}]}'
    )
    frag = '{"tool_calls":[{"index":0,"function":{"arguments":%s}}]}'
    stream = sse(
        chunk(first),
        chunk(frag % json.dumps('{"city":')),
        chunk(frag % json.dumps('"Paris"}')),
        chunk("{}", '"tool_calls"'),
        "[DONE]",
    )

    def check(events: list[RunEvent], outcome: Outcome | None) -> None:
        calls = [e for e in events if isinstance(e, ToolCallDelta)]
        assert calls[0] == ToolCallDelta(0.0, 0, "", "get_weather", "call_1")
        assert outcome == Outcome("completed", "tool_calls", "tool_calls")
        acc = fold(events)
        (call,) = acc.tool_calls
        assert (call.name, call.call_id, json.loads(call.arguments)) == (
            "get_weather",
            "call_1",
            {"city": "Paris"},
        )

    check_every_split(stream, check)


@pytest.mark.parametrize(
    ("error", "message", "code"),
    [
        (
            '{"error":{"message":"The server had an error","type":"server_error","param":null,'
            '"code":null}}',
            "The server had an error",
            "server_error",
        ),
        (
            '{"object":"error","message":"flat vLLM error","type":"BadRequestError","param":null,'
            '"code":400}',
            "flat vLLM error",
            "400",
        ),
        ('{"error":"ollama says no"}', "ollama says no", None),
        ('{"error":{"message":"odd","code":{"n":1}}}', "odd", "{'n': 1}"),
    ],
)
def test_error_shapes_mid_stream_keep_partial_output(
    error: str, message: str, code: str | None
) -> None:
    stream = sse(chunk('{"content":"partial"}'), error, "[DONE]")

    def check(events: list[RunEvent], outcome: Outcome | None) -> None:
        assert outcome is not None and outcome.status == "failed" and outcome.reason == "error"
        assert outcome.error is not None
        assert outcome.error.kind == "server" and outcome.error.message == message
        assert outcome.error.code == code
        assert texts(events) == "partial"

    check_every_split(stream, check)


def test_error_before_first_token_then_done() -> None:
    """vLLM sends the error and then [DONE]: the error wins, never a clean stop."""
    stream = sse('{"error":{"message":"images not supported","type":"invalid_request"}}', "[DONE]")
    _, outcome, before_eof = feed(ChatAdapter(), [stream])
    assert before_eof and outcome is not None and outcome.status == "failed"


def test_malformed_json_names_the_event() -> None:
    stream = sse(chunk('{"content":"ok"}'), chunk('{"content":"x"}')[:30] + ',"', "[DONE]")
    events, outcome, _ = feed(ChatAdapter(), [stream])
    assert outcome is not None and outcome.error is not None
    assert outcome.error.kind == "protocol" and "event 2" in outcome.error.message
    assert texts(events) == "ok"


@pytest.mark.parametrize(
    ("stream", "truncated"),
    [
        (sse(chunk('{"content":"a"}')), True),  # no finish_reason, no [DONE]
        (sse(chunk('{"content":"a"}'), chunk("{}", '"stop"')), False),  # finish, no [DONE]
        (sse(chunk('{"content":"a"}')) + b"data: [DO", True),  # cut inside [DONE]
    ],
)
def test_eof_without_done_or_finish_is_truncated(stream: bytes, truncated: bool) -> None:
    _, outcome, _ = feed(ChatAdapter(), [stream])
    assert (outcome is None) == truncated


def test_finish_reasons_normalized() -> None:
    assert normalize_chat_finish("stop") == ("completed", "stop")
    assert normalize_chat_finish("length") == ("incomplete", "length")
    assert normalize_chat_finish("content_filter") == ("incomplete", "content_filter")
    assert normalize_chat_finish("tool_calls") == ("completed", "tool_calls")
    assert normalize_chat_finish("function_call") == ("completed", "tool_calls")
    assert normalize_chat_finish("something_new") == ("completed", "stop")
    stream = sse(chunk('{"content":"a"}'), chunk("{}", '"content_filter"'), "[DONE]")
    _, outcome, _ = feed(ChatAdapter(), [stream])
    assert outcome == Outcome("incomplete", "content_filter", "content_filter")


def test_unexpected_shape_is_raw_only() -> None:
    stream = sse('{"choices":"not a list"}', "[1, 2]", chunk('{"content":"a"}'), "[DONE]")
    events, outcome, _ = feed(ChatAdapter(), [stream])
    assert sum(isinstance(e, RawEvent) for e in events) == 4
    assert texts(events) == "a" and outcome is not None and outcome.status == "completed"


def test_refusal_delta_is_answer_text() -> None:
    stream = sse(chunk('{"refusal":"I can"}'), chunk('{"refusal":"not."}'), chunk("{}", '"stop"'))
    events, _, _ = feed(ChatAdapter(), [stream])
    assert texts(events) == "I cannot."


def test_restart_resets_state() -> None:
    adapter = ChatAdapter()
    feed(adapter, [sse(chunk('{"content":"a"}'), chunk("{}", '"length"'))])
    assert adapter.content_seen and adapter.finish_raw == "length"
    adapter.begin_attempt(2, restart=True)
    assert not adapter.content_seen and adapter.finish_raw is None and adapter.outcome is None
    events, _, _ = feed(adapter, [sse(chunk('{"content":"b"}'))])
    assert {e.attempt for e in events if isinstance(e, RawEvent)} == {2}


def test_request_body() -> None:
    session = SessionConfig(
        name="s",
        model="m",
        prompt="hi",
        api="chat",
        system="be brief",
        max_output_tokens=50,
        temperature=0.2,
        params={"top_p": 0.9, "stream_options": {"continuous_usage_stats": True}},
    )
    body = build_chat_body(session)
    assert body == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True, "continuous_usage_stats": True},
        "max_tokens": 50,
        "temperature": 0.2,
        "top_p": 0.9,
    }
    minimal = build_chat_body(SessionConfig(name="s", model="m", prompt="p", api="chat"), "other")
    assert minimal["messages"] == [{"role": "user", "content": "other"}]
    assert "max_tokens" not in minimal and "temperature" not in minimal


def test_non_standard_error_lines_never_look_complete() -> None:
    """llama.cpp before PR #16109 sent ``error: {...}`` (a field compliant parsers ignore) and
    Ollama's native writer an NDJSON ``{"error": ...}`` line: the error is lost to SSE, but
    the stream must end as truncated, never as a completed answer, and never crash on the
    empty event that follows."""
    for tail in (
        b'error: {"code":500,"message":"context overflow"}\n\n',
        b'{"error":"model crashed"}\n\n',
    ):
        stream = sse(chunk('{"content":"partial"}')) + tail
        for chunks in splits(stream):
            events, outcome, _ = feed(ChatAdapter(), chunks)
            assert outcome is None and texts(events) == "partial"
            assert sum(isinstance(e, RawEvent) for e in events) == 1
