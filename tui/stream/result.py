"""The records a run produces: its attempts, its tool calls and its result record.

One type of each, shared by :class:`tui.stream.accumulate.RunAccumulator` (live and
re-folded runs), the store's records and the ``run --jsonl`` result record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tui.stream.events import RetryMode, RunError
from tui.stream.metrics import time_per_output_token

__all__ = ["AttemptRecord", "ToolCall", "build_result", "error_dict"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call assembled from its fragments."""

    index: int
    call_id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt (one request) of a run; attempt 1 is the first request.

    Immutable: the accumulator replaces an attempt's record when it learns more about it.
    """

    number: int
    at_s: float = 0.0
    """Offset of the attempt's request, in seconds since the run started."""
    mode: RetryMode | None = None
    """How it continued the run: ``retry``, ``resume`` or ``restart`` (None for the first)."""
    method: str | None = None
    url: str | None = None
    """The request line as sent (None for stored attempts: the store keeps no URLs)."""
    http_status: int | None = None
    request_id: str | None = None
    cause: RunError | None = None
    """Why this attempt ended without finishing the run (None when it carried it to its end)."""
    after_sequence: int | None = None
    """The Responses sequence number this attempt resumed after."""
    last_event_id: str | None = None
    """The SSE ``Last-Event-ID`` this attempt resumed after (instead of a sequence number)."""
    output_text: str | None = None
    """The partial output of an attempt whose output was given up by a restart."""
    reasoning_text: str | None = None

    @property
    def resumed_after(self) -> int | str | None:
        """Where this attempt resumed: the sequence number, else the SSE event id."""
        return self.after_sequence if self.after_sequence is not None else self.last_event_id

    def as_dict(self) -> dict[str, Any]:
        """The attempt as in the result record's ``attempt_log``."""
        return {
            "number": self.number,
            "http_status": self.http_status,
            "cause": error_dict(self.cause),
            "resumed_after": self.resumed_after,
            "output_text": self.output_text,
        }


def error_dict(error: RunError | None) -> dict[str, Any] | None:
    """An error as in the result record: ``kind``, ``status`` and ``message``."""
    if error is None:
        return None
    return {"kind": error.kind, "status": error.http_status, "message": error.message}


def build_result(
    *,
    session: str,
    run_id: str,
    api: str,
    model: str,
    status: str | None,
    finish_reason: str | None,
    raw_finish_reason: str | None,
    output_text: str,
    reasoning_text: str,
    tool_calls: Sequence[ToolCall],
    input_tokens: int | None,
    output_tokens: int | None,
    tokens_estimated: bool,
    chunks: int,
    ttft_ms: float | None,
    duration_ms: float | None,
    tokens_per_s: float | None,
    itl_ms: tuple[float | None, float | None, float | None],
    attempts: Sequence[AttemptRecord],
    resumes: int,
    error: RunError | None,
    conversation_id: str | None = None,
    turn: int | None = None,
    tokens_source: str | None = None,
) -> dict[str, Any]:
    """The ``run --jsonl`` result record: the keys of issue #2 (``attempts`` and ``resumes``
    are counts), the run's ``conversation_id`` and ``turn`` (1-based; None where the caller
    does not know them: a run's accumulator does not, its session run and the store do),
    plus ``attempt_log``, one :meth:`AttemptRecord.as_dict` per attempt; milliseconds and
    rates rounded to 3 decimals. The one definition of the record: both
    :meth:`RunAccumulator.result` and ``tui.store.result_record`` build it here.

    What the timing keys measure (see :mod:`tui.stream.metrics`):

    - ``inter_chunk_ms`` (p50/p95/p99): gaps between content chunks; ``itl_ms`` is the same
      figures under their old name, kept for the consumers that read it. A chunk may carry
      several tokens, so these are per chunk, and their p99 shows the server's stalls.
    - ``tpot_ms``: time per output token, ``(duration - ttft) / (output_tokens - 1)``, None
      when ``tokens_source`` is ``chunks``.
    - ``tokens_source``: ``usage`` (the server's count), ``estimated`` (a tokenizer over the
      output; ``tokens_estimated`` True) or ``chunks`` (no usage, no tokenizer: the
      ``output_tokens`` and ``tokens_per_s`` count chunks). When the caller does not say,
      it is inferred: ``usage`` unless estimated, ``chunks`` when the count is the chunk
      count, else ``estimated``.
    """
    p50, p95, p99 = itl_ms
    if tokens_source is None:
        if not tokens_estimated:
            tokens_source = "usage"
        else:
            tokens_source = "chunks" if output_tokens == chunks else "estimated"
    inter_chunk = {"p50": _round(p50), "p95": _round(p95), "p99": _round(p99)}
    return {
        "session": session,
        "run_id": run_id,
        "conversation_id": conversation_id,
        "turn": turn,
        "api": api,
        "model": model,
        "status": status,
        "finish_reason": finish_reason,
        "raw_finish_reason": raw_finish_reason,
        "output_text": output_text,
        "reasoning_text": reasoning_text,
        "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in tool_calls],
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "tokens_estimated": tokens_estimated,
        "chunks": chunks,
        "ttft_ms": _round(ttft_ms),
        "duration_ms": _round(duration_ms),
        "tokens_per_s": _round(tokens_per_s),
        "itl_ms": dict(inter_chunk),
        "inter_chunk_ms": inter_chunk,
        "tpot_ms": _round(
            time_per_output_token(duration_ms, ttft_ms, output_tokens, tokens_source)
        ),
        "tokens_source": tokens_source,
        "attempts": len(attempts),
        "resumes": resumes,
        "error": error_dict(error),
        "attempt_log": [a.as_dict() for a in attempts],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
