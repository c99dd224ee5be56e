"""Chat Completions (``POST /v1/chat/completions``): request digest and chunk plan."""

from __future__ import annotations

import json
from collections.abc import Mapping
from itertools import cycle, islice, repeat
from typing import Any

from tui.sim import text
from tui.sim.conversation import check_messages
from tui.sim.faults import FaultSet
from tui.sim.plan import (
    TOKEN,
    Content,
    EventPlan,
    GenRequest,
    ToolSpec,
    encode_tokens,
    json_encode,
)


def chat_request(body: Mapping[str, Any]) -> GenRequest:
    """Digest a chat request body; its ``messages`` are checked as OpenAI checks them
    (raises :class:`~tui.sim.errors.RequestError` naming the field)."""
    messages = body.get("messages")
    conv = check_messages(messages)
    tools: list[ToolSpec] = []
    for t in body.get("tools") or []:
        fn = t.get("function") if isinstance(t, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            params = fn.get("parameters")
            tools.append(ToolSpec(fn["name"], params if isinstance(params, dict) else None))
    opts = body.get("stream_options") or {}
    cap = body.get("max_completion_tokens", body.get("max_tokens"))
    effort = body.get("reasoning_effort")
    return GenRequest(
        model=str(body.get("model", "sim")),
        prompt=conv.prompt,
        input_tokens=text.input_token_estimate(json.dumps(messages, ensure_ascii=False)),
        max_output_tokens=int(cap) if cap is not None else None,
        tools=tuple(tools),
        tool_choice_none=body.get("tool_choice") == "none",
        has_tool_result=conv.tool_result,
        reasoning=effort not in (None, "none"),
        include_usage=bool(isinstance(opts, dict) and opts.get("include_usage")),
        include_obfuscation=not (
            isinstance(opts, dict) and opts.get("include_obfuscation") is False
        ),
        stream=bool(body.get("stream")),
        body=body,
        turn=conv.turn,
        earlier=conv.earlier,
    )


def _usage(c: Content) -> dict[str, Any]:
    return {
        "prompt_tokens": c.input_tokens,
        "completion_tokens": c.output_tokens,
        "total_tokens": c.input_tokens + c.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": len(c.reasoning),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def error_chunk(message: str = "The server had an error while processing your request.") -> bytes:
    """An in-band chat error chunk (the nested shape that openai-python raises on)."""
    return json_encode(
        {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    )


def chat_plan(
    req: GenRequest, c: Content, faults: FaultSet, *, chat_id: str, created: int, pad: list[str]
) -> EventPlan:
    """The chunk plan of a streamed chat completion, faults that change content applied."""
    head = {
        "id": chat_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": req.model,
        "service_tier": "default",
        "system_fingerprint": "fp_sim",
    }
    usage_null = b',"usage":null' if req.include_usage else b""
    obf = req.include_obfuscation
    pads = [json_encode(p) for p in pad]
    n_pad = len(pads)
    pre = json_encode(head)[:-1] + b',"choices":[{"index":0,"delta":{'
    post = b'},"logprobs":null,"finish_reason":null}]' + usage_null

    def chunk(delta_fields: bytes, i: int, finish: bytes = b"null") -> bytes:
        tail = b'},"logprobs":null,"finish_reason":' + finish + b"}]" + usage_null
        return (
            pre
            + delta_fields
            + tail
            + (b',"obfuscation":' + pads[i % n_pad] if obf else b"")
            + b"}"
        )

    plan = EventPlan([], [], [], {})
    role = b'"role":"assistant","content":' + (b"null" if c.tool else b'""') + b',"refusal":null'
    plan.add(None, chunk(role, 0))
    n = 1
    # The hot loop of a long stream: one join per token, every constant part prebuilt.
    tails = [post + (b',"obfuscation":' + p + b"}" if obf else b"}") for p in pads]
    for field_name, tokens in ((b'"reasoning_content":', c.reasoning), (b'"content":', c.text)):
        if not tokens:
            continue
        enc = encode_tokens(tokens)
        parts = zip(
            repeat(pre + field_name),
            map(enc.__getitem__, tokens),
            islice(cycle(tails), n % n_pad, None),
        )
        plan.datas.extend(map(b"%b%b%b".__mod__, parts))  # C-level loop: ~0.3 us a token
        plan.names.extend([None] * len(tokens))
        plan.kinds.extend([TOKEN] * len(tokens))
        n += len(tokens)
    if c.tool is not None:
        first = {
            "tool_calls": [
                {
                    "index": 0,
                    "id": c.tool.call_id,
                    "type": "function",
                    "function": {"name": c.tool.name, "arguments": ""},
                }
            ]
        }
        plan.add(None, chunk(json_encode(first)[1:-1], n))
        for frag in c.tool.fragments:
            delta = (
                b'"tool_calls":[{"index":0,"function":{"arguments":' + json_encode(frag) + b"}}]"
            )
            plan.add(None, chunk(delta, n), TOKEN)
            n += 1
    plan.add(None, chunk(b"", n, json_encode(c.finish)))
    if req.include_usage:
        usage = dict(head, choices=[], usage=_usage(c))
        plan.add(None, json_encode(usage))
    plan.add(None, b"[DONE]")
    apply_chat_faults(plan, faults)
    plan.final = chat_completion(req, c, head)
    return plan


def apply_chat_faults(plan: EventPlan, faults: FaultSet) -> None:
    """Cut the plan for ``error`` / ``fail`` (never later than just before ``[DONE]``) and
    ``no_done``."""
    ats = [x for x in (faults.int_of("error"), faults.int_of("fail")) if x is not None]
    if ats:
        cut = min(*ats, len(plan) - 1)
        del plan.names[cut:], plan.datas[cut:], plan.kinds[cut:]
        plan.add(None, error_chunk())
    elif faults.has("no_done") and plan.datas[-1] == b"[DONE]":
        plan.names.pop(), plan.datas.pop(), plan.kinds.pop()


def chat_completion(req: GenRequest, c: Content, head: Mapping[str, Any]) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` object."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if c.tool else c.answer,
        "refusal": None,
        "annotations": [],
    }
    if c.reasoning:
        message["reasoning_content"] = "".join(c.reasoning)
    if c.tool is not None:
        message["tool_calls"] = [
            {
                "id": c.tool.call_id,
                "type": "function",
                "function": {"name": c.tool.name, "arguments": c.tool.arguments},
            }
        ]
    return dict(
        head,
        object="chat.completion",
        choices=[{"index": 0, "message": message, "logprobs": None, "finish_reason": c.finish}],
        usage=_usage(c),
    )
