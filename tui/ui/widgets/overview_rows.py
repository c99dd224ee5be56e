"""The overview's rows and columns as data: what a row shows, how each column sorts, and
which columns fit a width (the least important ones go first)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text

from tui.session import SessionController
from tui.stream.metrics import MetricsSnapshot
from tui.ui.figures import SessionFigures
from tui.ui.style import ALERT_GLYPH, LOUD_TONES, STATE_VARIABLES, TONE_VARIABLES, alert_style
from tui.ui.widgets.format import fmt_count, fmt_elapsed, fmt_ms, fmt_percent, fmt_rate, sparkline
from tui.vocab import MISSING, SESSION_STATES, STATE_GLYPHS, outcome_tone


@dataclass(frozen=True, slots=True)
class RowData:
    """Everything one overview row shows, taken from a session at one instant."""

    live: SessionController
    snapshot: MetricsSnapshot | None
    figures: SessionFigures | None = None
    """The session's monitoring figures over the overview's window (None: not shown)."""
    alerts: int = 0
    """How many of the session's alerts are unacknowledged."""

    @property
    def ttft_ms(self) -> float | None:
        """Time to first token of the session's latest run (None before it)."""
        return self.snapshot.ttft_ms if self.snapshot else None

    @property
    def rate(self) -> float | None:
        """Tokens/s: the rolling rate while the run streams, the run's average once done."""
        if self.snapshot is None:
            return None
        if self.live.current is not None and not self.live.current.done:
            return self.snapshot.rolling_tokens_per_s
        return self.snapshot.tokens_per_s

    @property
    def output_tokens(self) -> int | None:
        """Output tokens of the latest run so far."""
        return self.snapshot.output_tokens if self.snapshot else None

    @property
    def elapsed_s(self) -> float | None:
        """Seconds the latest run has taken so far."""
        return self.snapshot.elapsed_s if self.snapshot else None

    @property
    def awaits_first_token(self) -> bool:
        """True while the latest run goes on and has not received its first token."""
        run = self.live.current
        return (
            run is not None
            and not run.done
            and (self.snapshot is None or self.snapshot.ttft_s is None)
        )

    @property
    def attempts(self) -> tuple[int, int]:
        """(requests sent, resumes) of the latest run."""
        acc = self.live.current.accumulator if self.live.current else None
        return (len(acc.attempts), acc.resumes) if acc else (0, 0)

    @property
    def finish(self) -> tuple[str | None, str | None]:
        """(status, finish reason) of the latest run; (None, None) until it ends."""
        run = self.live.current
        if run is None or run.finished is None:
            return (None, None)
        return (run.finished.status, run.finished.reason)

    def figure(self, pick: Callable[[SessionFigures], float | None]) -> float | None:
        """One of the monitoring figures (None without them)."""
        return None if self.figures is None else pick(self.figures)


WAIT_STEP_S = 5
"""A run still waiting for its first token shows its elapsed time in steps of this many
whole seconds: its row is then written once per step, not every second (a row's repaint
is ~1.5 ms, and a hundred sessions may wait at once)."""


def wait_elapsed(seconds: float | None) -> str:
    """The elapsed time of a run that waits for its first token, down to :data:`WAIT_STEP_S`
    (``15 s``, ``1m05s``)."""
    if seconds is None:
        return MISSING
    stepped = int(seconds) // WAIT_STEP_S * WAIT_STEP_S
    return f"{stepped} s" if stepped < 60 else fmt_elapsed(stepped)


TREND_CELLS = 12
"""Cells of the rate's sparkline."""

TURN_CELLS = 4
"""Cells the name column keeps for a conversation's turn (`` t12``), so it never jumps."""


def name_cell(live: SessionController) -> Text:
    """The session's name, and its turn (`` t3``, dim) once its conversation is past turn 1."""
    run = live.current
    if run is None or run.turn < 2:
        return Text(live.name, no_wrap=True)
    return Text.assemble(live.name, (f" t{run.turn}", "dim"), no_wrap=True)


def row_key(row: RowData) -> tuple[object, ...]:
    """What a row's cells are made from: the same key, the same cells (the overview skips
    such a row)."""
    live = row.live
    run = live.current
    return (
        live.version,
        live.state,
        row.snapshot,
        row.figures,
        row.alerts,
        run.run_id if run is not None else None,
        tuple(live.rate_samples),
    )


def _styled(styles: Mapping[str, Style], text: str, variable: str, bold: bool = False) -> Text:
    style = styles.get(variable, Style())
    return Text(text, style=style + Style(bold=bold) if bold else style, no_wrap=True)


def row_cells(row: RowData, styles: Mapping[str, Style]) -> dict[str, Text | str]:
    """Every cell of ``row`` by column key, coloured with the theme's ``styles``."""
    live = row.live
    state = live.state
    attempts, resumes = row.attempts
    status, reason = row.finish
    finish: Text | str = MISSING
    if reason is not None:
        tone = outcome_tone(status, reason)
        finish = _styled(
            styles, reason.replace("_", " "), TONE_VARIABLES[tone], bold=tone in LOUD_TONES
        )
    state_cell: Text
    if row.alerts:
        state_cell = Text(f"{ALERT_GLYPH} {state}", style=alert_style(styles), no_wrap=True)
    else:
        state_cell = _styled(
            styles, f"{STATE_GLYPHS[state]} {state}", STATE_VARIABLES[state], bold=state == "failed"
        )
    figures = row.figures
    waiting = row.awaits_first_token
    return {
        "state": state_cell,
        "name": name_cell(live),
        "model": Text(live.session.model, no_wrap=True),
        "api": live.session.api,
        "ttft": Text(fmt_ms(row.ttft_ms), justify="right"),
        "rate": Text(fmt_rate(row.rate), justify="right"),
        # no rate before the first token: a run of zero bars growing every second is noise
        # (and a row written every second)
        "trend": _styled(
            styles,
            " " * TREND_CELLS if waiting else sparkline(live.rate_samples, TREND_CELLS),
            STATE_VARIABLES["streaming"],
        ),
        "out": Text(fmt_count(row.output_tokens), justify="right"),
        "elapsed": Text(
            (wait_elapsed if waiting else fmt_elapsed)(row.elapsed_s),
            justify="right",
        ),
        "tries": Text(f"{attempts}/{resumes}", justify="right"),
        "finish": finish,
        "runs": Text(fmt_count(figures.runs if figures else None), justify="right"),
        "ok": Text(fmt_percent(figures.success_rate if figures else None), justify="right"),
        "p50": Text(fmt_ms(figures.ttft_p50_ms if figures else None), justify="right"),
        "p95": Text(fmt_ms(figures.ttft_p95_ms if figures else None), justify="right"),
        "rate50": Text(fmt_rate(figures.tokens_per_s_p50 if figures else None), justify="right"),
    }


@dataclass(frozen=True, slots=True)
class Column:
    """One overview column: its key, header, sort key and how much it matters."""

    key: str
    label: str
    sort_key: Callable[[RowData], tuple[float, str]]
    priority: int = 0
    """0 is always shown; at a narrow width the columns of the highest priorities go first
    (:func:`fit_columns`)."""
    width: int | None = None
    """Fixed width in cells (None: as wide as the longest value, for names and models).
    Fixed widths keep columns from jumping while values change."""


CELL_PADDING = 2
"""Cells a DataTable adds to each column (one on each side)."""


def fit_columns(
    columns: Sequence[Column], widths: Mapping[str, int], available: int
) -> list[Column]:
    """The columns that fit in ``available`` cells, in their own order: taken by priority
    (then declaration order), each one that still fits, so a width shows the most important
    columns whole rather than every column squashed. Priority 0 always shows."""
    chosen: set[str] = set()
    used = 0
    for column in sorted(columns, key=lambda c: c.priority):
        need = widths[column.key] + CELL_PADDING
        if column.priority > 0 and used + need > available:
            continue
        chosen.add(column.key)
        used += need
    return [c for c in columns if c.key in chosen]


def column_width(column: Column, sessions: Sequence[SessionController]) -> int:
    """The cells ``column`` takes: its fixed width, else its longest value (names keep
    :data:`TURN_CELLS` more for the turn); room for the header's sort marker, so sorting
    never changes the fit."""
    marker = 2
    if column.width is not None:
        return max(column.width, cell_len(column.label) + marker)
    extra = TURN_CELLS if column.key == "name" else 0
    texts = [live.name if column.key == "name" else live.session.model for live in sessions]
    return max([cell_len(column.label) + marker, *(cell_len(t) + extra for t in texts)])


def _num(value: float | None) -> tuple[float, str]:
    return (-1.0 if value is None else float(value), "")


COLUMNS: tuple[Column, ...] = (
    Column(
        "state",
        "status",
        lambda r: (float(SESSION_STATES.index(r.live.state)) - (100 if r.alerts else 0), ""),
        width=12,
    ),
    Column("name", "session", lambda r: (0.0, r.live.name.lower())),
    Column("model", "model", lambda r: (0.0, r.live.session.model.lower()), priority=5),
    Column("api", "api", lambda r: (0.0, r.live.session.api), priority=9, width=9),
    Column("ttft", "TTFT", lambda r: _num(r.ttft_ms), priority=1, width=6),
    Column("rate", "tok/s", lambda r: _num(r.rate), priority=1, width=6),
    Column("trend", "trend", lambda r: _num(r.rate), priority=9, width=12),
    Column("out", "out", lambda r: _num(r.output_tokens), priority=6, width=6),
    # the monitoring figures over the overview's window (tui.ui.figures)
    Column("runs", "runs", lambda r: _num(r.figure(lambda f: f.runs)), priority=2, width=5),
    Column("ok", "ok%", lambda r: _num(r.figure(lambda f: f.success_rate)), priority=2, width=4),
    Column("p50", "p50", lambda r: _num(r.figure(lambda f: f.ttft_p50_ms)), priority=4, width=6),
    Column("p95", "p95", lambda r: _num(r.figure(lambda f: f.ttft_p95_ms)), priority=3, width=6),
    Column(
        "rate50",
        "p50 t/s",
        lambda r: _num(r.figure(lambda f: f.tokens_per_s_p50)),
        priority=6,
        width=7,
    ),
    Column("elapsed", "elapsed", lambda r: _num(r.elapsed_s), priority=8, width=7),
    Column(
        "tries",
        "att/res",
        lambda r: (float(r.attempts[0] * 1000 + r.attempts[1]), ""),
        priority=7,
        width=7,
    ),
    Column("finish", "finish", lambda r: (0.0, r.finish[1] or ""), priority=3, width=14),
)
"""Every overview column in display order. The monitoring figures (runs, ok%, TTFT p50 and
p95, p50 tokens/s) outrank the details of the latest run at narrow widths."""
