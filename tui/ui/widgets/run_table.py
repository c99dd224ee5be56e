"""RunTable: the history's table of saved runs, with live figures for the runs still
streaming in this dashboard.

A run that is running in this dashboard shows
the controller's live snapshot (tokens so far, TTFT, rolling tokens/s) instead of the
store's last checkpoint of it, updated in place by :meth:`RunTable.update_live`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable

from tui.ui.style import TONE_VARIABLES, theme_styles
from tui.ui.widgets.format import fmt_count, fmt_ms, fmt_rate
from tui.vocab import MISSING, outcome_tone

if TYPE_CHECKING:
    from tui.store.records import RunSummary
    from tui.stream.metrics import MetricsSnapshot

COLUMNS: tuple[tuple[str, str], ...] = (
    ("time", "time"),
    ("session", "session"),
    ("model", "model"),
    ("status", "status"),
    ("finish", "finish"),
    ("tokens", "tokens"),
    ("ttft", "TTFT"),
    ("rate", "tok/s"),
    ("prompt", "prompt"),
)
"""(column key, label) of the runs table, in order; the prompt takes the width left."""

PROMPT_CHARS = 60
"""The most of a prompt a cell shows."""

LIVE_CELLS = ("status", "tokens", "ttft", "rate")
"""The cells a live snapshot updates."""


def fmt_started(value: object) -> str:
    """A run's start time for the table: ``11-25 19:52:03`` (local time)."""
    when: datetime | None = None
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, int | float):
        when = datetime.fromtimestamp(value)
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return value
    if when is None:
        return MISSING
    if when.tzinfo is not None:
        when = when.astimezone()
    return when.strftime("%m-%d %H:%M:%S")


class RunTable(DataTable[Any]):
    """Saved runs, one row each (keyed by run id), newest first."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.runs: list[RunSummary] = []
        """The runs shown, in table order."""
        self.live: dict[str, MetricsSnapshot] = {}
        """Live snapshots of the shown runs that are running in this dashboard."""
        self._colours: dict[str, Style] = {}

    def show(self, runs: Sequence[RunSummary], live: Mapping[str, MetricsSnapshot]) -> None:
        """Show ``runs`` (the cursor stays on its row number), live figures from ``live``."""
        self.runs = list(runs)
        self.live = {run.run_id: live[run.run_id] for run in self.runs if run.run_id in live}
        self._build()

    def recolour(self) -> None:
        """A new theme: the status colours come from its variables."""
        self._build()

    def update_live(self, live: Mapping[str, MetricsSnapshot]) -> None:
        """Update the live cells of the shown runs found in ``live`` (in place)."""
        for run in self.runs:
            snapshot = live.get(run.run_id)
            if snapshot is None:
                continue
            self.live[run.run_id] = snapshot
            cells = dict(zip((key for key, _ in COLUMNS), self._row(run), strict=True))
            for key in LIVE_CELLS:
                self.update_cell(run.run_id, key, cells[key])

    # -- building ----

    def _row(self, run: RunSummary) -> tuple[str | Text, ...]:
        """The cells of one run (same order as :data:`COLUMNS`)."""
        prompt = " ".join(run.prompt.split())
        prompt = prompt[:PROMPT_CHARS] + ("…" if len(prompt) > PROMPT_CHARS else "")
        snapshot = self.live.get(run.run_id)
        status: str = run.status
        tokens, ttft, rate = run.output_tokens, run.ttft_ms, run.tokens_per_s
        finish = run.finish_reason
        if snapshot is not None:  # running in this dashboard: its live figures
            status, finish, tokens = "running", None, snapshot.output_tokens
            ttft = snapshot.ttft_ms
            rate = snapshot.rolling_tokens_per_s or snapshot.tokens_per_s
        tone = outcome_tone(status, finish)
        style = self._colours.get(TONE_VARIABLES[tone], Style())
        return (
            fmt_started(run.started_at),
            run.session,
            run.model or MISSING,
            Text(status, style=style),
            Text(finish or MISSING, style=style),
            Text(fmt_count(tokens), justify="right"),
            Text(fmt_ms(ttft), justify="right"),
            Text(fmt_rate(rate), justify="right"),
            prompt,
        )

    def _build(self) -> None:
        cursor = self.cursor_row
        self._colours = theme_styles(self.app.get_css_variables(), TONE_VARIABLES.values())
        self.clear(columns=True)
        for key, label in COLUMNS:
            self.add_column(label, key=key)
        for run in self.runs:
            self.add_row(*self._row(run), key=run.run_id)
        if self.runs:
            self.move_cursor(row=min(max(cursor, 0), len(self.runs) - 1), animate=False)
