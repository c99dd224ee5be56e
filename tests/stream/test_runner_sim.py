"""StreamRun end to end against the simulator over loopback: both APIs, every framing quirk,
in-band failures and the finish reasons."""

from __future__ import annotations

import dataclasses
import json

import httpx
import pytest

from tests.stream.helpers import make_session, of_type, run_session
from tui.sim import text as sim_text
from tui.stream.events import (
    Api,
    Connecting,
    Finished,
    Notice,
    RawEvent,
    ResponseInfo,
    Retrying,
    Started,
    Usage,
)

APIS: list[Api] = ["chat", "responses"]
TOKENS = 60
PROMPT = "Tell me about rivers."


def reference_text(prompt: str = PROMPT, tokens: int = TOKENS) -> str:
    """What the simulator (seed 0) answers for this prompt: the uninterrupted text."""
    return "".join(sim_text.answer_tokens(0, prompt, tokens))


@pytest.mark.parametrize("api", APIS)
async def test_uninterrupted_run(api: Api, sim_url: str, sim_key: str) -> None:
    timing = f"ttft=0.05,tps=300,jitter=0.1,tokens={TOKENS}"
    events, acc = await run_session(make_session(api, key=sim_key, timing=timing), sim_url)
    assert acc.status == "completed" and acc.finish_reason == "stop"
    assert acc.output_text == reference_text() and acc.output_text
    connecting, started = of_type(events, Connecting), of_type(events, Started)
    assert len(connecting) == len(started) == 1 and isinstance(events[0], Connecting)
    assert connecting[0].method == "POST"
    assert connecting[0].url == sim_url + ("/chat/completions" if api == "chat" else "/responses")
    headers = dict(started[0].headers)
    assert started[0].request_id == headers["x-request-id"] and started[0].request_id
    assert "authorization" not in headers
    (info,) = of_type(events, ResponseInfo)
    assert info.response_id and info.response_id.startswith(
        "chatcmpl-" if api == "chat" else "resp_"
    )
    assert acc.response_id == info.response_id and acc.request_id == started[0].request_id
    m = acc.metrics()
    assert not m.tokens_estimated and m.output_tokens == TOKENS and m.input_tokens
    assert m.chunks == TOKENS and m.ttft_s is not None and m.ttft_s >= 0.04
    assert m.itl_p50_s is not None and m.tokens_per_s is not None and m.tokens_per_s > 0
    raw = of_type(events, RawEvent)
    assert raw and all(r.attempt == 1 for r in raw)
    if api == "chat":
        assert raw[-1].data == "[DONE]" and raw[-1].event is None
    else:
        assert raw[-1].event == "response.completed"
        assert json.loads(raw[-1].data)["type"] == "response.completed"
    assert not of_type(events, Retrying) and not of_type(events, Notice)


async def test_final_text_matches_non_streamed_answer(sim_url: str, sim_key: str) -> None:
    _, acc = await run_session(make_session("chat", key=sim_key), sim_url)
    async with httpx.AsyncClient() as client:
        body = {"model": "sim-fast", "messages": [{"role": "user", "content": PROMPT}]}
        headers = {"X-Sim-Timing": f"tokens={TOKENS}", "X-Sim-Key": sim_key + "-plain"}
        r = await client.post(sim_url + "/chat/completions", json=body, headers=headers)
    assert r.json()["choices"][0]["message"]["content"] == acc.output_text


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    "quirks", ["bom", "crlf", "cr", "comments", "multiline", "split", "bom,cr,split,comments"]
)
async def test_framing_quirks_change_nothing(
    api: Api, quirks: str, sim_url: str, sim_key: str
) -> None:
    events, acc = await run_session(make_session(api, fault=quirks, key=sim_key), sim_url)
    assert acc.status == "completed" and acc.output_text == reference_text()
    assert not of_type(events, Retrying)
    assert acc.metrics().output_tokens == TOKENS and not acc.metrics().tokens_estimated


@pytest.mark.parametrize("api", APIS)
async def test_in_band_error_keeps_partial_output(api: Api, sim_url: str, sim_key: str) -> None:
    events, acc = await run_session(make_session(api, fault="error=12", key=sim_key), sim_url)
    assert acc.status == "failed" and acc.finish_reason == "error"
    assert acc.error is not None and acc.error.kind == "server"
    assert acc.error.message == "The server had an error while processing your request."
    assert acc.output_text and reference_text().startswith(acc.output_text)
    assert not of_type(events, Retrying)  # an answer from the server, not a transport fault


async def test_responses_flat_error_event(sim_url: str, sim_key: str) -> None:
    fault = "error=8,error_shape=flat"
    _, acc = await run_session(make_session("responses", fault=fault, key=sim_key), sim_url)
    assert acc.status == "failed" and acc.error is not None
    assert acc.error.code == "server_error" and "server had an error" in acc.error.message


async def test_responses_failed(sim_url: str, sim_key: str) -> None:
    _, acc = await run_session(make_session("responses", fault="fail=9", key=sim_key), sim_url)
    assert (acc.status, acc.finish_reason, acc.raw_finish_reason) == ("failed", "error", "failed")
    assert (
        acc.error is not None and acc.error.message == "The model failed to finish this response."
    )
    assert acc.output_text and reference_text().startswith(acc.output_text)


@pytest.mark.parametrize("api", APIS)
async def test_malformed_json_names_event(api: Api, sim_url: str, sim_key: str) -> None:
    _, acc = await run_session(make_session(api, fault="bad_json=6", key=sim_key), sim_url)
    assert acc.status == "failed" and acc.error is not None and acc.error.kind == "protocol"
    assert "event 6 of attempt 1" in acc.error.message
    assert reference_text().startswith(acc.output_text)


@pytest.mark.parametrize("api", APIS)
async def test_content_filter(api: Api, sim_url: str, sim_key: str) -> None:
    _, acc = await run_session(make_session(api, fault="content_filter", key=sim_key), sim_url)
    assert (acc.status, acc.finish_reason, acc.raw_finish_reason) == (
        "incomplete",
        "content_filter",
        "content_filter",
    )
    assert acc.output_text and reference_text().startswith(acc.output_text)


@pytest.mark.parametrize("api", APIS)
async def test_max_output_tokens_is_length(api: Api, sim_url: str, sim_key: str) -> None:
    session = make_session(api, key=sim_key)
    session = dataclasses.replace(session, max_output_tokens=7)
    _, acc = await run_session(session, sim_url)
    assert (acc.status, acc.finish_reason) == ("incomplete", "length")
    assert acc.raw_finish_reason == ("length" if api == "chat" else "max_output_tokens")
    assert acc.metrics().output_tokens == 7


@pytest.mark.parametrize("api", APIS)
async def test_empty_stop_is_flagged(api: Api, sim_url: str, sim_key: str) -> None:
    events, acc = await run_session(make_session(api, fault="empty_stop", key=sim_key), sim_url)
    assert acc.status == "completed" and acc.finish_reason == "stop" and acc.output_text == ""
    (notice,) = of_type(events, Notice)
    assert notice.code == "empty_stop" and events[-2] is notice


@pytest.mark.parametrize("api", APIS)
async def test_tool_calls(api: Api, sim_url: str, sim_key: str) -> None:
    _, acc = await run_session(make_session(api, model="sim-tools", key=sim_key), sim_url)
    assert acc.status == "completed" and acc.finish_reason == "tool_calls"
    (call,) = acc.tool_calls
    assert call.name == "get_weather" and call.call_id and "city" in json.loads(call.arguments)
    assert acc.result()["tool_calls"] == [{"name": "get_weather", "arguments": call.arguments}]


@pytest.mark.parametrize("api", APIS)
async def test_reasoning(api: Api, sim_url: str, sim_key: str) -> None:
    _, acc = await run_session(make_session(api, model="sim-think", key=sim_key), sim_url)
    assert acc.status == "completed" and acc.reasoning_text and acc.output_text
    assert acc.metrics().chunks > TOKENS  # reasoning deltas count as content chunks


async def test_chat_no_done_after_finish_reason_is_complete(sim_url: str, sim_key: str) -> None:
    """The simulator's ``no_done`` chat stream still has its finish_reason: nothing is lost."""
    _, acc = await run_session(make_session("chat", fault="no_done", key=sim_key), sim_url)
    assert acc.status == "completed" and acc.output_text == reference_text()


async def test_usage_present_on_separate_chunk(sim_url: str, sim_key: str) -> None:
    events, _ = await run_session(make_session("chat", key=sim_key), sim_url)
    (usage,) = of_type(events, Usage)
    assert usage.output_tokens == TOKENS and usage.total_tokens == usage.input_tokens + TOKENS  # type: ignore[operator]
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.raw_reason == "stop"
