"""RunAccumulator: folds a run's events into its state and its result record.

Used by the store, the headless runner and the dashboard (replay too: recorded events go
through it again). ``apply`` is O(1) per event; texts are kept as lists of pieces with a
cached join.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tui.stream.events import (
    Api,
    Connecting,
    Finished,
    FinishReason,
    Notice,
    RawEvent,
    ReasoningDelta,
    ResponseInfo,
    Resumed,
    Retrying,
    RunError,
    RunEvent,
    RunStatus,
    Started,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from tui.stream.metrics import MetricsAccumulator, MetricsSnapshot

__all__ = ["AttemptRecord", "RunAccumulator", "ToolCall"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call assembled from its fragments."""

    index: int
    call_id: str | None
    name: str | None
    arguments: str


@dataclass(slots=True)
class AttemptRecord:
    """One attempt of a run (attempt 1 is the first request)."""

    number: int
    method: str = "POST"
    url: str = ""
    http_status: int | None = None
    cause: RunError | None = None
    """Why this attempt ended without finishing the run (None for the final attempt)."""
    resumed_after: int | str | None = None
    """This attempt resumed after this sequence number (or SSE event id)."""
    output_text: str | None = None
    """The partial output of an attempt whose output was given up by a restart."""
    reasoning_text: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (used in the result record)."""
        cause = self.cause
        return {
            "number": self.number,
            "http_status": self.http_status,
            "cause": None
            if cause is None
            else {"kind": cause.kind, "status": cause.http_status, "message": cause.message},
            "resumed_after": self.resumed_after,
            "output_text": self.output_text,
        }


class _Text:
    """Append-only text: O(1) append, join cached until the next append."""

    __slots__ = ("_cache", "_pieces")

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._cache: str | None = ""

    def append(self, piece: str) -> None:
        self._pieces.append(piece)
        self._cache = None

    def value(self) -> str:
        if self._cache is None:
            joined = "".join(self._pieces)
            self._pieces = [joined] if joined else []
            self._cache = joined
        return self._cache


@dataclass(slots=True)
class _ToolParts:
    call_id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)


class RunAccumulator:
    """The state of one run, built from its events (live, stored or replayed)."""

    def __init__(
        self,
        run_id: str,
        session_name: str,
        api: Api,
        model: str,
        prompt: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run_id = run_id
        self.session_name = session_name
        self.api: Api = api
        self.model = model
        self.prompt = prompt
        self._text = _Text()
        self._reasoning = _Text()
        self._tools: dict[int, _ToolParts] = {}
        self._metrics = MetricsAccumulator(clock)
        self.status: RunStatus | None = None
        """None while the run is going."""
        self.finish_reason: FinishReason | None = None
        self.raw_finish_reason: str | None = None
        self.error: RunError | None = None
        self.attempts: list[AttemptRecord] = []
        self.resumes = 0
        self.response_id: str | None = None
        self.server_model: str | None = None
        self.request_id: str | None = None
        self.notices: list[str] = []
        """Notice codes seen (e.g. ``empty_stop``)."""
        self.done = False

    # -- folding -----------------------------------------------------------------------
    def apply(self, event: RunEvent) -> None:
        """Fold one event in (cheap: called for every event)."""
        cls = type(event)
        if cls is TextDelta:
            text = event.text  # type: ignore[union-attr]
            if text:
                piece = self._text
                piece._pieces.append(text)  # _Text.append, inlined on the hot path
                piece._cache = None
                self._metrics.content(event.t)
        elif cls is RawEvent:
            return
        elif cls is Usage:
            self._metrics.apply(event)
        elif cls is ReasoningDelta:
            self._reasoning.append(event.text)  # type: ignore[union-attr]
            self._metrics.content(event.t)
        elif cls is ToolCallDelta:
            assert isinstance(event, ToolCallDelta)
            parts = self._tools.get(event.index)
            if parts is None:
                parts = self._tools[event.index] = _ToolParts()
            if event.name is not None and parts.name is None:
                parts.name = event.name
            if event.call_id is not None and parts.call_id is None:
                parts.call_id = event.call_id
            if event.arguments:
                parts.arguments.append(event.arguments)
            self._metrics.content(event.t)
        else:
            self._apply_other(event)
            self._metrics.apply(event)

    def _apply_other(self, event: RunEvent) -> None:
        if isinstance(event, Connecting):
            self.attempts.append(AttemptRecord(event.attempt, event.method, event.url))
        elif isinstance(event, Started):
            record = self._attempt(event.attempt)
            record.http_status = event.http_status
            if event.request_id is not None:
                self.request_id = event.request_id
        elif isinstance(event, ResponseInfo):
            if event.response_id is not None:
                self.response_id = event.response_id
            if event.model is not None:
                self.server_model = event.model
        elif isinstance(event, Retrying):
            if self.attempts:
                record = self.attempts[-1]
                record.cause = event.cause
                if record.http_status is None:
                    record.http_status = event.cause.http_status
                if event.mode == "restart":
                    record.output_text = self._text.value()
                    record.reasoning_text = self._reasoning.value()
                    self._text = _Text()
                    self._reasoning = _Text()
                    self._tools = {}
        elif isinstance(event, Resumed):
            self.resumes += 1
            after = (
                event.after_sequence if event.after_sequence is not None else event.last_event_id
            )
            self._attempt(event.attempt).resumed_after = after
        elif isinstance(event, Finished):
            self.done = True
            self.status = event.status
            self.finish_reason = event.reason
            self.raw_finish_reason = event.raw_reason
            self.error = event.error
            if event.error is not None and self.attempts and self.attempts[-1].cause is None:
                self.attempts[-1].cause = event.error
        elif isinstance(event, Notice):
            self.notices.append(event.code)

    def _attempt(self, number: int) -> AttemptRecord:
        for record in reversed(self.attempts):
            if record.number == number:
                return record
        record = AttemptRecord(number)
        self.attempts.append(record)
        return record

    # -- views -------------------------------------------------------------------------
    @property
    def output_text(self) -> str:
        """The answer so far (of the current attempt after a restart)."""
        return self._text.value()

    @property
    def reasoning_text(self) -> str:
        """The reasoning text so far."""
        return self._reasoning.value()

    @property
    def tool_calls(self) -> list[ToolCall]:
        """Tool calls so far, fragments merged, in index order."""
        return [
            ToolCall(i, p.call_id, p.name, "".join(p.arguments))
            for i, p in sorted(self._tools.items())
        ]

    def metrics(self) -> MetricsSnapshot:
        """The run's metrics now."""
        return self._metrics.snapshot()

    def result(self) -> dict[str, Any]:
        """The ``run --jsonl`` result record: the keys of issue #2 (``attempts`` and ``resumes``
        are counts) plus ``attempt_log``, one record per attempt (HTTP status, cause, where it
        resumed, and the partial output a restart left behind)."""
        m = self.metrics()
        err = self.error
        return {
            "session": self.session_name,
            "run_id": self.run_id,
            "api": self.api,
            "model": self.model,
            "status": self.status,
            "finish_reason": self.finish_reason,
            "raw_finish_reason": self.raw_finish_reason,
            "output_text": self.output_text,
            "reasoning_text": self.reasoning_text,
            "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in self.tool_calls],
            "input_tokens": m.input_tokens,
            "output_tokens": m.output_tokens,
            "tokens_estimated": m.tokens_estimated,
            "chunks": m.chunks,
            "ttft_ms": _round(m.ttft_ms),
            "duration_ms": _round(m.duration_ms),
            "tokens_per_s": _round(m.tokens_per_s),
            "itl_ms": {
                "p50": _round(m.itl_p50_ms),
                "p95": _round(m.itl_p95_ms),
                "p99": _round(m.itl_p99_ms),
            },
            "attempts": len(self.attempts),
            "resumes": self.resumes,
            "error": None
            if err is None
            else {"kind": err.kind, "status": err.http_status, "message": err.message},
            "attempt_log": [a.as_dict() for a in self.attempts],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
