"""The Responses API on the wire: the streaming request body, the strict event types the fast
path decodes into, and the mapping of ``incomplete_details.reason``.

The Structs mirror only the fields :class:`tui.stream.responses.ResponsesAdapter` reads;
every field is optional, so an event decodes unless a field it has is of another type (then
the adapter reads it again leniently, :mod:`tui.stream.responses_lenient`).
:func:`decode_event` is the one strict decoder; it raises what
``msgspec.json.Decoder.decode`` raises.
"""

from __future__ import annotations

from typing import Any

import msgspec

from tui.config import SessionConfig
from tui.stream.adapter import ErrorBody
from tui.stream.events import FinishReason
from tui.stream.history import Conversation, responses_input

__all__ = [
    "Event",
    "Incomplete",
    "InputDetails",
    "Item",
    "OutputDetails",
    "Part",
    "ResponseBody",
    "UsageBody",
    "build_responses_body",
    "decode_event",
    "normalize_incomplete",
]


def build_responses_body(
    session: SessionConfig, prompt: str | None = None, history: Conversation | None = None
) -> dict[str, Any]:
    """The streaming request body for ``session`` (``prompt`` overrides the session's), sent
    after the turns of ``history`` (:mod:`tui.stream.history`: ``previous_response_id`` or
    the turns as input items)."""
    text = session.prompt if prompt is None else prompt
    items, previous = responses_input(history, text)
    body: dict[str, Any] = {"model": session.model, "input": items, "stream": True}
    if previous is not None:
        body["previous_response_id"] = previous
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
    """Normalized reason of ``incomplete_details.reason`` (a filter or safety cut of any
    spelling: content_filter; anything else: length)."""
    known = _INCOMPLETE.get(raw or "")
    if known is not None:
        return known
    word = (raw or "").lower()
    if any(stem in word for stem in ("filter", "safety", "block", "moderat", "recitation")):
        return "content_filter"
    return "length"


class Part(msgspec.Struct):
    """A content part (``output_text``, ``refusal``, ``reasoning_text``, summary text)."""

    type: str | None = None
    text: str | None = None
    refusal: str | None = None


class Item(msgspec.Struct):
    """An output item: a message, a function call or reasoning."""

    type: str | None = None
    id: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    content: list[Part] | None = None
    summary: list[Part] | None = None


class Incomplete(msgspec.Struct):
    """``response.incomplete_details``."""

    reason: str | None = None


class InputDetails(msgspec.Struct):
    """``usage.input_tokens_details``."""

    cached_tokens: int | None = None


class OutputDetails(msgspec.Struct):
    """``usage.output_tokens_details``."""

    reasoning_tokens: int | None = None


class UsageBody(msgspec.Struct):
    """The ``response``'s ``usage`` object."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    input_tokens_details: InputDetails | None = None
    output_tokens_details: OutputDetails | None = None


class ResponseBody(msgspec.Struct):
    """The ``response`` object of the lifecycle events (created ... completed)."""

    id: str | None = None
    model: str | None = None
    status: str | None = None
    background: bool | None = None
    output: list[Item] | None = None
    usage: UsageBody | None = None
    error: ErrorBody | None = None
    incomplete_details: Incomplete | None = None
    previous_response_id: str | msgspec.UnsetType | None = msgspec.UNSET
    """UNSET: the object has no such field (a server that does not know it)."""


class Event(msgspec.Struct):
    """One streamed event: every field any event type the adapter reads carries."""

    type: str = ""
    sequence_number: int | None = None
    delta: str | None = None
    output_index: int | None = None
    item: Item | None = None
    response: ResponseBody | None = None
    error: ErrorBody | None = None
    # the documented flat ``error`` event shape
    message: str | None = None
    code: str | int | None = None
    # the final objects: ``*.done`` events
    text: str | None = None
    part: Part | None = None
    refusal: str | None = None
    arguments: str | None = None
    name: str | None = None


decode_event = msgspec.json.Decoder(Event).decode
"""Decode one event's JSON strictly into :class:`Event`."""
