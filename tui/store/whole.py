"""A stored run shown at once: its events with the text whole, and its figures as stored.

Most of a long run's events are its text and reasoning deltas (a million-token answer is a
million of them), and its record already holds their sum (``output_text``,
``reasoning_text``) and every figure of them (TTFT, inter-chunk latency, tokens/s). To show
a run finished, a view needs no delta one by one: :func:`whole_events` gives the other
events (attempts, usage, tool calls, notices, the end), read without the delta rows, with
the text as one delta of each kind, and :func:`stored_metrics` the figures as the store
has them, since a fold of one big delta cannot measure the gaps between the pieces. A
timed replay reads every delta instead (:meth:`~tui.store.reading.RunQueries.replay`).
"""

from __future__ import annotations

from collections.abc import Iterable

from tui.stream.events import Finished, RawEvent, ReasoningDelta, RunEvent, TextDelta
from tui.stream.metrics import MetricsSnapshot, TokensSource, time_per_output_token

from .records import RunSummary

__all__ = ["stored_metrics", "whole_events"]

_LEFT_OUT = (TextDelta, ReasoningDelta, RawEvent)
"""What :func:`whole_events` does not pass on: the deltas (the text comes whole) and the raw
SSE events (no view of a finished run shows them; the raw log reads them itself)."""


def whole_events(run: RunSummary, events: Iterable[RunEvent]) -> list[RunEvent]:
    """``events`` (the run's recorded events without their deltas, as
    ``iter_run_events(deltas=False)`` reads them) with the run's stored reasoning and
    answer, each as one delta, just before its :class:`Finished`, or at the end when the
    recording has none (the process died mid-run). Deltas among ``events`` (a run stored
    before the compact form keeps them as events rows) and raw events are left out.

    The deltas come after every attempt boundary, so a restart (which starts the answer
    over) comes before them: the stored text is the answer that was kept. Their ``t`` is
    the run's end (``ended_s``; for a run still running, that of its last event read)."""
    kept: list[RunEvent] = [e for e in events if not isinstance(e, _LEFT_OUT)]
    end = kept.pop() if kept and isinstance(kept[-1], Finished) else None
    t = run.ended_s if run.ended_s is not None else (kept[-1].t if kept else 0.0)
    if run.reasoning_text:
        kept.append(ReasoningDelta(t, run.reasoning_text))
    if run.output_text:
        kept.append(TextDelta(t, run.output_text))
    if end is not None:
        kept.append(end)
    return kept


def _s(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0


def stored_metrics(run: RunSummary) -> MetricsSnapshot:
    """The run's figures as stored, as the snapshot a live fold gives (a metrics bar shows
    either): TTFT, the inter-chunk percentiles, tokens/s, tokens, chunks and duration; no
    rolling rate (the run is over)."""
    source: TokensSource = "chunks"
    counted = run.counted
    if counted in ("usage", "estimated"):
        source = "usage" if counted == "usage" else "estimated"
    duration = _s(run.duration_ms)
    tpot = run.tpot_ms  # a run stored before it was kept: the record's formula
    if tpot is None:
        tpot = time_per_output_token(run.duration_ms, run.ttft_ms, run.output_tokens, source)
    return MetricsSnapshot(
        ttft_s=_s(run.ttft_ms),
        itl_p50_s=_s(run.itl_p50_ms),
        itl_p95_s=_s(run.itl_p95_ms),
        itl_p99_s=_s(run.itl_p99_ms),
        tokens_per_s=run.tokens_per_s,
        rolling_tokens_per_s=None,
        chunks=run.chunks,
        output_tokens=run.output_tokens if run.output_tokens is not None else run.chunks,
        input_tokens=run.input_tokens,
        tokens_estimated=run.tokens_estimated,
        duration_s=duration,
        elapsed_s=duration if duration is not None else (run.ended_s or 0.0),
        finished=run.status not in ("running", "interrupted"),
        tokens_source=source,
        tpot_s=_s(tpot),
    )
