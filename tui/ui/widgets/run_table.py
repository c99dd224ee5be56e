"""RunTable: the history's table of saved runs, fitted to its width, with live figures for
the runs still streaming in this dashboard.

The columns are measured from their cells; the prompt column takes the width that is left
(at least :data:`PROMPT_MIN_WIDTH`), so the table fills the terminal when it grows and
shrinks back when it narrows, on every resize. A run that is running in this dashboard shows
the controller's live snapshot (tokens so far, TTFT, rolling tokens/s) instead of the
store's last checkpoint of it, updated in place by :meth:`RunTable.update_live`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
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

PROMPT_MIN_WIDTH = 12
"""The prompt column is never narrower than this (the table scrolls sideways instead)."""

PROMPT_MAX_CHARS = 400
"""The most of a prompt a cell holds (one line)."""

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


def _cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, an ellipsis marking a cut."""
    if cell_len(text) <= width:
        return text
    out = Text(text)
    out.truncate(width, overflow="ellipsis")
    return out.plain


class RunTable(DataTable[Any]):
    """Saved runs, one row each (keyed by run id), newest first."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.runs: list[RunSummary] = []
        """The runs shown, in table order."""
        self.live: dict[str, MetricsSnapshot] = {}
        """Live snapshots of the shown runs that are running in this dashboard."""
        self.prompt_width = 0
        """The prompt column's width now."""
        self._colours: dict[str, Style] = {}

    def show(self, runs: Sequence[RunSummary], live: Mapping[str, MetricsSnapshot]) -> None:
        """Show ``runs`` (the cursor stays on its row number), live figures from ``live``."""
        self.runs = list(runs)
        self.live = {run.run_id: live[run.run_id] for run in self.runs if run.run_id in live}
        self._build()

    def recolour(self) -> None:
        """A new theme: the status colours come from its variables."""
        self._build()

    def on_resize(self) -> None:
        """Fit the prompt column to the new width (grown or shrunk)."""
        if self.runs and self._prompt_width(self._cells()) != self.prompt_width:
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
        """The cells of one run (same order as :data:`COLUMNS`), the prompt whole."""
        prompt = " ".join(run.prompt[: PROMPT_MAX_CHARS * 2].split())[:PROMPT_MAX_CHARS]
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

    def _cells(self) -> list[tuple[str | Text, ...]]:
        return [self._row(run) for run in self.runs]

    def _fixed_widths(self, rows: list[tuple[str | Text, ...]]) -> list[int]:
        """The widths of every column but the prompt: their widest cell or label."""
        widths = [cell_len(label) for _, label in COLUMNS[:-1]]
        for row in rows:
            for index, cell in enumerate(row[:-1]):
                widths[index] = max(widths[index], cell_len(str(cell)))
        return widths

    def _prompt_width(self, rows: list[tuple[str | Text, ...]]) -> int:
        """What is left for the prompt at the table's width (the whole of the longest
        prompt when that is less)."""
        width = self.size.width or self.app.size.width
        if len(rows) + 1 > self.size.height:  # the vertical scrollbar takes its share
            width -= self.styles.scrollbar_size_vertical
        pad = 2 * self.cell_padding
        used = sum(w + pad for w in self._fixed_widths(rows)) + pad
        longest = max((cell_len(str(row[-1])) for row in rows), default=0)
        return max(PROMPT_MIN_WIDTH, cell_len(COLUMNS[-1][1]), min(width - used, longest))

    def _build(self) -> None:
        cursor = self.cursor_row
        self._colours = theme_styles(self.app.get_css_variables(), TONE_VARIABLES.values())
        rows = self._cells()
        self.prompt_width = prompt_width = self._prompt_width(rows)
        self.clear(columns=True)
        widths = [*self._fixed_widths(rows), prompt_width]
        for (key, label), width in zip(COLUMNS, widths, strict=True):
            self.add_column(label, key=key, width=width)
        for run, row in zip(self.runs, rows, strict=True):
            self.add_row(*row[:-1], _cut(str(row[-1]), prompt_width), key=run.run_id)
        if self.runs:
            self.move_cursor(row=min(max(cursor, 0), len(self.runs) - 1), animate=False)
