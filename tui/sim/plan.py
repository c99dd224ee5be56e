"""What one simulated response will say and when: the request digest, the content decision
and the event plan (pre-rendered event payloads plus the time each one is due)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, Literal, TypeAlias

import msgspec

from tui.sim import text
from tui.sim.faults import FaultSet, Preset, Timing

FinishKind: TypeAlias = Literal["stop", "length", "tool_calls", "content_filter"]

STRUCTURAL = 0
"""An event that leaves together with the token next to it."""
TOKEN = 1
"""One simulated token (one delta)."""
IMMEDIATE = 2
"""Leaves as soon as the request arrives (``response.created`` / ``in_progress``)."""

json_encode = msgspec.json.Encoder().encode


def encode_tokens(tokens: Sequence[str]) -> dict[str, bytes]:
    """The JSON string literal of every distinct token (answers repeat their words a lot)."""
    return {tok: json_encode(tok) for tok in set(tokens)}


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the request offers."""

    name: str
    parameters: Mapping[str, Any] | None


DEFAULT_TOOL = ToolSpec(
    "get_weather",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["city"],
    },
)


@dataclass(frozen=True, slots=True)
class GenRequest:
    """The parts of a request body that decide the generated content."""

    model: str
    prompt: str
    """The text the answer is about (the last user message / input text)."""
    input_tokens: int
    max_output_tokens: int | None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice_none: bool = False
    has_tool_result: bool = False
    reasoning: bool = False
    include_usage: bool = False
    include_obfuscation: bool = True
    stream: bool = False
    background: bool = False
    body: Mapping[str, Any] = field(default_factory=dict)
    turn: int = 1
    """Which turn of the conversation this request asks for (1-based: its user messages)."""
    earlier: str = ""
    """The user message before the latest one (turn 2 and later)."""
    items: tuple[Mapping[str, Any], ...] = ()
    """Responses: this request's own input items (kept with a stored response)."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the simulated model makes."""

    call_id: str
    name: str
    arguments: str
    fragments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Content:
    """What the simulated model answers, already cut into tokens."""

    reasoning: tuple[str, ...]
    text: tuple[str, ...]
    tool: ToolCall | None
    finish: FinishKind
    input_tokens: int

    @property
    def output_tokens(self) -> int:
        """Tokens generated (reasoning included, as in both APIs' usage)."""
        return len(self.reasoning) + len(self.text) + (len(self.tool.fragments) if self.tool else 0)

    @property
    def answer(self) -> str:
        """The full answer text."""
        return "".join(self.text)


def hex_id(rng: random.Random, n: int = 24) -> str:
    """A hex id of ``n`` digits from ``rng``."""
    return f"{rng.getrandbits(4 * n):0{n}x}"


def decide_content(
    req: GenRequest, timing: Timing, preset: Preset, faults: FaultSet, seed: int
) -> Content:
    """Decide the answer for a request: text, reasoning or a tool call, and how it ends."""
    if faults.has("empty_stop"):
        return Content((), (), None, "stop", req.input_tokens)
    n_reason = 0
    if req.reasoning or preset.reasoning:
        n_reason = max(4, min(48, timing.tokens // 4))
    reasoning: list[str] = text.reasoning_tokens(seed, req.prompt, n_reason) if n_reason else []
    tools = req.tools or ((DEFAULT_TOOL,) if preset.tools else ())
    tool: ToolCall | None = None
    answer: list[str] = []
    finish: FinishKind = "stop"
    if tools and not req.tool_choice_none and not req.has_tool_result:
        rng = text.seeded_rng(seed, "call", req.prompt)
        spec = tools[0]
        args = text.tool_arguments(seed, req.prompt, spec.parameters)
        frags = text.argument_fragments(args, rng.getrandbits(32))
        tool = ToolCall("call_" + hex_id(rng, 20), spec.name, args, tuple(frags))
        finish = "tool_calls"
    else:
        answer = text.turn_answer_tokens(seed, req.prompt, timing.tokens, req.turn, req.earlier)
        if faults.has("content_filter"):
            answer = answer[: max(1, len(answer) // 2)]
            finish = "content_filter"
    cap = req.max_output_tokens
    if (
        cap is not None
        and len(reasoning) + len(answer) + (len(tool.fragments) if tool else 0) > cap
    ):
        reasoning = reasoning[:cap]
        room = cap - len(reasoning)
        answer = answer[:room]
        if tool is not None:
            kept = tool.fragments[:room]
            tool = ToolCall(tool.call_id, tool.name, "".join(kept), kept)
        finish = "length"
    return Content(tuple(reasoning), tuple(answer), tool, finish, req.input_tokens)


@dataclass(slots=True)
class EventPlan:
    """The events of one streamed response, in wire order.

    ``names`` are SSE event names (None for chat), ``datas`` the ``data:`` payloads, ``kinds``
    say how each event is scheduled (``STRUCTURAL``, ``TOKEN``, ``IMMEDIATE``).
    """

    names: list[bytes | None]
    datas: list[bytes]
    kinds: list[int]
    final: dict[str, Any]
    """The non-streaming body (chat completion / Response object in its final state)."""

    def add(self, name: bytes | None, data: bytes, kind: int = STRUCTURAL) -> None:
        """Append one event."""
        self.names.append(name)
        self.datas.append(data)
        self.kinds.append(kind)

    def __len__(self) -> int:
        return len(self.datas)


def schedule(kinds: Sequence[int], timing: Timing, rng: random.Random) -> list[float]:
    """Due time (seconds after the request) of every event.

    Token k is due at ``ttft + sum of k gaps``; each gap is ``1/tps`` scaled by a uniform
    factor in ``[1 - jitter, 1 + jitter]``. ``IMMEDIATE`` events are due at 0, structural
    events ride with the previous token (or the first one when no token came yet).
    """
    n_tokens = kinds.count(TOKEN)
    times: list[float]
    if timing.tps > 0:
        gap = 1.0 / timing.tps
        jit = timing.jitter
        rand = rng.random
        times = [timing.ttft] * n_tokens
        t = timing.ttft
        for k in range(1, n_tokens):
            t += gap * (1.0 + jit * (2.0 * rand() - 1.0)) if jit else gap
            times[k] = t
    else:
        times = [timing.ttft] * n_tokens
    first = times[0] if times else timing.ttft
    # Walk runs of equal kinds (a handful per response), not single events.
    dues: list[float] = []
    k = 0
    for kind, run in groupby(kinds):
        size = len(list(run))
        if kind == TOKEN:
            dues += times[k : k + size]
            k += size
        elif kind == IMMEDIATE and k == 0:
            dues += [0.0] * size
        else:
            dues += [times[k - 1] if k else first] * size
    return dues
