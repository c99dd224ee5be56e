"""The official openai SDK (sync and async) consumes every non-fault scenario of both APIs."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent

from tui.sim import text

FAST = "ttft=0,tps=0"
TOOLS_CHAT: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "lookup_city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            },
        },
    }
]
TOOLS_RESPONSES: list[Any] = [{"type": "function", **TOOLS_CHAT[0]["function"]}]


def _headers(key: str, timing: str = FAST, tokens: int = 60) -> dict[str, str]:
    return {"X-Sim-Key": key, "X-Sim-Timing": f"{timing},tokens={tokens}"}


@pytest.fixture
def client(sim_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim_url, api_key="sk-sim", max_retries=0)


@pytest.fixture
def aclient(sim_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=sim_url, api_key="sk-sim", max_retries=0)


def _chat_text(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_chat_stream_text_usage_and_framing(client: openai.OpenAI, sim_key: str) -> None:
    stream = client.chat.completions.create(
        model="sim",
        messages=[{"role": "user", "content": "Explain streaming"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=_headers(sim_key, tokens=80),
    )
    chunks = list(stream)
    expected = "".join(text.answer_tokens(0, "Explain streaming", 80))
    assert _chat_text(chunks) == expected
    assert any(ord(ch) > 0x3000 for ch in expected)  # Korean is always in there
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = chunks[-2]
    assert finish.choices[0].finish_reason == "stop" and finish.choices[0].delta.content is None
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == 80
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1
    # One simulated token = one delta.
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 80


def test_chat_non_stream_matches_stream(client: openai.OpenAI, sim_key: str) -> None:
    msgs: list[Any] = [{"role": "user", "content": "같은 답"}]
    whole = client.chat.completions.create(
        model="sim", messages=msgs, extra_headers=_headers(sim_key)
    )
    chunks = list(
        client.chat.completions.create(
            model="sim", messages=msgs, stream=True, extra_headers=_headers(sim_key)
        )
    )
    assert whole.choices[0].message.content == _chat_text(chunks)
    assert whole.usage is not None and whole.usage.completion_tokens == 60
    assert whole.choices[0].finish_reason == "stop"


def test_chat_length_limit(client: openai.OpenAI, sim_key: str) -> None:
    chunks = list(
        client.chat.completions.create(
            model="sim",
            messages=[{"role": "user", "content": "long"}],
            max_tokens=7,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=_headers(sim_key),
        )
    )
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    assert _chat_text(chunks) == "".join(text.answer_tokens(0, "long", 7))


def test_chat_tool_call_fragments(client: openai.OpenAI, sim_key: str) -> None:
    chunks = list(
        client.chat.completions.create(
            model="sim",
            messages=[{"role": "user", "content": "weather?"}],
            tools=TOOLS_CHAT,
            stream=True,
            extra_headers=_headers(sim_key),
        )
    )
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert calls[0].id and calls[0].function and calls[0].function.name == "lookup_city"
    args = "".join(tc.function.arguments or "" for tc in calls if tc.function)
    assert set(json.loads(args)) == {"city", "days"}
    assert len(calls) > 3  # streamed in fragments
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # After the tool result comes back, the model answers with text.
    follow = client.chat.completions.create(
        model="sim",
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": calls[0].id,
                        "type": "function",
                        "function": {"name": "lookup_city", "arguments": args},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"},
        ],
        tools=TOOLS_CHAT,
        extra_headers=_headers(sim_key),
    )
    assert follow.choices[0].finish_reason == "stop" and follow.choices[0].message.content


def test_chat_reasoning_content(client: openai.OpenAI, sim_key: str) -> None:
    chunks = list(
        client.chat.completions.create(
            model="sim",
            messages=[{"role": "user", "content": "think"}],
            reasoning_effort="low",
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=_headers(sim_key, tokens=40),
        )
    )
    reasoning = "".join(
        str((c.choices[0].delta.model_extra or {}).get("reasoning_content") or "")
        for c in chunks
        if c.choices
    )
    assert reasoning.startswith("**Planning")
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 10
    assert usage.completion_tokens == 50


def _deltas(events: list[ResponseStreamEvent]) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


def test_responses_stream_events_and_usage(client: openai.OpenAI, sim_key: str) -> None:
    events = list(
        client.responses.create(
            model="sim", input="Explain streaming", stream=True, extra_headers=_headers(sim_key)
        )
    )
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    expected = "".join(text.answer_tokens(0, "Explain streaming", 60))
    assert _deltas(events) == expected
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert all((d.model_extra or {}).get("obfuscation") for d in deltas)
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == expected
    assert final.response.usage is not None and final.response.usage.output_tokens == 60


def test_responses_helper_and_non_stream(client: openai.OpenAI, sim_key: str) -> None:
    with client.responses.stream(
        model="sim", input="helper", extra_headers=_headers(sim_key)
    ) as stream:
        final = stream.get_final_response()
    whole = client.responses.create(model="sim", input="helper", extra_headers=_headers(sim_key))
    assert final.output_text == whole.output_text == "".join(text.answer_tokens(0, "helper", 60))
    assert whole.status == "completed"
    assert client.responses.retrieve(whole.id).output_text == whole.output_text


def test_responses_length_limit(client: openai.OpenAI, sim_key: str) -> None:
    events = list(
        client.responses.create(
            model="sim",
            input="long",
            max_output_tokens=16,
            stream=True,
            extra_headers=_headers(sim_key),
        )
    )
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details is not None
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert last.response.usage is not None and last.response.usage.output_tokens == 16
    assert len(_deltas(events)) > 0


def test_responses_tool_call(client: openai.OpenAI, sim_key: str) -> None:
    events = list(
        client.responses.create(
            model="sim",
            input="weather?",
            tools=TOOLS_RESPONSES,
            stream=True,
            extra_headers=_headers(sim_key),
        )
    )
    frags = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert len(frags) > 3 and len(done) == 1
    assert "".join(frags) == done[0].arguments
    assert set(json.loads(done[0].arguments)) == {"city", "days"}
    final = events[-1]
    assert final.type == "response.completed"
    call = final.response.output[0]
    assert call.type == "function_call" and call.name == "lookup_city"


def test_responses_reasoning_summary(client: openai.OpenAI, sim_key: str) -> None:
    events = list(
        client.responses.create(
            model="sim",
            input="think",
            reasoning={"effort": "low", "summary": "auto"},
            stream=True,
            extra_headers=_headers(sim_key, tokens=40),
        )
    )
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert summary.startswith("**Planning")
    final = events[-1]
    assert final.type == "response.completed"
    assert [o.type for o in final.response.output] == ["reasoning", "message"]
    usage = final.response.usage
    assert usage is not None and usage.output_tokens_details.reasoning_tokens == 10
    assert usage.output_tokens == 50


def test_model_presets_tools_and_think(client: openai.OpenAI, sim_key: str) -> None:
    tools = client.responses.create(model="sim-tools", input="x", extra_headers=_headers(sim_key))
    assert tools.output[0].type == "function_call"
    think = client.responses.create(model="sim-think", input="x", extra_headers=_headers(sim_key))
    assert [o.type for o in think.output] == ["reasoning", "message"]
    models = {m.id for m in client.models.list()}
    assert {"sim", "sim-flaky", "sim-429", "sim-broken", "sim-tools"} <= models
    assert {"sim-stateless-400", "sim-stateless-404", "sim-small-context"} <= models
    assert client.models.retrieve("sim-fast").id == "sim-fast"


def test_unknown_path_and_method_are_json_errors(sim_url: str) -> None:
    missing = httpx.get(sim_url + "/embeddings")
    assert missing.status_code == 404 and missing.json()["error"]["message"]
    wrong = httpx.get(sim_url + "/chat/completions")
    assert wrong.status_code == 405 and "error" in wrong.json()
    bad = httpx.post(sim_url + "/chat/completions", content=b"{not json")
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_background_resume_is_exact(client: openai.OpenAI, sim_key: str) -> None:
    headers = _headers(sim_key, timing="ttft=0,tps=400", tokens=30)
    events = list(
        client.responses.create(
            model="sim", input="bg", background=True, stream=True, extra_headers=headers
        )
    )
    assert events[0].type == "response.created" and events[0].response.status == "queued"
    rid = events[0].response.id
    n = 12
    tail = list(client.responses.retrieve(rid, stream=True, starting_after=n))
    assert [e.sequence_number for e in tail] == list(range(n + 1, len(events)))
    assert [e.model_dump() for e in tail] == [e.model_dump() for e in events[n + 1 :]]
    assert client.responses.retrieve(rid).status == "completed"
    # Cancelling a finished response is idempotent and returns the final response.
    assert client.responses.cancel(rid).status == "completed"


def test_background_resume_while_generating(client: openai.OpenAI, sim_key: str) -> None:
    headers = _headers(sim_key, timing="ttft=0,tps=100", tokens=40)
    start = time.perf_counter()
    stream = client.responses.create(
        model="sim", input="live", background=True, stream=True, extra_headers=headers
    )
    head: list[ResponseStreamEvent] = []
    for event in stream:
        head.append(event)
        if len(head) == 8:
            break
    stream.close()
    rid = head[0].response.id if head[0].type == "response.created" else ""
    status = client.responses.retrieve(rid).status
    # The last token is due 0.39 s after the simulator took the request (after ``start``):
    # an answer given sooner must be in progress; a busy machine may see it completed.
    if time.perf_counter() - start < 0.39:
        assert status == "in_progress"
    else:
        assert status in ("in_progress", "completed")
    tail = list(client.responses.retrieve(rid, stream=True, starting_after=7))
    assert tail[0].sequence_number == 8
    assert tail[-1].type == "response.completed"
    assert _deltas(head + tail) == "".join(text.answer_tokens(0, "live", 40))


def test_background_cancel(client: openai.OpenAI, sim_key: str) -> None:
    headers = _headers(sim_key, timing="ttft=0.05,tps=20", tokens=400)
    start = time.perf_counter()
    created = client.responses.create(
        model="sim", input="cancel me", background=True, extra_headers=headers
    )
    assert created.status == "queued"
    first = client.responses.cancel(created.id)
    before_cancel = time.perf_counter() - start
    again = client.responses.cancel(created.id)
    assert first.status == again.status == "cancelled"
    assert client.responses.retrieve(created.id).status == "cancelled"
    # A stream of a cancelled response ends (cleanly) instead of generating on.
    events = list(client.responses.retrieve(created.id, stream=True))
    # It holds what was made before the cancel (a token every 50 ms), not 400 tokens.
    assert len(events) < 10 + 20 * before_cancel, (len(events), before_cancel)


def test_unknown_or_unstored_response_is_404(client: openai.OpenAI, sim_key: str) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_does_not_exist")
    unstored = client.responses.create(
        model="sim", input="x", store=False, extra_headers=_headers(sim_key)
    )
    assert unstored.output_text
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)


async def test_async_sdk_both_apis(aclient: openai.AsyncOpenAI, sim_key: str) -> None:
    chat = await aclient.chat.completions.create(
        model="sim",
        messages=[{"role": "user", "content": "async"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=_headers(sim_key, timing="ttft=0.01,tps=2000"),
    )
    chunks = [c async for c in chat]
    expected = "".join(text.answer_tokens(0, "async", 60))
    assert _chat_text(chunks) == expected
    resp = await aclient.responses.create(
        model="sim",
        input="async",
        stream=True,
        extra_headers=_headers(sim_key, timing="ttft=0.01,tps=2000"),
    )
    events = [e async for e in resp]
    assert _deltas(events) == expected
    last = events[-1]
    assert last.type == "response.completed" and last.response.usage is not None
    assert last.response.usage.output_tokens == 60
    bg = await aclient.responses.create(
        model="sim", input="async", background=True, stream=True, extra_headers=_headers(sim_key)
    )
    all_events = [e async for e in bg]
    rid = all_events[0].response.id if all_events[0].type == "response.created" else ""
    tail = await aclient.responses.retrieve(rid, stream=True, starting_after=5)
    rest = [e async for e in tail]
    assert [e.model_dump() for e in rest] == [e.model_dump() for e in all_events[6:]]
    await aclient.close()


def test_deterministic_per_seed(sim_url: str, sim_key: str, client: openai.OpenAI) -> None:
    a = client.responses.create(model="sim", input="seeded", extra_headers=_headers(sim_key))
    b = client.responses.create(
        model="sim", input="seeded", extra_headers=_headers(sim_key, timing=f"{FAST},seed=7")
    )
    c = client.responses.create(model="sim", input="seeded", extra_headers=_headers(sim_key))
    assert a.output_text == c.output_text != b.output_text
    assert a.id != c.id  # ids are unique per response


async def test_async_sdk_holds_a_conversation_on_both_apis(
    aclient: openai.AsyncOpenAI, sim_key: str
) -> None:
    """Each turn on both APIs: chat sends all messages, Responses previous_response_id."""
    prompts = ("Explain streaming", "now shorter", "in Korean")
    wants = [text.turn_answer_tokens(0, p, 60, n, prompts[n - 2]) for n, p in enumerate(prompts, 1)]
    messages: list[Any] = []
    previous: str | openai.Omit = openai.omit
    for prompt, want in zip(prompts, map("".join, wants), strict=True):
        messages.append({"role": "user", "content": prompt})
        stream = await aclient.chat.completions.create(
            model="sim", messages=messages, stream=True, extra_headers=_headers(sim_key)
        )
        messages.append({"role": "assistant", "content": _chat_text([c async for c in stream])})
        headers = _headers(sim_key)
        async with aclient.responses.stream(
            model="sim", input=prompt, previous_response_id=previous, extra_headers=headers
        ) as events:
            final = await events.get_final_response()
        assert messages[-1]["content"] == final.output_text == want
        previous = final.id
    assert messages[-1]["content"].startswith('(turn 3) Following up on "now shorter".')
    await aclient.close()
