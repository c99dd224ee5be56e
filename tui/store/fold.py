"""Folds a run's events into the values of its ``runs`` and ``attempts`` rows.

One :class:`RunFold` per active run lives in the store; :meth:`RunFold.apply` is called for
every event from ``Store.add_event`` and costs O(1). Text is kept as a list of pieces and
joined only when a flush writes the checkpoint.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any

from tui.stream.events import (
    Connecting,
    Finished,
    ReasoningDelta,
    ResponseInfo,
    Resumed,
    Retrying,
    RunError,
    RunEvent,
    Started,
    TextDelta,
    ToolCallDelta,
    Usage,
)

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
)
"""The ``attempts`` columns, in the order of :meth:`AttemptState.row`."""


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation, as numpy's default."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


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
        )


@dataclass(slots=True)
class _ToolCall:
    index: int
    name: str | None
    call_id: str | None
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class RunFold:
    """A run's state, folded from its events (the store's view of an active run)."""

    rowid: int
    next_seq: int = 0
    """Sequence number of the next event (0, 1, 2, ... per run)."""
    flushed_seq: int = 0
    """``next_seq`` as of the last committed checkpoint."""
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tools: dict[int, _ToolCall] = field(default_factory=dict)
    content_ts: list[float] = field(default_factory=list)
    """Arrival offset of every content delta (TTFT, ITL, tokens/s)."""
    start_t: float | None = None
    usage: Usage | None = None
    response_id: str | None = None
    request_id: str | None = None
    attempts: dict[int, AttemptState] = field(default_factory=dict)
    dirty_attempts: set[int] = field(default_factory=set)
    next_mode: str | None = None
    resumes: int = 0
    finished: Finished | None = None
    last_t: float = 0.0

    def apply(self, event: RunEvent) -> None:
        """Fold one event in (O(1))."""
        kind = type(event)
        self.last_t = event.t
        if kind is TextDelta or kind is ReasoningDelta or kind is ToolCallDelta:
            self.content_ts.append(event.t)
            if kind is TextDelta:
                self.text.append(event.text)  # type: ignore[union-attr]
            elif kind is ReasoningDelta:
                self.reasoning.append(event.text)  # type: ignore[union-attr]
            else:
                self._tool(event)  # type: ignore[arg-type]
        elif kind is Connecting:
            self._connecting(event)  # type: ignore[arg-type]
        elif kind is Started:
            self._started(event)  # type: ignore[arg-type]
        elif kind is Usage:
            self.usage = event  # type: ignore[assignment]
        elif kind is ResponseInfo:
            if event.response_id:  # type: ignore[union-attr]
                self.response_id = event.response_id  # type: ignore[union-attr]
        elif kind is Retrying:
            self._retrying(event)  # type: ignore[arg-type]
        elif kind is Resumed:
            self._resumed(event)  # type: ignore[arg-type]
        elif kind is Finished:
            self._finished(event)  # type: ignore[arg-type]

    def _tool(self, event: ToolCallDelta) -> None:
        call = self.tools.get(event.index)
        if call is None:
            call = self.tools[event.index] = _ToolCall(event.index, event.name, event.call_id)
        else:
            call.name = call.name or event.name
            call.call_id = call.call_id or event.call_id
        call.arguments.append(event.arguments)

    def _connecting(self, event: Connecting) -> None:
        if self.start_t is None:
            self.start_t = event.t
        self.attempts[event.attempt] = AttemptState(event.attempt, event.t, self.next_mode)
        self.next_mode = None
        self.dirty_attempts.add(event.attempt)

    def _attempt(self, number: int, t: float) -> AttemptState:
        state = self.attempts.get(number)
        if state is None:
            state = self.attempts[number] = AttemptState(number, t)
        self.dirty_attempts.add(number)
        return state

    def _started(self, event: Started) -> None:
        state = self._attempt(event.attempt, event.t)
        state.http_status = event.http_status
        state.request_id = event.request_id
        if event.request_id:
            self.request_id = event.request_id

    def _current_attempt(self) -> int:
        return max(self.attempts) if self.attempts else 1

    def _retrying(self, event: Retrying) -> None:
        state = self._attempt(self._current_attempt(), event.t)
        state.cause = event.cause
        if state.http_status is None and event.cause.http_status is not None:
            state.http_status = event.cause.http_status
        self.next_mode = event.mode

    def _resumed(self, event: Resumed) -> None:
        self.resumes += 1
        state = self._attempt(event.attempt, event.t)
        state.resumed_after = event.after_sequence
        state.last_event_id = event.last_event_id

    def _finished(self, event: Finished) -> None:
        self.finished = event
        if event.error is not None:
            state = self._attempt(self._current_attempt(), event.t)
            if state.cause is None:
                state.cause = event.error
            if event.error.request_id and not self.request_id:
                self.request_id = event.error.request_id

    def output_text(self) -> str:
        """The answer so far (joins the pieces once and keeps the result)."""
        if len(self.text) > 1:
            self.text[:] = ["".join(self.text)]
        return self.text[0] if self.text else ""

    def reasoning_text(self) -> str:
        """The reasoning text so far."""
        if len(self.reasoning) > 1:
            self.reasoning[:] = ["".join(self.reasoning)]
        return self.reasoning[0] if self.reasoning else ""

    def tool_calls(self) -> list[dict[str, Any]]:
        """Tool calls so far: ``{index, call_id, name, arguments}`` by index."""
        return [
            {
                "index": c.index,
                "call_id": c.call_id,
                "name": c.name,
                "arguments": "".join(c.arguments),
            }
            for c in sorted(self.tools.values(), key=lambda c: c.index)
        ]

    def take_dirty_attempts(self) -> list[tuple[Any, ...]]:
        """Rows of the attempts changed since the last call (``run`` first)."""
        rows = [(self.rowid, *self.attempts[n].row()) for n in sorted(self.dirty_attempts)]
        self.dirty_attempts.clear()
        return rows

    def row(self, *, final: bool) -> tuple[Any, ...]:
        """Values for :data:`RUN_COLUMNS`: a checkpoint, or the final summary once finished.

        Latency percentiles are only computed for the final summary (they sort every
        inter-token gap); a checkpoint carries the text, usage, ids and TTFT.
        """
        start = self.start_t or 0.0
        ts = self.content_ts
        first = ts[0] if ts else None
        usage = self.usage
        out_tokens = usage.output_tokens if usage and usage.output_tokens is not None else None
        estimated = out_tokens is None
        if out_tokens is None:
            # One streamed content delta is about one token on OpenAI-compatible servers.
            out_tokens = len(ts)
        tokens_per_s = itl50 = itl95 = itl99 = duration_ms = None
        fin = self.finished if final else None
        if final:
            window = ts[-1] - ts[0] if len(ts) > 1 else 0.0
            if window > 0:
                tokens_per_s = out_tokens / window
            gaps = sorted(b - a for a, b in itertools.pairwise(ts))
            itl50, itl95, itl99 = (
                None if (p := percentile(gaps, q)) is None else p * 1000 for q in (0.5, 0.95, 0.99)
            )
            duration_ms = ((fin.t if fin else self.last_t) - start) * 1000
        err = fin.error if fin else None
        return (
            first,
            fin.t if fin else (self.last_t if final else None),
            fin.status if fin else ("interrupted" if final else "running"),
            fin.reason if fin else None,
            fin.raw_reason if fin else None,
            usage.input_tokens if usage else None,
            out_tokens,
            usage.reasoning_tokens if usage else None,
            usage.cached_tokens if usage else None,
            usage.total_tokens if usage else None,
            int(estimated),
            (first - start) * 1000 if first is not None else None,
            duration_ms,
            tokens_per_s,
            itl50,
            itl95,
            itl99,
            len(ts),
            len(self.attempts),
            self.resumes,
            err.kind if err else None,
            err.http_status if err else None,
            err.message if err else None,
            err.code if err else None,
            self.response_id,
            self.request_id,
            self.output_text(),
            self.reasoning_text(),
            json.dumps(self.tool_calls(), ensure_ascii=False),
        )
