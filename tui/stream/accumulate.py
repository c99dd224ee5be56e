"""RunAccumulator: the one fold of a run's events into its state and its result record.

The dashboard, ``tokentop run`` and the store all read a run through it: live (one per run,
shared with the store), and again from recorded events (:func:`fold_events`, which the store
uses for a dead writer's runs). ``apply`` is O(1) per event; texts are kept as lists of
pieces with a cached join. The records it produces (:class:`AttemptRecord`,
:class:`ToolCall`, the result record) are defined in :mod:`tui.stream.result`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
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
    RetryMode,
    RunError,
    RunEvent,
    RunStatus,
    Started,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from tui.stream.metrics import MetricsAccumulator, MetricsSnapshot
from tui.stream.result import AttemptRecord, ToolCall, build_result
from tui.stream.tokenize import estimate_tokens

__all__ = [
    "AttemptRecord",
    "EventClock",
    "RunAccumulator",
    "ToolCall",
    "fold_events",
]


class EventClock:
    """The clock of a fold of recorded events: it reads the ``t`` of the event being folded.

    Set :attr:`t` before each ``apply`` (:func:`fold_events` does), so that what the metrics
    read from their clock (the rolling rate's "now", the elapsed time) is the run time of
    that event, as the live run had it, never the time of the re-fold.
    """

    __slots__ = ("t",)

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        """The run time of the event being folded."""
        return self.t


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
        """One record per attempt (request), in order; a record is replaced, never changed."""
        self.resumes = 0
        self.response_id: str | None = None
        self.server_model: str | None = None
        self.request_id: str | None = None
        self.usage: Usage | None = None
        """The last usage report of the kept output (the full breakdown; None before one)."""
        self.notices: list[str] = []
        """Notice codes seen (e.g. ``empty_stop``)."""
        self.done = False
        self._next_mode: RetryMode | None = None

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
            self.usage = event  # type: ignore[assignment]
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
            record = AttemptRecord(event.attempt, event.t, self._next_mode, event.method, event.url)
            self.attempts.append(record)
            self._next_mode = None
        elif isinstance(event, Started):
            self._update(
                event.attempt, event.t, http_status=event.http_status, request_id=event.request_id
            )
            if event.request_id is not None:
                self.request_id = event.request_id
        elif isinstance(event, ResponseInfo):
            if event.response_id is not None:
                self.response_id = event.response_id
            if event.model is not None:
                self.server_model = event.model
        elif isinstance(event, Retrying):
            self._next_mode = event.mode
            if self.attempts:
                record = self.attempts[-1]
                changes: dict[str, Any] = {"cause": event.cause}
                if record.http_status is None:
                    changes["http_status"] = event.cause.http_status
                if event.mode == "restart":
                    changes["output_text"] = self._text.value()
                    changes["reasoning_text"] = self._reasoning.value()
                    self._text = _Text()
                    self._reasoning = _Text()
                    self._tools = {}
                    self.usage = None  # as the metrics do: they describe the kept output
                self.attempts[-1] = replace(record, **changes)
        elif isinstance(event, Resumed):
            self.resumes += 1
            self._update(
                event.attempt,
                event.t,
                after_sequence=event.after_sequence,
                last_event_id=event.last_event_id,
            )
        elif isinstance(event, Finished):
            self.done = True
            self.status = event.status
            self.finish_reason = event.reason
            self.raw_finish_reason = event.raw_reason
            self.error = event.error
            metrics = self._metrics
            if metrics.chunks and metrics.reported_tokens is None:
                metrics.estimated_tokens = estimate_tokens(self._output_texts())
            if event.error is not None and self.attempts and self.attempts[-1].cause is None:
                self.attempts[-1] = replace(self.attempts[-1], cause=event.error)
        elif isinstance(event, Notice):
            self.notices.append(event.code)
            if event.answer is not None:  # the final text shows deltas were lost: it wins
                self._text = _Text()
                self._text.append(event.answer)

    def _update(self, number: int, t: float, **changes: Any) -> None:
        """Replace the record of attempt ``number`` (created at ``t`` if unknown)."""
        attempts = self.attempts
        for i in range(len(attempts) - 1, -1, -1):
            if attempts[i].number == number:
                attempts[i] = replace(attempts[i], **changes)
                return
        attempts.append(AttemptRecord(number, t, **changes))

    def _output_texts(self) -> list[str]:
        return [
            self._text.value(),
            self._reasoning.value(),
            *("".join(p.arguments) for p in self._tools.values()),
        ]

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

    @property
    def first_token_s(self) -> float | None:
        """Run time of the first content of the kept output (None before any)."""
        return self._metrics.first_t

    def chunk_gaps(self) -> list[float]:
        """Every inter-chunk gap of the kept output, in arrival order (seconds)."""
        return self._metrics.gaps()

    def metrics(self) -> MetricsSnapshot:
        """The run's metrics now."""
        return self._metrics.snapshot()

    def result(self) -> dict[str, Any]:
        """The ``run --jsonl`` result record (see :func:`build_result`)."""
        m = self.metrics()
        return build_result(
            session=self.session_name,
            run_id=self.run_id,
            api=self.api,
            model=self.model,
            status=self.status,
            finish_reason=self.finish_reason,
            raw_finish_reason=self.raw_finish_reason,
            output_text=self.output_text,
            reasoning_text=self.reasoning_text,
            tool_calls=self.tool_calls,
            input_tokens=m.input_tokens,
            output_tokens=m.output_tokens,
            tokens_estimated=m.tokens_estimated,
            tokens_source=m.tokens_source,
            chunks=m.chunks,
            ttft_ms=m.ttft_ms,
            duration_ms=m.duration_ms,
            tokens_per_s=m.tokens_per_s,
            itl_ms=(m.itl_p50_ms, m.itl_p95_ms, m.itl_p99_ms),
            attempts=self.attempts,
            resumes=self.resumes,
            error=self.error,
        )


def fold_events(
    events: Iterable[RunEvent], run_id: str, session_name: str, api: Api, model: str, prompt: str
) -> RunAccumulator:
    """A new accumulator with recorded ``events`` folded in, timed by their own ``t`` (an
    :class:`EventClock`): its metrics are those the live run had after the last of them."""
    clock = EventClock()
    acc = RunAccumulator(run_id, session_name, api, model, prompt, clock=clock)
    apply = acc.apply
    for event in events:
        clock.t = event.t
        apply(event)
    return acc
