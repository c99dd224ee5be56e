"""tokentop's engine (StreamRun) and the official openai SDK get the same text and usage from
the simulator, for every non-fault scenario of both APIs (and after a drop that the engine
resumes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest

from tui.config import ReconnectPolicy, SessionConfig
from tui.sim import text
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import Api, Finished, ReasoningDelta, TextDelta, ToolCallDelta, Usage
from tui.stream.runner import StreamRun

PROMPT = "Compare two streams"
TOOL = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


@dataclass
class Seen:
    """What a client got out of one run."""

    text: str = ""
    reasoning: str = ""
    arguments: str = ""
    output_tokens: int | None = None
    input_tokens: int | None = None
    reasoning_tokens: int | None = None
    finish: list[str] = field(default_factory=list)
    final_text: str = ""
    """The run's answer as tokentop keeps it (a restart replaces the partial output)."""
    resumes: int = 0


def _params(api: Api, scenario: str) -> dict[str, Any]:
    if scenario == "tools":
        if api == "chat":
            return {"tools": [{"type": "function", "function": {"name": "f", "parameters": TOOL}}]}
        return {"tools": [{"type": "function", "name": "f", "parameters": TOOL}]}
    if scenario == "reasoning":
        if api == "chat":
            return {"reasoning_effort": "low"}
        return {"reasoning": {"effort": "low", "summary": "auto"}}
    if scenario == "background":
        return {"background": True}
    return {}


async def _engine(
    sim_url: str, api: Api, scenario: str, headers: dict[str, str], model: str = "sim"
) -> Seen:
    session = SessionConfig(
        name="parity",
        model=model,
        prompt=PROMPT,
        api=api,
        max_output_tokens=9 if scenario == "length" else None,
        background=scenario == "background" or (model == "sim-flaky" and api == "responses"),
        params=_params(api, scenario),
        headers=headers,
        reconnect=ReconnectPolicy(backoff_initial_s=0.01, backoff_max_s=0.05),
    )
    seen = Seen()
    acc = RunAccumulator("run", session.name, api, model, PROMPT)
    async with httpx.AsyncClient(timeout=30) as client:
        async for event in StreamRun(session, client=client, base_url=sim_url):
            acc.apply(event)
            if isinstance(event, TextDelta):
                seen.text += event.text
            elif isinstance(event, ReasoningDelta):
                seen.reasoning += event.text
            elif isinstance(event, ToolCallDelta):
                seen.arguments += event.arguments
            elif isinstance(event, Usage):
                seen.output_tokens = event.output_tokens
                seen.input_tokens = event.input_tokens
                seen.reasoning_tokens = event.reasoning_tokens
            elif isinstance(event, Finished):
                seen.finish.append(event.reason)
    seen.final_text, seen.resumes = acc.output_text, acc.resumes
    return seen


async def _sdk(sim_url: str, api: Api, scenario: str, headers: dict[str, str]) -> Seen:
    client = openai.AsyncOpenAI(base_url=sim_url, api_key="sk-sim", max_retries=0)
    seen = Seen()
    params = _params(api, scenario)
    if api == "chat":
        stream = await client.chat.completions.create(
            model="sim",
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
            stream_options={"include_usage": True},
            max_tokens=9 if scenario == "length" else openai.omit,
            extra_headers=headers,
            extra_body=params,
        )
        async for chunk in stream:
            if chunk.usage is not None:
                seen.output_tokens = chunk.usage.completion_tokens
                seen.input_tokens = chunk.usage.prompt_tokens
                details = chunk.usage.completion_tokens_details
                seen.reasoning_tokens = details.reasoning_tokens if details else None
            for choice in chunk.choices:
                seen.text += choice.delta.content or ""
                extra = choice.delta.model_extra or {}
                seen.reasoning += str(extra.get("reasoning_content") or "")
                for call in choice.delta.tool_calls or []:
                    seen.arguments += (call.function.arguments or "") if call.function else ""
                if choice.finish_reason:
                    seen.finish.append(choice.finish_reason)
    else:
        events = await client.responses.create(
            model="sim",
            input=PROMPT,
            stream=True,
            max_output_tokens=9 if scenario == "length" else openai.omit,
            extra_headers=headers,
            extra_body=params,
        )
        async for event in events:
            if event.type == "response.output_text.delta":
                seen.text += event.delta
            elif event.type == "response.reasoning_summary_text.delta":
                seen.reasoning += event.delta
            elif event.type == "response.function_call_arguments.delta":
                seen.arguments += event.delta
            elif event.type in ("response.completed", "response.incomplete"):
                usage = event.response.usage
                assert usage is not None
                seen.output_tokens = usage.output_tokens
                seen.input_tokens = usage.input_tokens
                seen.reasoning_tokens = usage.output_tokens_details.reasoning_tokens
                seen.finish.append(event.response.status or "")
    await client.close()
    return seen


SCENARIOS = [
    (api, scenario)
    for api in ("chat", "responses")
    for scenario in ("plain", "tools", "reasoning", "length", "background")
    if not (api == "chat" and scenario == "background")  # background is Responses-only
]


@pytest.mark.parametrize(("api", "scenario"), SCENARIOS)
async def test_engine_and_sdk_agree(sim_url: str, sim_key: str, api: Api, scenario: str) -> None:
    headers = {"X-Sim-Key": sim_key, "X-Sim-Timing": "ttft=0.01,tps=3000,tokens=50"}
    engine = await _engine(sim_url, api, scenario, headers)
    sdk = await _sdk(sim_url, api, scenario, headers)
    assert engine.text == sdk.text
    assert engine.reasoning == sdk.reasoning
    assert engine.arguments == sdk.arguments
    assert (engine.output_tokens, engine.input_tokens) == (sdk.output_tokens, sdk.input_tokens)
    assert engine.reasoning_tokens == sdk.reasoning_tokens
    assert len(engine.finish) == 1 and len(sdk.finish) == 1
    expected = {
        "plain": "stop",
        "tools": "tool_calls",
        "reasoning": "stop",
        "length": "length",
        "background": "stop",
    }[scenario]
    assert engine.finish == [expected]
    if scenario in ("plain", "reasoning", "length", "background"):
        assert engine.text
    if scenario == "reasoning":
        assert engine.reasoning
    if scenario == "tools":
        assert engine.arguments and not engine.text


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_engine_recovers_from_a_drop_to_the_same_text(
    sim_url: str, sim_key: str, api: Api
) -> None:
    timing = "ttft=0.01,tps=3000,tokens=50"
    engine = await _engine(
        sim_url, api, "plain", {"X-Sim-Key": sim_key, "X-Sim-Timing": timing}, model="sim-flaky"
    )
    sdk = await _sdk(sim_url, api, "plain", {"X-Sim-Key": sim_key + "-sdk", "X-Sim-Timing": timing})
    assert engine.finish == ["stop"]
    assert engine.final_text == sdk.text
    assert engine.output_tokens == sdk.output_tokens
    if api == "responses":  # a background response is resumed, not restarted
        assert engine.resumes == 1 and engine.text == sdk.text


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_engine_resumes_with_last_event_id(sim_url: str, sim_key: str, api: Api) -> None:
    timing = "ttft=0.01,tps=3000,tokens=50"
    headers = {"X-Sim-Key": sim_key, "X-Sim-Timing": timing, "X-Sim-Fault": "ids,drop=12"}
    engine = await _engine(sim_url, api, "plain", headers)
    assert engine.finish == ["stop"] and engine.resumes == 1
    assert engine.text == engine.final_text == "".join(text.answer_tokens(0, PROMPT, 50))
    assert engine.output_tokens == 50


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_sdk_reads_spec_valid_framing_quirks(sim_url: str, sim_key: str, api: Api) -> None:
    quirks = {"X-Sim-Fault": "crlf,comments,multiline,split,keepalive=0.05"}
    timing = "ttft=0.1,tps=400"
    plain = await _sdk(sim_url, api, "plain", {"X-Sim-Key": sim_key, "X-Sim-Timing": timing})
    odd = await _sdk(sim_url, api, "plain", {"X-Sim-Key": sim_key, "X-Sim-Timing": timing} | quirks)
    assert odd == plain and plain.text
