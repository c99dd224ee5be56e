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
    without a store). An empty bucket is 0 in the TTFT and rate series (a Sparkline takes
    numbers only); :attr:`empty` counts them."""

    ttft_ms: list[float]
    tokens_per_s: list[float]
    failures: list[float]
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    empty: int = 0
    per_run: bool = False
    """True: one point per run (the in-memory history), not per time bucket."""

    def label(self, title: str, values: Sequence[float]) -> Content:
        """``TTFT p50 (ms)  min 210 · max 812 · 120 buckets 13:02-14:02``."""
        known = [v for v in values if v > 0]
        span = ""
        if self.per_run:
            span = f" · the last {len(values)} runs"
        elif self.start is not None and self.end is not None:
            local = "%H:%M" if self.end - self.start < dt.timedelta(days=1) else "%m-%d %H:%M"
            span = (
                f" · {len(values)} buckets {self.start.astimezone().strftime(local)}"
                f"-{self.end.astimezone().strftime(local)}"
            )
        if not known:
            return Content.from_markup("[b]$title[/]  $none$span", title=title, none="–", span=span)
        total = f"total {sum(values):,.0f} · " if title.startswith("failed") else ""
        return Content.from_markup(
            "[b]$title[/]  $total$range$span",
            title=title,
            total=total,
            range=f"min {min(known):,.0f} · max {max(known):,.0f}",
            span=span,
        )


def charts_of_series(points: Sequence[SeriesPoint]) -> Charts:
    """The charts of the store's series."""
    empty = sum(1 for p in points if p.ttft_p50_ms is None)
    return Charts(
        ttft_ms=[p.ttft_p50_ms or 0.0 for p in points],
        tokens_per_s=[p.tokens_per_s_p50 or 0.0 for p in points],
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
