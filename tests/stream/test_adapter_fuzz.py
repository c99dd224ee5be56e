"""Property-based fuzz of both adapters (issue 15, part B, kind 4): random but plausible
chunk / event sequences, built from strategies of JSON values with odd types injected into
the known fields (counts as floats, digit strings, negatives, huge numbers; indexes as null,
``"0"``, ``0.0``; content as parts; ``choices`` as one object; unknown fields of any JSON),
split at random points across reads. No exception may escape, every stream ends properly
(an outcome, a RawEvent per event, exactly one ``Finished`` through the runner), and the
folded text, tool call and usage equal a small reference fold of the generated values.

Bounded for CI (a few seconds); ``HYPOTHESIS_PROFILE=long`` (or ``TOKENTOP_FUZZ=long``)
runs many more examples. The profiles are applied to these tests only (no global profile is
loaded) and never write an example database into the tree.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.stream.helpers import check_well_formed, feed, fold, make_session
from tui.stream.accumulate import RunAccumulator
from tui.stream.chat import ChatAdapter
from tui.stream.events import Finished, RawEvent, RunEvent, Usage
from tui.stream.responses import ResponsesAdapter
from tui.stream.runner import StreamRun

settings.register_profile(
    "adapters-ci",
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run: never flaky
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "adapters-long",
    max_examples=5_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LONG = "long" in (os.environ.get("HYPOTHESIS_PROFILE"), os.environ.get("TOKENTOP_FUZZ"))
PROFILE = settings.get_profile("adapters-long" if LONG else "adapters-ci")
RUNNER = settings(PROFILE, max_examples=max(10, PROFILE.max_examples // 4))
pytestmark = pytest.mark.timeout(0 if LONG else 60)  # a long run takes minutes

INT64_MAX = 2**63 - 1

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
pieces = st.text(st.characters(codec="utf-8"), max_size=8)
counts = st.one_of(
    st.none(),
    st.integers(0, 10**9),
    st.integers(-(10**6), -1),
    st.integers(2**63, 2**80),
    st.integers(0, 10**6).map(float),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(0, 10**6).map(str),
    st.booleans(),
)
indexes = st.sampled_from([0, 0.0, "0", None, "missing"])


def ref_count(value: Any) -> int | None:
    """The reference reading of a token count: a whole number in 0 .. INT64_MAX."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        value = int(value) if value.isdigit() else None
    if isinstance(value, float):
        value = int(value) if math.isfinite(value) and value.is_integer() else None
    return value if value is not None and 0 <= value <= INT64_MAX else None


def content_of(text: str, shape: str) -> Any:
    """``text`` in one of the shapes servers send content in."""
    if shape == "parts":
        cut = len(text) // 2
        return [{"type": "text", "text": text[:cut]}, {"type": "text", "text": text[cut:]}]
    if shape == "part":
        return {"type": "text", "text": text}
    return text


def with_index(obj: dict[str, Any], index: Any) -> dict[str, Any]:
    """``obj`` with ``index`` as given (``"missing"``: without one)."""
    return obj if index == "missing" else {"index": index, **obj}


def frame(datas: list[str], names: list[str | None] | None = None) -> bytes:
    """SSE framing of JSON texts."""
    names = names or [None] * len(datas)
    return "".join(
        (f"event: {n}\n" if n else "") + f"data: {d}\n\n" for n, d in zip(names, datas, strict=True)
    ).encode()


def cut(stream: bytes, points: list[int]) -> list[bytes]:
    """``stream`` cut at ``points`` (positions, in any order)."""
    marks = sorted({p % (len(stream) + 1) for p in points})
    return [stream[a:b] for a, b in zip([0, *marks], [*marks, len(stream)], strict=True)]


# -- chat ----------------------------------------------------------------------------------

_CHAT_FINISH = {
    "stop": ("completed", "stop"),
    "length": ("incomplete", "length"),
    "MAX_TOKENS": ("incomplete", "length"),
    "content_filter": ("incomplete", "content_filter"),
    "tool_calls": ("completed", "tool_calls"),
    "end_turn": ("completed", "stop"),
}


@dataclass
class ChatCase:
    """A generated chat stream and what the reference fold expects of it."""

    stream: bytes
    text: str
    arguments: str | None
    finish: str
    usage: tuple[int | None, int | None] | None
    events: int


@st.composite
def chat_cases(draw: st.DrawFn) -> ChatCase:
    """A plausible chat stream with odd types in its known fields."""
    datas: list[str] = []
    text: list[str] = []
    args: list[str] = []
    for i in range(draw(st.integers(0, 6))):
        piece = draw(pieces)
        text.append(piece)
        delta: Any = {"content": content_of(piece, draw(st.sampled_from(["str", "parts", "part"])))}
        if draw(st.booleans()):
            delta["role"] = draw(json_values)
        if draw(st.integers(0, 3)) == 0:
            frag = draw(st.text("{}:,ab1", max_size=5))
            args.append(frag)
            call: dict[str, Any] = {"function": {"arguments": frag}}
            if i == 0 or not args[:-1]:
                call = {"id": "call_1", "function": {"name": "f", "arguments": frag}}
            delta["tool_calls"] = [with_index(call, draw(indexes))]
        if draw(st.integers(0, 4)) == 0 and piece and list(delta) == ["content"]:
            delta = piece  # a delta that is a bare string
        choice = with_index({"delta": delta}, draw(indexes))
        choice["finish_reason"] = draw(st.sampled_from([None, "", False, [], {}]))
        if draw(st.booleans()):
            choice["logprobs"] = draw(json_values)
        chunk: dict[str, Any] = {"choices": [choice]}
        if draw(st.integers(0, 5)) == 0:
            chunk["choices"] = choice  # one object, not a list
        chunk["id"] = draw(st.one_of(st.just("chatcmpl-1"), st.integers(0, 99), json_values))
        chunk["model"] = draw(st.one_of(st.just("m"), json_values))
        chunk["error"] = draw(st.sampled_from([None, False, ""]))
        if draw(st.booleans()):
            chunk[draw(st.sampled_from(["timings", "obfuscation", "x_extra"]))] = draw(json_values)
        datas.append(json.dumps(chunk))
    finish = draw(st.sampled_from(sorted(_CHAT_FINISH)))
    closing: dict[str, Any] = {"index": 0, "delta": {}, "finish_reason": finish}
    if draw(st.booleans()):
        last = draw(pieces)
        text.append(last)
        closing["delta"] = {"content": last}  # the finish rides on a content chunk
    datas.append(json.dumps({"choices": [closing]}))
    usage: tuple[int | None, int | None] | None = None
    if draw(st.booleans()):
        prompt, completion = draw(counts), draw(counts)
        usage = (ref_count(prompt), ref_count(completion))
        body = {"prompt_tokens": prompt, "completion_tokens": completion}
        shell: Any = draw(st.sampled_from([[], {}, None, [{"index": 0, "delta": {}}]]))
        datas.append(json.dumps({"choices": shell, "usage": body}))
    datas.append("[DONE]")
    return ChatCase(
        frame(datas), "".join(text), "".join(args) if args else None, finish, usage, len(datas)
    )


def check_chat(case: ChatCase, events: list[RunEvent]) -> None:
    """The folded run against the reference."""
    acc = fold(events)
    assert acc.output_text == case.text
    if case.arguments is None:
        assert acc.tool_calls == []
    else:
        assert [c.arguments for c in acc.tool_calls] == [case.arguments]
    reported = [u for u in events if isinstance(u, Usage)]
    if case.usage is not None:
        assert (reported[-1].input_tokens, reported[-1].output_tokens) == case.usage
    for u in reported:
        for n in (u.input_tokens, u.output_tokens, u.total_tokens):
            assert n is None or (type(n) is int and 0 <= n <= INT64_MAX)


@PROFILE
@given(chat_cases(), st.lists(st.integers(0, 10_000), max_size=3))
def test_chat_adapter_fuzz(case: ChatCase, points: list[int]) -> None:
    adapter = ChatAdapter()
    events, outcome, before_eof = feed(adapter, cut(case.stream, points))
    assert before_eof and outcome is not None
    assert (outcome.status, outcome.reason) == _CHAT_FINISH[case.finish]
    assert outcome.raw_reason == case.finish and outcome.error is None
    assert sum(isinstance(e, RawEvent) for e in events) == case.events
    check_chat(case, events)


# -- responses -----------------------------------------------------------------------------


@dataclass
class ResponsesCase:
    """A generated Responses stream and what the reference fold expects of it."""

    stream: bytes
    text: str
    status: str
    usage: tuple[int | None, int | None] | None
    events: int


_TERMINALS = [
    ("response.completed", "completed", "completed"),
    ("response.completed", "incomplete", "incomplete"),
    ("response.completed", "failed", "failed"),
    ("response.incomplete", "incomplete", "incomplete"),
    ("response.failed", "failed", "failed"),
]


@st.composite
def responses_cases(draw: st.DrawFn) -> ResponsesCase:
    """A plausible Responses stream: odd types in known fields, deltas perhaps lost (then
    the final objects carry the text), numbering good, missing or broken."""
    numbering = draw(st.sampled_from(["good", "floats", "none", "zero", "backwards"]))
    evs: list[dict[str, Any]] = [
        {
            "type": "response.created",
            "response": draw(
                st.one_of(
                    st.just({"id": "resp_1", "status": "in_progress"}),
                    st.fixed_dictionaries({"id": json_values, "model": json_values}),
                    json_values,
                )
            ),
        }
    ]
    full: list[str] = []
    kept: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        piece = draw(pieces)
        full.append(piece)
        if draw(st.integers(0, 5)) == 0:
            continue  # a delta lost on the way
        kept.append(piece)
        ev: dict[str, Any] = {
            "type": "response.output_text.delta",
            "item_id": draw(st.one_of(st.just("msg_1"), json_values)),
            "content_index": draw(st.one_of(st.just(0), json_values)),
            "delta": content_of(piece, draw(st.sampled_from(["str", "str", "parts", "part"]))),
        }
        index = draw(indexes)
        if index != "missing":
            ev["output_index"] = index
        if draw(st.booleans()):
            ev["logprobs"] = draw(json_values)
        evs.append(ev)
    text = "".join(full)
    finals = draw(st.sets(st.sampled_from(["text", "part", "item", "output"])))
    lost = kept != full
    ref = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    item = {"type": "message", "content": [{"type": "output_text", "text": text}]}
    if "text" in finals:
        evs.append({"type": "response.output_text.done", **ref, "text": text})
    if "part" in finals:
        evs.append({"type": "response.content_part.done", **ref, "part": item["content"][0]})
    if "item" in finals:
        evs.append({"type": "response.output_item.done", "output_index": 0, "item": item})
    kind, status, expected = draw(st.sampled_from(_TERMINALS))
    resp: dict[str, Any] = {"id": "resp_1", "status": status}
    if "output" in finals:
        resp["output"] = [item]
    if status == "failed":
        resp["error"] = draw(
            st.one_of(st.just({"code": "x", "message": "m"}), st.text(max_size=5), json_values)
        )
    usage: tuple[int | None, int | None] | None = None
    if draw(st.booleans()):
        i, o = draw(counts), draw(counts)
        usage = (ref_count(i), ref_count(o))
        resp["usage"] = {"input_tokens": i, "output_tokens": o}
    evs.append({"type": kind, "response": resp})
    for n, ev in enumerate(evs):
        if numbering == "good":
            ev["sequence_number"] = n
        elif numbering == "floats":
            ev["sequence_number"] = float(n)
        elif numbering == "zero":
            ev["sequence_number"] = 0
        elif numbering == "backwards":
            ev["sequence_number"] = len(evs) - n
    names = [ev["type"] if draw(st.booleans()) else None for ev in evs]
    answer = text if finals or not lost else "".join(kept)  # the final objects win
    return ResponsesCase(
        frame([json.dumps(ev) for ev in evs], names), answer, expected, usage, len(evs)
    )


@PROFILE
@given(responses_cases(), st.lists(st.integers(0, 10_000), max_size=3))
def test_responses_adapter_fuzz(case: ResponsesCase, points: list[int]) -> None:
    adapter = ResponsesAdapter()
    events, outcome, before_eof = feed(adapter, cut(case.stream, points))
    assert before_eof and outcome is not None and outcome.status == case.status
    assert (outcome.error is not None) == (case.status == "failed")
    assert sum(isinstance(e, RawEvent) for e in events) == case.events
    assert fold(events, "responses").output_text == case.text
    reported = [u for u in events if isinstance(u, Usage)]
    if case.usage is not None:
        assert (reported[-1].input_tokens, reported[-1].output_tokens) == case.usage
    assert adapter.last_seq is None or 0 <= adapter.last_seq <= INT64_MAX


# -- through the runner --------------------------------------------------------------------


def run_over(stream: bytes, api: str) -> tuple[list[RunEvent], RunAccumulator]:
    """Run one session whose server answers with ``stream`` (in memory, no socket)."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=stream)

    async def main() -> tuple[list[RunEvent], RunAccumulator]:
        session = make_session(api, timing=None, max_retries=0)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            run = StreamRun(session, client=client, base_url="http://fuzz.invalid/v1")
            acc = RunAccumulator("run", "s", session.api, session.model, session.prompt)
            events: list[RunEvent] = []
            async for event in run:
                events.append(event)
                acc.apply(event)
        return events, acc

    return asyncio.run(main())


@RUNNER
@given(chat_cases())
def test_chat_runs_end_properly(case: ChatCase) -> None:
    events, acc = run_over(case.stream, "chat")
    check_well_formed(events)
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert (finished.status, finished.reason) == _CHAT_FINISH[case.finish]
    assert acc.output_text == case.text


@RUNNER
@given(responses_cases())
def test_responses_runs_end_properly(case: ResponsesCase) -> None:
    events, acc = run_over(case.stream, "responses")
    check_well_formed(events)
    assert acc.status == case.status and acc.output_text == case.text
    assert acc.error is None or "internal error" not in acc.error.message
