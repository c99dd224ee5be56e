"""What the monitor screen shows, as data and text: the windows, the summary lines, the
chart series (from the store's :class:`~tui.store.stats.SeriesPoint` list, or from the
in-memory history when there is no store). Pure functions; the screen only draws them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.content import Content

from tui.session import RunSummary, SessionController
from tui.ui.figures import SessionFigures
from tui.ui.terminal_notify import clean
from tui.ui.widgets.format import fmt_count, fmt_ms, fmt_percent, fmt_rate
from tui.vocab import MISSING, outcome_tone

if TYPE_CHECKING:
    from tui.store.stats import Percentiles, SeriesPoint, SessionStats

WINDOWS: tuple[tuple[str, float | None], ...] = (
    ("last 10 min", 600.0),
    ("last hour", 3600.0),
    ("every run", None),
)
"""The monitor's windows: (label, seconds; None = every stored run)."""


@dataclass(frozen=True, slots=True)
class Charts:
    """The three series of the charts, oldest first, one value per time bucket (or per run
    without a store). A bucket without successful runs carries the TTFT and rate before it
    (:func:`carried`; a Sparkline takes numbers only); :attr:`empty` counts them."""

    ttft_ms: list[float]
    tokens_per_s: list[float]
    failures: list[float]
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    empty: int = 0
    per_run: bool = False
    """True: one point per run (the in-memory history), not per time bucket."""

    def label(self, title: str, values: Sequence[float], *, counts: bool = False) -> Content:
        """``TTFT p50 (ms)  min 210 · max 812 · 120 buckets 13:02-14:02``; with ``counts``
        (failures per bucket) ``total 8 · at most 3 per bucket``."""
        span = ""
        if self.per_run:
            span = f" · the last {len(values)} runs"
        elif self.start is not None and self.end is not None:
            length = self.end - self.start
            local = (
                "%H:%M:%S"
                if length < dt.timedelta(hours=1)
                else "%H:%M"
                if length < dt.timedelta(days=1)
                else "%m-%d %H:%M"
            )
            span = (
                f" · {len(values)} buckets {self.start.astimezone().strftime(local)}"
                f"-{self.end.astimezone().strftime(local)}"
            )
            if self.empty and not counts:
                span += f" ({self.empty} without runs carry the value before)"
        if counts:
            figures = f"total {sum(values):,.0f} · at most {max(values, default=0):,.0f} per " + (
                "run" if self.per_run else "bucket"
            )
        else:
            known = [v for v in values if v > 0]
            figures = f"min {min(known):,.0f} · max {max(known):,.0f}" if known else MISSING
        return Content.from_markup(
            "[b]$title[/]  $figures[$text-muted]$span[/]", title=title, figures=figures, span=span
        )


def carried(values: Sequence[float | None]) -> list[float]:
    """``values`` with each gap (None) holding the value before it (the first known value
    before the first one; 0 when none is known), so a bucket without runs is not drawn as
    a fall to zero."""
    known = next((v for v in values if v is not None), 0.0)
    filled: list[float] = []
    for value in values:
        if value is not None:
            known = value
        filled.append(known)
    return filled


def charts_of_series(points: Sequence[SeriesPoint]) -> Charts:
    """The charts of the store's series."""
    empty = sum(1 for p in points if p.ttft_p50_ms is None)
    return Charts(
        ttft_ms=carried([p.ttft_p50_ms for p in points]),
        tokens_per_s=carried([p.tokens_per_s_p50 for p in points]),
        failures=[float(p.failures) for p in points],
        start=points[0].start if points else None,
        end=points[-1].end if points else None,
        empty=empty,
    )


def charts_of_history(history: Sequence[RunSummary]) -> Charts:
    """The charts of the in-memory history: one point per run."""
    return Charts(
        ttft_ms=[h.ttft_ms or 0.0 for h in history],
        tokens_per_s=[h.tokens_per_s or 0.0 for h in history],
        failures=[
            1.0 if outcome_tone(h.status, h.finish_reason) == "failed" else 0.0 for h in history
        ],
        per_run=True,
    )


def _pair(p: Percentiles, fmt: str) -> str:
    if fmt == "ms":
        return f"p50 {fmt_ms(p.p50)} · p95 {fmt_ms(p.p95)}"
    return f"p50 {fmt_rate(p.p50)} · p95 {fmt_rate(p.p95)}"


def _ago(when: dt.datetime, now: dt.datetime) -> str:
    seconds = max(0.0, (now - when).total_seconds())
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def stats_summary(stats: SessionStats, now: dt.datetime | None = None) -> Content:
    """The summary lines of one session's stored figures."""
    now = now or dt.datetime.now(dt.UTC)
    counts = (
        f"✓ {stats.completed:,}  ▲ {stats.incomplete:,}  ✖ {stats.failed:,}  "
        f"■ {stats.cancelled:,}  interrupted {stats.interrupted:,}"
    )
    running = f" · {stats.running} running" if stats.running else ""
    failure = stats.last_failure
    if failure is None:
        last = "none in this window"
    else:
        when = failure.at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        status = f" {failure.error_status}" if failure.error_status else ""
        why = clean(failure.message or failure.finish_reason or "", 160) or MISSING
        last = f"{when} ({_ago(failure.at, now)}) · {failure.kind}{status}: {why}"
    return Content.from_markup(
        "[$text-muted]runs[/] [b]$runs[/]  ($counts)$running\n"
        "[$text-muted]success rate[/] [b]$rate[/] "
        "[$text-muted]of $judged judged (cancelled runs left out)[/]\n"
        "[$text-muted]last failure[/] $last\n"
        "[$text-muted]TTFT[/] $ttft   [$text-muted]tokens/s[/] $tps   "
        "[$text-muted]duration[/] $duration",
        runs=fmt_count(stats.runs),
        counts=counts,
        running=running,
        rate=fmt_percent(stats.success_rate),
        judged=f"{stats.successes + stats.failures:,}",
        last=last,
        ttft=_pair(stats.ttft_ms, "ms"),
        tps=_pair(stats.tokens_per_s, "rate"),
        duration=_pair(stats.duration_ms, "ms"),
    )


def memory_summary(figures: SessionFigures, live: SessionController) -> Content:
    """The summary lines without a store: the in-memory history's figures."""
    return Content.from_markup(
        "[$text-muted]runs[/] [b]$runs[/] in memory ($started started since the dashboard "
        "opened)\n"
        "[$text-muted]success rate[/] [b]$rate[/]\n"
        "[$text-muted]TTFT[/] p50 $p50 · p95 $p95   [$text-muted]tokens/s[/] p50 $tps\n"
        "[$text-muted]No store: the windows and the last failure need the database.[/]",
        runs=fmt_count(figures.runs),
        started=fmt_count(live.runs_started),
        rate=fmt_percent(figures.success_rate),
        p50=fmt_ms(figures.ttft_p50_ms),
        p95=fmt_ms(figures.ttft_p95_ms),
        tps=fmt_rate(figures.tokens_per_s_p50),
    )
