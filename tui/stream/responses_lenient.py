"""Reading a Responses event that the strict types do not fit, field by field.

:func:`read_event` takes the event as leniently decoded JSON (:func:`tui.stream.adapter.
decode_loose`) and builds the same :class:`tui.stream.responses_types.Event` the fast path
would have, from whatever is usable: numbers as floats or strings, a content part sent as a
string, ``content`` or ``summary`` as a string, ``incomplete_details`` as its reason, error
objects of any shape. A ``sequence_number`` that is present but unusable reads as ``-1``,
so the adapter stops trusting the numbering. What was odd is noted on the
:class:`tui.stream.adapter.Lenient` reader (never raised); the adapter turns it into notices.
"""

from __future__ import annotations

from typing import Any

from tui.stream.adapter import INT64_MAX, Lenient
from tui.stream.responses_types import (
    Event,
    Incomplete,
    InputDetails,
    Item,
    OutputDetails,
    Part,
    ResponseBody,
    UsageBody,
)

__all__ = ["USAGE_FIELDS", "read_event"]

USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "output_tokens_details.reasoning_tokens",
    "input_tokens_details.cached_tokens",
    "total_tokens",
)
"""The usage counts in the order of ``Usage``'s fields, as named under ``response.usage.``."""


def read_event(value: dict[str, Any], kind: str, reader: Lenient) -> Event:
    """An event from leniently decoded JSON: every field the adapter reads, in its type."""
    seq: int | None = None
    if value.get("sequence_number") is not None:
        seq = reader.whole(value["sequence_number"], "sequence_number", INT64_MAX, "a number")
        if seq is None:
            seq = -1  # present but unusable: the numbering cannot be trusted
    item = reader.obj(value.get("item"), "item")
    resp = reader.obj(value.get("response"), "response")
    part = value.get("part")
    err = value.get("error")
    return Event(
        type=kind,
        sequence_number=seq,
        delta=reader.text(value.get("delta"), "delta"),
        output_index=reader.index(value.get("output_index"), "output_index"),
        item=_read_item(item, reader, "item") if item is not None else None,
        response=_read_response(resp, reader) if resp is not None else None,
        error=reader.error(err) if err else None,
        message=reader.text(value.get("message"), "message"),
        code=_code(value.get("code")),
        text=reader.text(value.get("text"), "text"),
        part=_read_part(part, reader, "part") if part is not None else None,
        refusal=reader.text(value.get("refusal"), "refusal"),
        arguments=reader.arguments(value.get("arguments"), "arguments"),
        name=reader.ident(value.get("name"), "name"),
    )


def _code(value: Any) -> str | int | None:
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _read_part(value: Any, reader: Lenient, field: str) -> Part | None:
    if isinstance(value, str):
        reader.odd(field, "a string where a content part belongs: read as its text")
        return Part("output_text", value)
    part = reader.obj(value, field)
    if part is None:
        return None
    return Part(
        reader.ident(part.get("type"), f"{field}.type"),
        reader.text(part.get("text"), f"{field}.text"),
        reader.text(part.get("refusal"), f"{field}.refusal"),
    )


def _read_parts(value: Any, reader: Lenient, field: str) -> list[Part]:
    if isinstance(value, str):
        return [Part("output_text", value)]
    parts = (_read_part(p, reader, f"{field}[]") for p in reader.items(value, field))
    return [p for p in parts if p is not None]


def _read_item(item: dict[str, Any], reader: Lenient, field: str) -> Item:
    return Item(
        type=reader.ident(item.get("type"), f"{field}.type"),
        id=reader.ident(item.get("id"), f"{field}.id"),
        call_id=reader.ident(item.get("call_id"), f"{field}.call_id"),
        name=reader.ident(item.get("name"), f"{field}.name"),
        arguments=reader.arguments(item.get("arguments"), f"{field}.arguments"),
        content=_read_parts(item.get("content"), reader, f"{field}.content"),
        summary=_read_parts(item.get("summary"), reader, f"{field}.summary"),
    )


def _read_response(resp: dict[str, Any], reader: Lenient) -> ResponseBody:
    output: list[Item] = []
    for raw in reader.items(resp.get("output"), "response.output"):
        item = reader.obj(raw, "response.output[]")
        if item is not None:
            output.append(_read_item(item, reader, "response.output[]"))
    usage = reader.obj(resp.get("usage"), "response.usage")
    details = resp.get("incomplete_details")
    reason: str | None = None
    if isinstance(details, dict):
        reason = reader.ident(details.get("reason"), "response.incomplete_details.reason")
    elif isinstance(details, str):
        reader.odd("response.incomplete_details", "a string: read as the reason")
        reason = details
    err = resp.get("error")
    return ResponseBody(
        id=reader.ident(resp.get("id"), "response.id"),
        model=reader.ident(resp.get("model"), "response.model"),
        status=reader.ident(resp.get("status"), "response.status"),
        background=resp.get("background") is True,
        output=output,
        usage=_read_usage(usage, reader) if usage is not None else None,
        error=reader.error(err) if err else None,
        incomplete_details=Incomplete(reason) if details is not None else None,
    )


def _read_usage(usage: dict[str, Any], reader: Lenient) -> UsageBody:
    ind = reader.obj(usage.get("input_tokens_details"), "response.usage.input_tokens_details")
    outd = reader.obj(usage.get("output_tokens_details"), "response.usage.output_tokens_details")
    return UsageBody(
        reader.count(usage.get("input_tokens"), "response.usage.input_tokens"),
        reader.count(usage.get("output_tokens"), "response.usage.output_tokens"),
        reader.count(usage.get("total_tokens"), "response.usage.total_tokens"),
        InputDetails(
            reader.count(
                ind.get("cached_tokens"), "response.usage.input_tokens_details.cached_tokens"
            )
        )
        if ind is not None
        else None,
        OutputDetails(
            reader.count(
                outd.get("reasoning_tokens"),
                "response.usage.output_tokens_details.reasoning_tokens",
            )
        )
        if outd is not None
        else None,
    )
