"""Chat Completions (``POST /v1/chat/completions``, ``stream: true``): the request body and
the chunk -> normalized events adapter.

Deviations handled (see the protocol reference, sections 3 and 6): usage on a separate
``choices: []`` chunk, on every chunk (vLLM continuous usage) or missing; ``finish_reason``
on its own chunk; a role chunk with ``content`` ``""`` or null; ``reasoning_content``
(llama.cpp, vLLM) and ``reasoning`` (Ollama) deltas; tool-call fragments; errors in both the
nested ``{"error": {...}}`` and the flat ``{"object": "error", ...}`` shape (and Ollama's
``{"error": "text"}``) anywhere in the stream; ``[DONE]`` also without its blank line at EOF.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from tui.config import SessionConfig
from tui.stream.adapter import ErrorBody, Outcome, error_outcome, protocol_outcome
from tui.stream.construct import raw_event, reasoning_delta, text_delta
from tui.stream.events import (
    FinishReason,
    ResponseInfo,
    RunEvent,
    RunStatus,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from tui.stream.sse import SSEEvent

__all__ = ["ChatAdapter", "build_chat_body", "normalize_chat_finish"]


def build_chat_body(session: SessionConfig, prompt: str | None = None) -> dict[str, Any]:
    """The streaming request body for ``session`` (``prompt`` overrides the session's)."""
    messages: list[dict[str, str]] = []
    if session.system:
        messages.append({"role": "system", "content": session.system})
    messages.append({"role": "user", "content": session.prompt if prompt is None else prompt})
    body: dict[str, Any] = {
        "model": session.model,
        "messages": messages,
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


_FINISH: dict[str, tuple[RunStatus, FinishReason]] = {
    "stop": ("completed", "stop"),
    "eos": ("completed", "stop"),
    "end_turn": ("completed", "stop"),
    "tool_calls": ("completed", "tool_calls"),
    "function_call": ("completed", "tool_calls"),
    "length": ("incomplete", "length"),
    "max_tokens": ("incomplete", "length"),
    "content_filter": ("incomplete", "content_filter"),
}


def normalize_chat_finish(raw: str) -> tuple[RunStatus, FinishReason]:
    """Status and normalized reason of a chat ``finish_reason`` (unknown ones: stop)."""
    return _FINISH.get(raw, ("completed", "stop"))


class _Function(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCall(msgspec.Struct):
    index: int = 0
    id: str | None = None
    function: _Function | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(msgspec.Struct):
    index: int = 0
    delta: _Delta | None = None
    finish_reason: str | None = None


class _PromptDetails(msgspec.Struct):
    cached_tokens: int | None = None


class _CompletionDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None


class _Chunk(msgspec.Struct):
    id: str | None = None
    object: str | None = None
    model: str | None = None
    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    error: ErrorBody | str | None = None
    # the flat (vLLM < 0.10.1) error shape
    message: str | None = None
    type: str | None = None
    code: str | int | None = None


_decode_chunk = msgspec.json.Decoder(_Chunk).decode
_decode_any = msgspec.json.Decoder().decode


class ChatAdapter:
    """Chat chunks -> normalized events (one adapter per run; see :class:`Adapter`)."""

    __slots__ = (
        "_attempt",
        "_info_sent",
        "content_seen",
        "count",
        "finish_raw",
        "outcome",
        "response_id",
    )

    def __init__(self) -> None:
        self._attempt = 1
        self._info_sent = False
        self.count = 0
        """Events handled in the current attempt (1-based numbers in messages)."""
        self.outcome: Outcome | None = None
        self.content_seen = False
        self.finish_raw: str | None = None
        self.response_id: str | None = None

    def begin_attempt(self, attempt: int, *, restart: bool) -> None:
        """A new attempt: chat cannot resume, so any retry starts over."""
        self._attempt = attempt
        self.count = 0
        self.outcome = None
        if restart:
            self.content_seen = False
            self.finish_raw = None
            self._info_sent = False

    def handle(self, event: SSEEvent, t: float, out: list[RunEvent]) -> None:
        """Decode one chunk into ``out`` (RawEvent first, then the normalized events)."""
        data = event.data
        self.count += 1
        out.append(
            raw_event(t, self._attempt, event.event, data.decode("utf-8", "replace"), event.id)
        )
        if data[:6] == b"[DONE]":
            self.outcome = self._done_outcome()
            return
        try:
            chunk = _decode_chunk(data)
        except msgspec.ValidationError:
            self._loose(data)
            return
        except msgspec.DecodeError as exc:
            self.outcome = protocol_outcome(
                f"malformed JSON in event {self.count} of attempt {self._attempt}: {exc}"
            )
            return
        err = chunk.error
        if err is not None or chunk.object == "error":
            if isinstance(err, ErrorBody):
                self.outcome = error_outcome(err.message, err.code, err.type, where="mid-stream")
            elif isinstance(err, str):
                self.outcome = error_outcome(err, None, None, where="mid-stream")
            else:
                self.outcome = error_outcome(
                    chunk.message, chunk.code, chunk.type, where="mid-stream"
                )
            return
        if not self._info_sent and chunk.id is not None:
            self._info_sent = True
            self.response_id = chunk.id
            out.append(ResponseInfo(t, chunk.id, chunk.model))
        choices = chunk.choices
        if choices:
            for choice in choices:
                if choice.index:
                    continue  # n > 1: only the first choice is the answer
                delta = choice.delta
                if delta is not None:
                    content = delta.content
                    if content:
                        self.content_seen = True
                        out.append(text_delta(t, content))
                    if (
                        delta.reasoning_content
                        or delta.reasoning
                        or delta.refusal
                        or delta.tool_calls
                    ):
                        self._rare_delta(delta, t, out)
                if choice.finish_reason:
                    self.finish_raw = choice.finish_reason
        usage = chunk.usage
        if usage is not None:
            ptd, ctd = usage.prompt_tokens_details, usage.completion_tokens_details
            out.append(
                Usage(
                    t,
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    ctd.reasoning_tokens if ctd is not None else None,
                    ptd.cached_tokens if ptd is not None else None,
                    usage.total_tokens,
                )
            )

    def _rare_delta(self, delta: _Delta, t: float, out: list[RunEvent]) -> None:
        reasoning = delta.reasoning_content or delta.reasoning
        if reasoning:
            out.append(reasoning_delta(t, reasoning))
        if delta.refusal:
            self.content_seen = True
            out.append(TextDelta(t, delta.refusal))
        if delta.tool_calls:
            self.content_seen = True
            for call in delta.tool_calls:
                fn = call.function
                out.append(
                    ToolCallDelta(
                        t,
                        call.index,
                        (fn.arguments or "") if fn is not None else "",
                        fn.name if fn is not None else None,
                        call.id,
                    )
                )

    def _loose(self, data: bytes) -> None:
        """A chunk that is JSON but not shaped like a chunk: only an error matters."""
        try:
            value = _decode_any(data)
        except msgspec.DecodeError as exc:  # pragma: no cover - ValidationError implies JSON
            self.outcome = protocol_outcome(f"malformed JSON in event {self.count}: {exc}")
            return
        if isinstance(value, dict) and (value.get("error") or value.get("object") == "error"):
            err = value.get("error")
            src: dict[str, Any] = err if isinstance(err, dict) else value
            message = src.get("message") if isinstance(src.get("message"), str) else None
            if message is None and isinstance(err, str):
                message = err
            self.outcome = error_outcome(
                message, _text(src.get("code")), _text(src.get("type")), where="mid-stream"
            )

    def _done_outcome(self) -> Outcome:
        raw = self.finish_raw
        if raw is None:
            return Outcome("completed", "stop", None)
        status, reason = normalize_chat_finish(raw)
        return Outcome(status, reason, raw)

    def eof_outcome(self, pending: bytes | None) -> Outcome | None:
        """A final ``data: [DONE]`` without its blank line still ends the stream; so does a
        ``finish_reason`` already received (a missing ``[DONE]`` after it loses nothing)."""
        if pending is not None and pending[:6] == b"[DONE]":
            return self._done_outcome()
        if self.finish_raw is not None:
            return self._done_outcome()
        return None


def _text(value: object) -> str | None:
    return None if value is None else str(value)
