"""What the two API adapters share: the outcome of a stream, the adapter protocol and the
small helpers that turn wire shapes into normalized pieces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import msgspec

from tui.stream.events import FinishReason, RunError, RunEvent, RunStatus
from tui.stream.sse import SSEEvent

__all__ = ["Adapter", "ErrorBody", "Outcome", "error_outcome", "protocol_outcome"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a stream ended, as the adapter understood it (becomes ``Finished``)."""

    status: RunStatus
    reason: FinishReason
    raw_reason: str | None
    error: RunError | None = None


class ErrorBody(msgspec.Struct):
    """An OpenAI-style error object (nested ``error`` or the flat vLLM shape)."""

    message: str | None = None
    type: str | None = None
    code: str | int | None = None
    param: str | None = None


def error_outcome(
    message: str | None, code: str | int | None, type_: str | None, *, where: str
) -> Outcome:
    """A failure reported by the server inside the stream (kind ``server``)."""
    text = message or f"the server reported an error {where}"
    label = code if code is not None else type_
    return Outcome(
        "failed",
        "error",
        None,
        RunError("server", text, code=str(label) if label is not None else None),
    )


def protocol_outcome(message: str) -> Outcome:
    """A stream the adapter cannot read (malformed JSON, not SSE)."""
    return Outcome("failed", "error", None, RunError("protocol", message))


class Adapter(Protocol):
    """Turns SSE events of one API into normalized run events.

    The runner calls :meth:`handle` for every decoded event (the adapter appends a
    ``RawEvent`` and the normalized events to ``out``) and stops reading once
    :attr:`outcome` is set. At a clean EOF it asks :meth:`eof_outcome`; None means the
    stream was truncated.
    """

    outcome: Outcome | None
    content_seen: bool
    """Any answer text or tool call so far (an empty ``stop`` is flagged)."""

    def begin_attempt(self, attempt: int, *, restart: bool) -> None:
        """A new attempt starts; ``restart`` resets all output state (resume keeps it)."""

    def handle(self, event: SSEEvent, t: float, out: list[RunEvent]) -> None:
        """Decode one SSE event into ``out``."""

    def eof_outcome(self, pending: bytes | None) -> Outcome | None:
        """The outcome at a clean EOF (``pending``: data of an unterminated last event)."""
