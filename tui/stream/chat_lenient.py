"""Reading a Chat Completions chunk that the strict types do not fit, field by field.

:func:`read_chunk` takes the chunk as leniently decoded JSON (:func:`tui.stream.adapter.
decode_loose`) and builds the same :class:`tui.stream.chat_types.Chunk` the fast path would
have, from whatever is usable: a count sent as ``123.0``, ``index: null``, arguments as an
object, ``choices`` as one object, ``content`` as a list of parts, a whole ``message`` or a
completions ``text`` in place of the delta, name and arguments beside a call's id. What was
odd is noted on the :class:`tui.stream.adapter.Lenient` reader (never raised); the adapter
turns it into notices.
"""

from __future__ import annotations

from typing import Any

from tui.stream.adapter import Lenient
from tui.stream.chat_types import (
    Choice,
    Chunk,
    CompletionDetails,
    Delta,
    Function,
    PromptDetails,
    ToolCall,
    UsageBody,
)

__all__ = ["USAGE_FIELDS", "read_chunk"]

USAGE_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "completion_tokens_details.reasoning_tokens",
    "prompt_tokens_details.cached_tokens",
    "total_tokens",
)
"""The usage counts in the order of ``Usage``'s fields, as named under ``usage.``."""


def read_chunk(value: dict[str, Any], reader: Lenient) -> Chunk:
    """A chunk from leniently decoded JSON: every field the adapter reads, in its type."""
    err = value.get("error")
    if err or value.get("object") == "error":
        body = reader.error(err) if err else reader.error(value)
        return Chunk(object="error", error=body)
    choices: list[Choice] = []
    for i, raw in enumerate(reader.items(value.get("choices"), "choices")):
        choice = reader.obj(raw, "choices[]")
        if choice is not None:
            choices.append(_read_choice(choice, reader, i))
    usage = reader.obj(value.get("usage"), "usage")
    return Chunk(
        id=reader.ident(value.get("id"), "id"),
        object=reader.ident(value.get("object"), "object"),
        model=reader.ident(value.get("model"), "model"),
        choices=choices,
        usage=_read_usage(usage, reader) if usage is not None else None,
    )


def _read_choice(choice: dict[str, Any], reader: Lenient, position: int) -> Choice:
    if "index" in choice:
        index = reader.index(choice["index"], "choices[].index")
        if index is None:  # null, or unusable: the choice's place in the list
            index = position
            reader.odd("choices[].index", f"null or unusable: read as {index}, its place")
    else:
        index = 0
    raw_delta = choice.get("delta")
    if raw_delta is None and isinstance(choice.get("message"), dict):
        raw_delta = choice["message"]  # a server that streams whole messages
    elif raw_delta is None and "text" in choice:
        raw_delta = {"content": choice["text"]}  # the completions shape
    if isinstance(raw_delta, str | list):
        reader.odd(
            "choices[].delta", f"{_what(raw_delta)} where an object belongs: read as content"
        )
        raw_delta = {"content": raw_delta}
    delta = reader.obj(raw_delta, "choices[].delta")
    finish = choice.get("finish_reason")
    if finish is not None and not isinstance(finish, str):
        finish = reader.ident(finish, "choices[].finish_reason")
    return Choice(
        index,
        _read_delta(delta, reader) if delta is not None else None,
        finish or None,
    )


def _what(value: object) -> str:
    return "a string" if isinstance(value, str) else "a list"


def _read_delta(delta: dict[str, Any], reader: Lenient) -> Delta:
    calls: list[ToolCall] = []
    for raw in reader.items(delta.get("tool_calls"), "tool_calls"):
        call = reader.obj(raw, "tool_calls[]")
        if call is not None:
            calls.append(_read_call(call, reader, "tool_calls[]"))
    fn = reader.obj(delta.get("function_call"), "function_call")
    return Delta(
        content=reader.text(delta.get("content"), "delta.content"),
        reasoning_content=reader.text(delta.get("reasoning_content"), "delta.reasoning_content"),
        reasoning=reader.text(delta.get("reasoning"), "delta.reasoning"),
        refusal=reader.text(delta.get("refusal"), "delta.refusal"),
        tool_calls=calls or None,
        function_call=_read_function(fn, reader, "function_call") if fn is not None else None,
    )


def _read_call(call: dict[str, Any], reader: Lenient, field: str) -> ToolCall:
    index = reader.index(call.get("index"), f"{field}.index")
    fn = reader.obj(call.get("function"), f"{field}.function")
    if fn is None and ("name" in call or "arguments" in call):
        fn = call  # name and arguments beside the id, not under "function"
    return ToolCall(
        index,
        reader.ident(call.get("id"), f"{field}.id"),
        _read_function(fn, reader, f"{field}.function") if fn is not None else None,
    )


def _read_function(fn: dict[str, Any], reader: Lenient, field: str) -> Function:
    return Function(
        reader.ident(fn.get("name"), f"{field}.name"),
        reader.arguments(fn.get("arguments"), f"{field}.arguments"),
    )


def _read_usage(usage: dict[str, Any], reader: Lenient) -> UsageBody:
    ptd = reader.obj(usage.get("prompt_tokens_details"), "usage.prompt_tokens_details")
    ctd = reader.obj(usage.get("completion_tokens_details"), "usage.completion_tokens_details")
    return UsageBody(
        reader.count(usage.get("prompt_tokens"), "usage.prompt_tokens"),
        reader.count(usage.get("completion_tokens"), "usage.completion_tokens"),
        reader.count(usage.get("total_tokens"), "usage.total_tokens"),
        PromptDetails(
            reader.count(ptd.get("cached_tokens"), "usage.prompt_tokens_details.cached_tokens")
        )
        if ptd is not None
        else None,
        CompletionDetails(
            reader.count(
                ctd.get("reasoning_tokens"), "usage.completion_tokens_details.reasoning_tokens"
            )
        )
        if ctd is not None
        else None,
    )
