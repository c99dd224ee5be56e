"""Chat Completions on the wire: the streaming request body, the strict chunk types the fast
path decodes into, and the mapping of ``finish_reason`` spellings.

The Structs mirror only the fields :class:`tui.stream.chat.ChatAdapter` reads; every field
is optional, so a chunk decodes unless a field it has is of another type (then the adapter
reads it again leniently, :mod:`tui.stream.chat_lenient`). :func:`decode_chunk` is the one
strict decoder; it raises what ``msgspec.json.Decoder.decode`` raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from tui.config import SessionConfig
from tui.stream.adapter import ErrorBody
from tui.stream.events import FinishReason, RunStatus
from tui.stream.history import Conversation, chat_messages

__all__ = [
    "KNOWN_FINISH",
    "Choice",
    "Chunk",
    "CompletionDetails",
    "Delta",
    "Function",
    "PromptDetails",
    "ToolCall",
    "UsageBody",
    "build_chat_body",
    "decode_chunk",
    "normalize_chat_finish",
]


def build_chat_body(
    session: SessionConfig, prompt: str | None = None, history: Conversation | None = None
) -> dict[str, Any]:
    """The streaming request body for ``session`` (``prompt`` overrides the session's), sent
    after the turns of ``history`` (:mod:`tui.stream.history`)."""
    text = session.prompt if prompt is None else prompt
    body: dict[str, Any] = {
        "model": session.model,
        "messages": chat_messages(session.system, history, text),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if session.max_output_tokens is not None:
        body["max_tokens"] = session.max_output_tokens
    if session.temperature is not None:
        body["temperature"] = session.temperature
    for key, value in session.params.items():
        if key == "stream_options" and isinstance(value, Mapping):
            body["stream_options"] = {**body["stream_options"], **value}
        else:
            body[key] = value
    return body


KNOWN_FINISH: dict[str, tuple[RunStatus, FinishReason]] = {
    "stop": ("completed", "stop"),
    "eos": ("completed", "stop"),
    "end_turn": ("completed", "stop"),
    "tool_calls": ("completed", "tool_calls"),
    "function_call": ("completed", "tool_calls"),
    "length": ("incomplete", "length"),
    "max_tokens": ("incomplete", "length"),
    "content_filter": ("incomplete", "content_filter"),
}
"""The spellings OpenAI and the common servers use, read without a notice."""

_NEAREST: tuple[tuple[tuple[str, ...], tuple[RunStatus, FinishReason]], ...] = (
    (
        ("filter", "safety", "block", "recitation", "moderat", "prohibit", "spii", "guardrail"),
        ("incomplete", "content_filter"),
    ),
    (("tool", "function"), ("completed", "tool_calls")),
    (("eos", "end", "stop", "finish", "complete", "done"), ("completed", "stop")),
    (("length", "token", "max", "limit", "context", "truncat"), ("incomplete", "length")),
    (("error", "abort", "fail", "exception"), ("failed", "error")),
    (("cancel",), ("cancelled", "cancelled")),
)
"""Word stems of other spellings (Gemini's ``MAX_TOKENS``, Anthropic's ``tool_use``, TGI's
``eos_token``, ...) and the reason they are nearest to; anything else reads as stop."""


def normalize_chat_finish(raw: str) -> tuple[RunStatus, FinishReason]:
    """Status and normalized reason of a chat ``finish_reason``: the known spellings, else
    the nearest by its words (case and separators ignored), else stop."""
    known = KNOWN_FINISH.get(raw)
    if known is not None:
        return known
    word = raw.strip().lower().replace("-", "_").replace(" ", "_")
    known = KNOWN_FINISH.get(word)
    if known is not None:
        return known
    for stems, nearest in _NEAREST:
        if any(stem in word for stem in stems):
            return nearest
    return ("completed", "stop")


class Function(msgspec.Struct):
    """A tool call's function (or the deprecated ``function_call``): name, argument text."""

    name: str | None = None
    arguments: str | None = None


class ToolCall(msgspec.Struct):
    """One tool-call fragment of a delta."""

    index: int | None = None
    id: str | None = None
    function: Function | None = None


class Delta(msgspec.Struct):
    """A choice's delta: answer text, reasoning (both spellings), refusal, tool calls."""

    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: Function | None = None


class Choice(msgspec.Struct):
    """One choice of a chunk (only index 0 is the answer)."""

    index: int = 0
    delta: Delta | None = None
    finish_reason: str | None = None


class PromptDetails(msgspec.Struct):
    """``usage.prompt_tokens_details``."""

    cached_tokens: int | None = None


class CompletionDetails(msgspec.Struct):
    """``usage.completion_tokens_details``."""

    reasoning_tokens: int | None = None


class UsageBody(msgspec.Struct):
    """A chunk's ``usage`` object."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_details: PromptDetails | None = None
    completion_tokens_details: CompletionDetails | None = None


class Chunk(msgspec.Struct):
    """One streamed chunk, or an error in the nested, flat or plain-text shape."""

    id: str | None = None
    object: str | None = None
    model: str | None = None
    choices: list[Choice] | None = None
    usage: UsageBody | None = None
    error: ErrorBody | str | None = None
    # the flat (vLLM < 0.10.1) error shape
    message: str | None = None
    type: str | None = None
    code: str | int | None = None


decode_chunk = msgspec.json.Decoder(Chunk).decode
"""Decode one chunk's JSON strictly into :class:`Chunk`."""
