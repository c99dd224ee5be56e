"""Responses API (``POST /v1/responses``, ``stream: true``): the request body and the event ->
normalized events adapter.

The stream ends at its terminal event (``response.completed`` / ``.incomplete`` /
``.failed`` / ``.cancelled`` or ``error``); there is no ``[DONE]``. The ``error`` event is
read in both shapes (flat as documented, nested as sent). ``sequence_number`` is tracked so
that a resumed background stream drops the events it already delivered. Unknown event types
only become ``RawEvent``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from tui.config import SessionConfig
from tui.stream.adapter import ErrorBody, Outcome, error_outcome, protocol_outcome
from tui.stream.construct import raw_event, reasoning_delta, text_delta
from tui.stream.events import (
    FinishReason,
    RawEvent,
    ResponseInfo,
    RunEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from tui.stream.sse import SSEEvent

__all__ = ["ResponsesAdapter", "build_responses_body", "normalize_incomplete"]


def build_responses_body(session: SessionConfig, prompt: str | None = None) -> dict[str, Any]:
    """The streaming request body for ``session`` (``prompt`` overrides the session's)."""
    body: dict[str, Any] = {
        "model": session.model,
        "input": session.prompt if prompt is None else prompt,
        "stream": True,
    }
    if session.system:
        body["instructions"] = session.system
    if session.max_output_tokens is not None:
        body["max_output_tokens"] = session.max_output_tokens
    if session.temperature is not None:
        body["temperature"] = session.temperature
    if session.background:
        body["background"] = True
    body.update(session.params)
    return body


_INCOMPLETE: dict[str, FinishReason] = {
    "max_output_tokens": "length",
    "max_tokens": "length",
    "content_filter": "content_filter",
}


def normalize_incomplete(raw: str | None) -> FinishReason:
    """Normalized reason of ``incomplete_details.reason`` (unknown ones: length)."""
    return _INCOMPLETE.get(raw or "", "length")


class _Item(msgspec.Struct):
    type: str | None = None
    id: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None


class _Incomplete(msgspec.Struct):
    reason: str | None = None


class _InputDetails(msgspec.Struct):
    cached_tokens: int | None = None


class _OutputDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    input_tokens_details: _InputDetails | None = None
    output_tokens_details: _OutputDetails | None = None


class _Response(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    status: str | None = None
    background: bool | None = None
    output: list[_Item] | None = None
    usage: _Usage | None = None
    error: ErrorBody | None = None
    incomplete_details: _Incomplete | None = None


class _Event(msgspec.Struct):
    type: str = ""
    sequence_number: int | None = None
    delta: str | None = None
    output_index: int | None = None
    item: _Item | None = None
    response: _Response | None = None
    error: ErrorBody | None = None
    # the documented flat ``error`` event shape
    message: str | None = None
    code: str | int | None = None


_decode_event = msgspec.json.Decoder(_Event).decode

_TEXT = "response.output_text.delta"
_REASONING = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})


class ResponsesAdapter:
    """Responses events -> normalized events (one adapter per run; see :class:`Adapter`)."""

    __slots__ = (
        "_attempt",
        "_dispatch",
        "background",
        "content_seen",
        "count",
        "last_seq",
        "outcome",
        "response_id",
        "tool_calls_seen",
    )

    def __init__(self) -> None:
        self._attempt = 1
        self.count = 0
        """Events handled in the current attempt (1-based numbers in messages)."""
        self.outcome: Outcome | None = None
        self.content_seen = False
        self.tool_calls_seen = False
        self.last_seq: int | None = None
        """The last ``sequence_number`` received (the resume cursor)."""
        self.response_id: str | None = None
        self.background = False
        """The server confirmed (or the request asked for) a background response."""
        self._dispatch: dict[str, Callable[[_Event, float, list[RunEvent]], None]] = {
            "response.created": self._created,
            "response.queued": self._created,
            "response.in_progress": self._created,
            "response.output_item.added": self._item_added,
            "response.function_call_arguments.delta": self._arguments,
            "response.refusal.delta": self._refusal,
            "response.completed": self._completed,
            "response.incomplete": self._incomplete,
            "response.failed": self._failed,
            "response.cancelled": self._cancelled,
            "error": self._error,
        }

    def begin_attempt(self, attempt: int, *, restart: bool) -> None:
        """A new attempt; ``restart`` forgets the response (a resume keeps the cursor)."""
        self._attempt = attempt
        self.count = 0
        self.outcome = None
        if restart:
            self.content_seen = self.tool_calls_seen = False
            self.last_seq = None
            self.response_id = None

    def handle(self, event: SSEEvent, t: float, out: list[RunEvent]) -> None:
        """Decode one event into ``out`` (RawEvent first, for every event received); a
        duplicate (sequence number not above the cursor) yields nothing else."""
        data = event.data
        self.count += 1
        out.append(self._raw(event, t))
        if data[:6] == b"[DONE]":
            return  # a gateway's chat habit: not an end (only a terminal event is)
        try:
            ev = _decode_event(data)
        except msgspec.ValidationError:
            return  # JSON, but not an event shape we read: pass through
        except msgspec.DecodeError as exc:
            self.outcome = protocol_outcome(
                f"malformed JSON in event {self.count} of attempt {self._attempt}: {exc}"
            )
            return
        seq = ev.sequence_number
        if seq is not None:
            last = self.last_seq
            if last is not None and seq <= last:
                return
            self.last_seq = seq
        kind = ev.type or event.event or ""
        if kind == _TEXT:
            if ev.delta:
                self.content_seen = True
                out.append(text_delta(t, ev.delta))
        elif kind in _REASONING:
            if ev.delta:
                out.append(reasoning_delta(t, ev.delta))
        else:
            handler = self._dispatch.get(kind)
            if handler is not None:
                handler(ev, t, out)

    def _raw(self, event: SSEEvent, t: float) -> RawEvent:
        return raw_event(
            t, self._attempt, event.event, event.data.decode("utf-8", "replace"), event.id
        )

    def _created(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        resp = ev.response
        if resp is None:
            return
        if resp.background:
            self.background = True
        if resp.id is not None and resp.id != self.response_id:
            self.response_id = resp.id
            out.append(ResponseInfo(t, resp.id, resp.model))

    def _item_added(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        item = ev.item
        if item is not None and item.type == "function_call":
            self.content_seen = self.tool_calls_seen = True
            out.append(
                ToolCallDelta(
                    t, ev.output_index or 0, item.arguments or "", item.name, item.call_id
                )
            )

    def _arguments(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        if ev.delta:
            self.content_seen = self.tool_calls_seen = True
            out.append(ToolCallDelta(t, ev.output_index or 0, ev.delta))

    def _refusal(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        if ev.delta:
            self.content_seen = True
            out.append(TextDelta(t, ev.delta))

    def _usage(self, resp: _Response, t: float, out: list[RunEvent]) -> None:
        u = resp.usage
        if u is None:
            return
        ind, outd = u.input_tokens_details, u.output_tokens_details
        out.append(
            Usage(
                t,
                u.input_tokens,
                u.output_tokens,
                outd.reasoning_tokens if outd is not None else None,
                ind.cached_tokens if ind is not None else None,
                u.total_tokens,
            )
        )

    def _completed(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        resp = ev.response
        tools = self.tool_calls_seen
        if resp is not None:
            self._usage(resp, t, out)
            tools = tools or any(i.type == "function_call" for i in resp.output or ())
        self.outcome = Outcome("completed", "tool_calls" if tools else "stop", "completed")

    def _incomplete(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        resp = ev.response
        raw: str | None = None
        if resp is not None:
            self._usage(resp, t, out)
            if resp.incomplete_details is not None:
                raw = resp.incomplete_details.reason
        self.outcome = Outcome("incomplete", normalize_incomplete(raw), raw or "incomplete")

    def _failed(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        resp = ev.response
        err = resp.error if resp is not None else None
        if resp is not None:
            self._usage(resp, t, out)
        if err is not None:
            outcome = error_outcome(err.message, err.code, err.type, where="(response.failed)")
        else:
            outcome = error_outcome(None, None, None, where="(response.failed)")
        self.outcome = Outcome("failed", "error", "failed", outcome.error)

    def _cancelled(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        self.outcome = Outcome("cancelled", "cancelled", "cancelled")

    def _error(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        err = ev.error
        if err is not None:  # nested, as OpenAI sends it
            self.outcome = error_outcome(err.message, err.code, err.type, where="(error event)")
        else:  # flat, as documented
            self.outcome = error_outcome(ev.message, ev.code, None, where="(error event)")

    def eof_outcome(self, pending: bytes | None) -> Outcome | None:
        """Responses has no ``[DONE]``: a clean EOF before a terminal event is truncation."""
        return None
