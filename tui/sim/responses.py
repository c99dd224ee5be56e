"""Responses API (``POST /v1/responses``): request digest, Response objects and event plan."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import cycle, repeat
from typing import Any

from tui.sim import text
from tui.sim.errors import missing
from tui.sim.faults import FaultSet
from tui.sim.items import input_items, items_conversation
from tui.sim.plan import (
    IMMEDIATE,
    TOKEN,
    Content,
    EventPlan,
    GenRequest,
    ToolSpec,
    encode_tokens,
    json_encode,
)

SERVER_ERROR = {"code": "server_error", "message": "The model failed to finish this response."}


def responses_request(
    body: Mapping[str, Any], history: Sequence[Mapping[str, Any]] | None = None
) -> GenRequest:
    """Digest a Responses request body; ``history`` is the stored conversation its
    ``previous_response_id`` continues (None without one). Its ``input`` is checked as OpenAI
    checks it (raises :class:`~tui.sim.errors.RequestError` naming the field).

    Input tokens count the instructions and the whole conversation: the stored history and
    this input (without a previous response, exactly the request's own ``input``).
    """
    if "input" not in body:
        raise missing("input")
    items = input_items(body["input"])
    conv = items_conversation(items if history is None else [*history, *items])
    tools: list[ToolSpec] = []
    for t in body.get("tools") or []:
        if isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("name"), str):
            params = t.get("parameters")
            tools.append(ToolSpec(t["name"], params if isinstance(params, dict) else None))
    reasoning = body.get("reasoning")
    opts = body.get("stream_options") or {}
    cap = body.get("max_output_tokens")
    seen = body.get("input") if history is None else [*history, *items]
    source = json.dumps([body.get("instructions"), seen], ensure_ascii=False)
    return GenRequest(
        model=str(body.get("model", "sim")),
        prompt=conv.prompt,
        input_tokens=text.input_token_estimate(source),
        max_output_tokens=int(cap) if cap is not None else None,
        tools=tuple(tools),
        tool_choice_none=body.get("tool_choice") == "none",
        has_tool_result=conv.tool_result,
        reasoning=isinstance(reasoning, dict) and reasoning.get("summary") is not None,
        include_usage=True,
        include_obfuscation=not (
            isinstance(opts, dict) and opts.get("include_obfuscation") is False
        ),
        stream=bool(body.get("stream")),
        background=bool(body.get("background")),
        body=body,
        turn=conv.turn,
        earlier=conv.earlier,
        items=tuple(items),
    )


def usage_of(c: Content) -> dict[str, Any]:
    """The Responses ``usage`` object of a content decision."""
    return {
        "input_tokens": c.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": c.output_tokens,
        "output_tokens_details": {"reasoning_tokens": len(c.reasoning)},
        "total_tokens": c.input_tokens + c.output_tokens,
    }


def response_object(
    req: GenRequest,
    rid: str,
    created_at: int,
    status: str,
    *,
    output: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
    error: Mapping[str, Any] | None = None,
    incomplete: str | None = None,
    completed_at: int | None = None,
) -> dict[str, Any]:
    """A Response object (the shape openai-python's ``Response`` model reads)."""
    body = req.body
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else None
    return {
        "id": rid,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": req.background,
        "completed_at": completed_at,
        "error": dict(error) if error else None,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": req.max_output_tokens,
        "model": req.model,
        "output": output or [],
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {
            "effort": (reasoning or {}).get("effort"),
            "summary": (reasoning or {}).get("summary"),
        },
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": body.get("metadata") or {},
    }


class _Seq:
    """Adds events with increasing ``sequence_number``."""

    def __init__(self, plan: EventPlan) -> None:
        self.plan = plan
        self.n = 0

    def add(self, type_: str, fields: dict[str, Any], kind: int = 0) -> None:
        data = {"type": type_, "sequence_number": self.n, **fields}
        self.plan.add(type_.encode(), json_encode(data), kind)
        self.n += 1


def responses_plan(
    req: GenRequest,
    c: Content,
    faults: FaultSet,
    *,
    rid: str,
    created_at: int,
    ids: list[str],
    pad: list[str],
) -> EventPlan:
    """The event plan of a streamed response, faults that change content applied.

    ``ids`` supplies item ids (reasoning, message, function call), ``pad`` obfuscation strings.
    """
    plan = EventPlan([], [], [], {})
    seq = _Seq(plan)
    start = response_object(req, rid, created_at, "queued" if req.background else "in_progress")
    seq.add("response.created", {"response": start}, IMMEDIATE)
    start = dict(start, status="in_progress")
    seq.add("response.in_progress", {"response": start}, IMMEDIATE)
    obf = req.include_obfuscation
    pads = [json_encode(p) for p in pad]
    output: list[dict[str, Any]] = []
    item: dict[str, Any]
    part: dict[str, Any]
    done_status = "incomplete" if c.finish in ("length", "content_filter") else "completed"

    def deltas(type_: str, fixed: dict[str, Any], tokens: tuple[str, ...]) -> None:
        # The hot loop of a long stream: one join per token, every constant part prebuilt.
        head = json_encode({"type": type_})[:-1] + b',"sequence_number":'
        mid = json_encode(fixed)[:-1].replace(b"{", b",", 1) + b',"delta":'
        logprobs = b',"logprobs":[]' if type_ == "response.output_text.delta" else b""
        tails = [logprobs + (b',"obfuscation":' + p if obf else b"") + b"}" for p in pads]
        enc = encode_tokens(tokens)
        parts = zip(
            repeat(head),
            range(seq.n, seq.n + len(tokens)),
            repeat(mid),
            map(enc.__getitem__, tokens),
            cycle(tails),
        )
        plan.datas.extend(map(b"%b%d%b%b%b".__mod__, parts))  # C-level loop: ~0.6 us a token
        plan.names.extend([type_.encode()] * len(tokens))
        plan.kinds.extend([TOKEN] * len(tokens))
        seq.n += len(tokens)

    if c.reasoning:
        idx, item_id = len(output), ids[0]
        summary_text = "".join(c.reasoning)
        item = {"id": item_id, "type": "reasoning", "summary": []}
        seq.add("response.output_item.added", {"output_index": idx, "item": item})
        ref = {"item_id": item_id, "output_index": idx, "summary_index": 0}
        part = {"type": "summary_text", "text": ""}
        seq.add("response.reasoning_summary_part.added", {**ref, "part": part})
        deltas("response.reasoning_summary_text.delta", ref, c.reasoning)
        seq.add("response.reasoning_summary_text.done", {**ref, "text": summary_text})
        part = {"type": "summary_text", "text": summary_text}
        seq.add("response.reasoning_summary_part.done", {**ref, "part": part})
        item = {"id": item_id, "type": "reasoning", "summary": [part]}
        seq.add("response.output_item.done", {"output_index": idx, "item": item})
        output.append(item)
    if c.tool is not None:
        idx, item_id = len(output), ids[2]
        item = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": c.tool.call_id,
            "name": c.tool.name,
        }
        seq.add("response.output_item.added", {"output_index": idx, "item": item})
        ref = {"item_id": item_id, "output_index": idx}
        deltas("response.function_call_arguments.delta", ref, c.tool.fragments)
        fields = {**ref, "name": c.tool.name, "arguments": c.tool.arguments}
        seq.add("response.function_call_arguments.done", fields)
        item = dict(item, status=done_status, arguments=c.tool.arguments)
        seq.add("response.output_item.done", {"output_index": idx, "item": item})
        output.append(item)
    elif c.text or c.finish != "stop":
        idx, item_id = len(output), ids[1]
        item = {
            "id": item_id,
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        seq.add("response.output_item.added", {"output_index": idx, "item": item})
        ref = {"item_id": item_id, "output_index": idx, "content_index": 0}
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        seq.add("response.content_part.added", {**ref, "part": part})
        deltas("response.output_text.delta", ref, c.text)
        answer = c.answer
        seq.add("response.output_text.done", {**ref, "text": answer, "logprobs": []})
        part = dict(part, text=answer)
        seq.add("response.content_part.done", {**ref, "part": part})
        item = dict(item, status=done_status, content=[part])
        seq.add("response.output_item.done", {"output_index": idx, "item": item})
        output.append(item)
    incomplete = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(c.finish)
    final = response_object(
        req,
        rid,
        created_at,
        done_status,
        output=output,
        usage=usage_of(c),
        incomplete=incomplete,
        completed_at=created_at if done_status == "completed" else None,
    )
    terminal = "response.incomplete" if incomplete else "response.completed"
    seq.add(terminal, {"response": final})
    plan.final = final
    _apply_faults(plan, seq, faults, req, rid, created_at, c)
    return plan


def _apply_faults(
    plan: EventPlan,
    seq: _Seq,
    faults: FaultSet,
    req: GenRequest,
    rid: str,
    created_at: int,
    c: Content,
) -> None:
    err_at, fail_at = faults.int_of("error"), faults.int_of("fail")
    # Never later than just before the terminal event, so the fault always happens.
    last = len(plan) - 1
    err_cut = min(err_at, last) if err_at is not None else None
    fail_cut = min(fail_at, last) if fail_at is not None else None
    use_error = err_cut is not None and (fail_cut is None or err_cut <= fail_cut)
    cut = err_cut if use_error else fail_cut
    if cut is not None:
        del plan.names[cut:], plan.datas[cut:], plan.kinds[cut:]
        seq.n = cut
        if use_error:
            inner = {
                "type": "server_error",
                "code": "server_error",
                "message": "The server had an error while processing your request.",
                "param": None,
            }
            if faults.str_of("error_shape") == "flat":
                seq.add("error", {k: inner[k] for k in ("code", "message", "param")})
            else:
                seq.add("error", {"error": inner})
            plan.final = response_object(req, rid, created_at, "failed", error=SERVER_ERROR)
        else:
            failed = response_object(
                req, rid, created_at, "failed", usage=usage_of(c), error=SERVER_ERROR
            )
            seq.add("response.failed", {"response": failed})
            plan.final = failed
    elif faults.has("no_done"):
        plan.names.pop(), plan.datas.pop(), plan.kinds.pop()
