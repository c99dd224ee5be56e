"""Folds a run's events into the values of its ``runs`` and ``attempts`` rows.

One :class:`RunFold` per active run lives in the store. It feeds every event to a
:class:`tui.stream.accumulate.RunAccumulator` (the same fold the headless runner and the
dashboard use, so stored metrics and the ``run --jsonl`` record agree) and keeps the few
things the accumulator does not: when each attempt was sent, how it continued the run and
its request id, and the full usage breakdown. :meth:`RunFold.apply` is O(1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tui.stream.accumulate import RunAccumulator
from tui.stream.events import (
    Connecting,
    Finished,
    ReasoningDelta,
    Resumed,
    Retrying,
    RunError,
    RunEvent,
    Started,
    TextDelta,
    ToolCallDelta,
    Usage,
)

from .codec import scrub

RUN_COLUMNS: tuple[str, ...] = (
    "first_token_s",
    "ended_s",
    "status",
    "finish_reason",
    "raw_finish_reason",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "total_tokens",
    "tokens_estimated",
    "ttft_ms",
    "duration_ms",
    "tokens_per_s",
    "itl_p50_ms",
    "itl_p95_ms",
    "itl_p99_ms",
    "chunks",
    "attempts",
    "resumes",
    "error_kind",
    "error_status",
    "error_message",
    "error_code",
    "response_id",
    "request_id",
    "output_text",
    "reasoning_text",
    "tool_calls_json",
)
"""The ``runs`` columns a flush writes, in the order of :meth:`RunFold.row`."""

ATTEMPT_COLUMNS: tuple[str, ...] = (
    "number",
    "at_s",
    "mode",
    "http_status",
    "request_id",
    "cause_kind",
    "cause_status",
    "cause_message",
    "resumed_after",
    "last_event_id",
    "output_text",
    "reasoning_text",
)
"""The ``attempts`` columns, in the order of :meth:`AttemptState.row`."""


@dataclass(slots=True)
class AttemptState:
    """What is known about one attempt (one request) of a run."""

    number: int
    at_s: float
    mode: str | None = None
    http_status: int | None = None
    request_id: str | None = None
    cause: RunError | None = None
    resumed_after: int | None = None
    last_event_id: str | None = None
    output_text: str | None = None
    """The partial output this attempt produced before a restart gave it up."""
    reasoning_text: str | None = None

    def row(self) -> tuple[Any, ...]:
        """Values for :data:`ATTEMPT_COLUMNS`."""
        cause = self.cause
        return (
            self.number,
            self.at_s,
            self.mode,
            self.http_status,
            self.request_id,
            cause.kind if cause else None,
            cause.http_status if cause else None,
            cause.message if cause else None,
            self.resumed_after,
            self.last_event_id,
            self.output_text,
            self.reasoning_text,
        )


@dataclass(slots=True)
class RunFold:
    """A run's state, folded from its events (the store's view of an active run)."""

    rowid: int
    acc: RunAccumulator
    key: int = 0
    """``rowid`` shifted to key this run's queued events (see ``store.SEQ_BITS``)."""
    next_seq: int = 0
    """Sequence number of the next event (0, 1, 2, ... per run)."""
    flushed_seq: int = 0
    """``next_seq`` as of the last committed checkpoint."""
    checkpoint_at: float = float("-inf")
    """``time.monotonic()`` of the last checkpoint of the run row (see ``CHECKPOINT_S``)."""
    first_token_s: float | None = None
    usage: Usage | None = None
    attempts: dict[int, AttemptState] = field(default_factory=dict)
    dirty_attempts: set[int] = field(default_factory=set)
    next_mode: str | None = None
    finished: Finished | None = None
    last_t: float = 0.0
    secret: str | None = None
    """The session's API key, blanked out of every text written (should one echo it)."""
    shared: bool = False
    """``acc`` is the caller's, who applies every event to it first: not applied again."""

    def apply(self, event: RunEvent) -> None:
        """Fold one event in (O(1))."""
        if not self.shared:
            self.acc.apply(event)
        kind = type(event)
        self.last_t = event.t
        if kind is TextDelta or kind is ReasoningDelta or kind is ToolCallDelta:
            if self.first_token_s is None and (kind is not TextDelta or event.text):  # type: ignore[union-attr]
                self.first_token_s = event.t
        elif kind is Connecting:
            attempt = event.attempt  # type: ignore[union-attr]
            self.attempts[attempt] = AttemptState(attempt, event.t, self.next_mode)
            self.next_mode = None
            self.dirty_attempts.add(attempt)
        elif kind is Usage:
            self.usage = event  # type: ignore[assignment]
        elif kind is Started:
            state = self._attempt(event.attempt, event.t)  # type: ignore[union-attr]
            state.http_status = event.http_status  # type: ignore[union-attr]
            state.request_id = event.request_id  # type: ignore[union-attr]
        elif kind is Retrying:
            self._retrying(event)  # type: ignore[arg-type]
        elif kind is Resumed:
            state = self._attempt(event.attempt, event.t)  # type: ignore[union-attr]
            state.resumed_after = event.after_sequence  # type: ignore[union-attr]
            state.last_event_id = event.last_event_id  # type: ignore[union-attr]
        elif kind is Finished:
            self.finished = event  # type: ignore[assignment]
            if event.error is not None:  # type: ignore[union-attr]
                state = self._attempt(self._current(), event.t)
                state.cause = state.cause or event.error  # type: ignore[union-attr]

    def _attempt(self, number: int, t: float) -> AttemptState:
        state = self.attempts.get(number)
        if state is None:
            state = self.attempts[number] = AttemptState(number, t)
        self.dirty_attempts.add(number)
        return state

    def _current(self) -> int:
        return max(self.attempts) if self.attempts else 1

    def _retrying(self, event: Retrying) -> None:
        state = self._attempt(self._current(), event.t)
        state.cause = event.cause
        if state.http_status is None:
            state.http_status = event.cause.http_status
        if event.mode == "restart":
            # The accumulator has moved this attempt's partial output into its record.
            record = self.acc.attempts[-1] if self.acc.attempts else None
            if record is not None:
                state.output_text = record.output_text
                state.reasoning_text = record.reasoning_text
            self.first_token_s = None
        self.next_mode = event.mode

    def take_dirty_attempts(self) -> list[tuple[Any, ...]]:
        """Rows of the attempts changed since the last call (``run`` first)."""
        rows = [
            tuple(
                scrub(v, self.secret) if self.secret and isinstance(v, str) else v
                for v in (self.rowid, *self.attempts[n].row())
            )
            for n in sorted(self.dirty_attempts)
        ]
        self.dirty_attempts.clear()
        return rows

    def row(self, *, final: bool) -> tuple[Any, ...]:
        """Values for :data:`RUN_COLUMNS`: a checkpoint, or the final summary.

        ``final`` without a :class:`Finished` means the run is being closed unfinished: it
        is written as ``interrupted``.
        """
        acc = self.acc
        m = acc.metrics()
        fin = self.finished
        usage = self.usage
        err = acc.error
        if fin is not None:
            status: str = fin.status
            ended: float | None = fin.t
        else:
            status = "interrupted" if final else "running"
            ended = self.last_t if final else None
        row = (
            self.first_token_s,
            ended,
            status,
            acc.finish_reason,
            acc.raw_finish_reason,
            m.input_tokens,
            m.output_tokens,
            usage.reasoning_tokens if usage else None,
            usage.cached_tokens if usage else None,
            usage.total_tokens if usage else None,
            int(m.tokens_estimated),
            m.ttft_ms,
            None if ended is None else ended * 1000.0,
            m.tokens_per_s,
            m.itl_p50_ms,
            m.itl_p95_ms,
            m.itl_p99_ms,
            m.chunks,
            len(self.attempts),
            acc.resumes,
            err.kind if err else None,
            err.http_status if err else None,
            err.message if err else None,
            err.code if err else None,
            acc.response_id,
            acc.request_id,
            acc.output_text,
            acc.reasoning_text,
            json.dumps(
                [
                    {
                        "index": c.index,
                        "call_id": c.call_id,
                        "name": c.name,
                        "arguments": c.arguments,
                    }
                    for c in acc.tool_calls
                ],
                ensure_ascii=False,
            ),
        )
        if self.secret is None:
            return row
        return tuple(scrub(v, self.secret) if isinstance(v, str) else v for v in row)
