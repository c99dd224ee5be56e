"""RunHistory: TTFT and tokens/s across the runs of a session (for ``repeat`` sessions)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.widgets import Static

from tui.session import RunSummary
from tui.ui.widgets.format import fmt_ms, fmt_rate, sparkline

HISTORY_WIDTH = 24
"""How many past runs the sparklines show."""


def history_content(history: Sequence[RunSummary]) -> Content:
    """``runs 5 · TTFT ▂▃ ▂▁ last 312 ms (min 280, max 410; 1 gap: no first token) · tok/s
    ▆▇ ▅▄ last 52.1``. A run without a TTFT (cancelled or failed before its first token)
    is a gap in both sparklines, never a zero bar, and the label counts the gaps."""
    if not history:
        return Content.from_markup("[$text-muted]no finished runs yet[/]")
    width = min(HISTORY_WIDTH, len(history))
    shown = list(history)[-width:]
    ttfts = [h.ttft_ms for h in shown]
    rates = [h.tokens_per_s if h.ttft_ms is not None else None for h in shown]
    failures = sum(1 for h in history if h.status == "failed")
    known_ttft = [v for v in ttfts if v is not None]
    notes = [f"min {fmt_ms(min(known_ttft))}, max {fmt_ms(max(known_ttft))}"] if known_ttft else []
    gaps = len(ttfts) - len(known_ttft)
    if gaps:
        notes.append(f"{gaps} {'gap' if gaps == 1 else 'gaps'}: no first token")
    return Content.from_markup(
        "[$text-muted]runs[/] [b]$runs[/]$fails · "
        "[$text-muted]TTFT[/] [$secondary]$ttft_spark[/] last [b]$ttft[/]$notes · "
        "[$text-muted]tok/s[/] [$primary]$rate_spark[/] last [b]$rate[/]",
        runs=str(len(history)),
        fails=f" ({failures} failed)" if failures else "",
        ttft_spark=sparkline(ttfts, width),
        ttft=fmt_ms(history[-1].ttft_ms),
        notes=f" ({'; '.join(notes)})" if notes else "",
        rate_spark=sparkline(rates, width),
        rate=fmt_rate(history[-1].tokens_per_s),
    )


GAPS_TOOLTIP = (
    "One mark per finished run, newest on the right. A run that ended before its first "
    "token (cancelled, or failed while connecting) has no TTFT and no rate: it is a gap, "
    "not a zero bar."
)


class RunHistory(Static):
    """One line of per-run history; :meth:`show` it with the session's history."""

    DEFAULT_CSS = """
    RunHistory { height: 1; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.tooltip = GAPS_TOOLTIP
        self._shown_key: tuple[int, str] | None = None

    def show(self, history: Sequence[RunSummary]) -> None:
        """Render ``history`` (skipped when nothing changed since the last call)."""
        key = (len(history), history[-1].run_id if history else "")
        if key == self._shown_key:
            return
        self._shown_key = key
        self.update(history_content(history))
