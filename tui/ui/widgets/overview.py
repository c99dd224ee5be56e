"""OverviewTable: one row per session, updated from immutable snapshots at 5 Hz.

Never per token: 5 times a second while it is on screen (the app's
:class:`~tui.ui.ticker.Ticker`) it reads each :class:`~tui.session.SessionController`'s
cached snapshot; a row whose session did not change is skipped, only cells whose text
changed are written, and only those are rendered again
(:class:`~tui.ui.widgets.overview_grid.OverviewGrid`). Sortable by any column (``s`` / ``S`` or a
click on the header), filterable with the input above the table (``/``), ``enter`` opens
the session (posts :class:`OverviewTable.SessionChosen`). The monitoring columns (runs,
success rate, TTFT p50/p95, p50 tokens/s over the last hour) come from a
:class:`~tui.ui.figures.FiguresCache`; a caption beside the filter says where they come
from. A narrow terminal drops the least important columns
(:func:`~tui.ui.widgets.overview_rows.fit_columns`) instead of squashing all of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.theme import Theme
from textual.widgets import DataTable, Input, Static

from tui.session import SessionController
from tui.ui.figures import FiguresCache
from tui.ui.keymap import BINDING_IDS
from tui.ui.style import (
    STYLED_VARIABLES,
    theme_styles,
)
from tui.ui.ticker import Ticker, not_subscribed
from tui.ui.widgets.overview_grid import OverviewGrid
from tui.ui.widgets.overview_rows import (
    COLUMNS,
    Column,
    RowData,
    column_width,
    fit_columns,
    row_cells,
    row_key,
)
from tui.ui.widgets.preview import SessionPreview

log = logging.getLogger(__name__)

OVERVIEW_HZ = 5.0
"""Row refresh rate."""

CLOCK_ONLY_S = 1.0
"""A row whose session received nothing new (only its clock moved: elapsed, a decaying
rate) is written at most this often."""

TALL_FROM = 30
"""From this height on, the selected session's preview shows under the table."""

SCROLLBAR_CELLS = 2
"""Kept free for the table's vertical scrollbar when the columns are fitted to the width."""


class OverviewTable(Vertical):
    """All sessions at a glance; filter, sort, open."""

    DEFAULT_CSS = """
    OverviewTable { height: 1fr; }
    OverviewTable SessionPreview { display: none; }
    OverviewTable.-tall SessionPreview { display: block; }
    OverviewTable.-tall DataTable { height: auto; max-height: 60%; }
    OverviewTable #overview-top { height: 1; }
    OverviewTable #overview-filter { height: 1; border: none; padding: 0 1; width: 1fr; }
    OverviewTable #overview-caption { height: 1; width: auto; padding: 0 1; }
    OverviewTable DataTable { height: 1fr; }
    """

    BINDING_GROUP_TITLE = "Overview"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "slash",
            "focus_filter",
            "Filter",
            id="overview.filter",
            tooltip=BINDING_IDS["overview.filter"],
        ),
        Binding("s", "sort_next", "Sort", id="overview.sort", tooltip=BINDING_IDS["overview.sort"]),
        Binding(
            "S",
            "sort_reverse",
            "Reverse",
            id="overview.sort_reverse",
            tooltip=BINDING_IDS["overview.sort_reverse"],
        ),
        Binding(
            "escape",
            "clear_filter",
            "Clear filter",
            id="overview.clear_filter",
            tooltip=BINDING_IDS["overview.clear_filter"],
            show=False,
        ),
    ]

    @dataclass
    class SessionChosen(Message):
        """The user chose a session (enter on its row)."""

        name: str

    def __init__(
        self,
        sessions: Sequence[SessionController],
        *,
        figures: FiguresCache | None = None,
        alerts: Callable[[str], int] | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.sessions = list(sessions)
        self.figures = figures
        """The monitoring figures (None: those columns stay empty)."""
        self._alerts = alerts
        self.sort_column = "name"
        self.sort_reverse = False
        self.filter_text = ""
        self._columns: list[Column] = list(COLUMNS)
        self._caption = ""
        self._cells: dict[str, dict[str, str]] = {}
        self._row_keys: dict[str, tuple[object, ...]] = {}
        """Per row, what its cells were made from (a row whose key is unchanged is skipped)."""
        self._rows: dict[str, RowData] = {}  # the last data per row (a quiet row sorts by it)
        self._quiet: dict[str, tuple[object, ...]] = {}
        self._looked_at: dict[str, float] = {}
        self._order: list[str] = []
        self._styles: dict[str, Style] = {}
        self._untick = not_subscribed
        # kept, not queried: the ticker may refresh the rows while the app tears them down
        self._grid = OverviewGrid(id="overview-table", cursor_type="row", zebra_stripes=True)
        self._caption_line = Static("", id="overview-caption", markup=False)
        self._preview = SessionPreview(id="overview-preview")
        self.refreshes = 0
        """How many times the rows were refreshed (tests wait on it)."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="overview-top"):
            yield Input(placeholder="filter sessions (/)", id="overview-filter")
            yield self._caption_line
        yield self._grid
        yield self._preview

    @property
    def table(self) -> OverviewGrid:
        """The sessions table."""
        return self._grid

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)
        self._styles = self._theme_styles()
        self._columns = self._fit(self.size.width or self.app.size.width)
        self._rebuild()
        self._untick = Ticker.of(self.app).subscribe(self, self._tick, OVERVIEW_HZ)

    def on_unmount(self) -> None:
        self._untick()

    def on_resize(self) -> None:
        # Tall terminals get a preview of the selected session under the table.
        self.set_class(self.size.height >= TALL_FROM, "-tall")
        columns = self._fit(self.size.width)
        if columns != self._columns:
            self._columns = columns
            self._rebuild()

    def _fit(self, width: int) -> list[Column]:
        widths = {c.key: self._width(c) for c in COLUMNS}
        return fit_columns(COLUMNS, widths, width - SCROLLBAR_CELLS)

    def _width(self, column: Column) -> int:
        return column_width(column, self.sessions)

    def on_show(self) -> None:
        self.call_after_refresh(self._tick)

    def catch_up(self) -> None:
        """Bring every row and the preview up to the sessions' state now, shown or not: the
        screen calls it just before the overview is shown again and when a run starts or
        ends, so no frame shows an earlier run's figures."""
        self._tick(hidden_too=True)
        self._preview.refresh_preview(hidden_too=True)

    def _tick(self, *, hidden_too: bool = False) -> None:
        # A bad refresh is logged and the table rebuilt, so the next tick starts clean.
        try:
            self.refresh_rows(hidden_too=hidden_too)
        except Exception:
            log.exception("overview refresh failed; rebuilding the table")
            try:
                self._rebuild()
            except Exception:
                log.exception("overview rebuild failed")

    def _theme_changed(self, theme: Theme) -> None:
        self._styles = self._theme_styles()
        # Every cell is rewritten in the new colours. Only the per-row caches are emptied:
        # the rows (the keys) must keep matching the table (else: an empty rank, KeyError).
        for shown in self._cells.values():
            shown.clear()
        self._forget_rows()
        self._tick()

    def _forget_rows(self) -> None:  # every row is looked at again on the next refresh
        for kept in (self._row_keys, self._rows, self._quiet, self._looked_at):
            kept.clear()

    def _theme_styles(self) -> dict[str, Style]:
        return theme_styles(self.app.get_css_variables(), STYLED_VARIABLES)

    # -- rows ----

    @property
    def columns(self) -> list[Column]:
        """The columns shown at the current width."""
        return list(self._columns)

    @property
    def visible_names(self) -> list[str]:
        """Session names currently in the table, in display order."""
        return list(self._order)

    def _matches(self, live: SessionController) -> bool:
        needle = self.filter_text.strip().lower()
        if not needle:
            return True
        hay = f"{live.name} {live.session.model} {live.session.api} {live.state}".lower()
        return all(part in hay for part in needle.split())

    def _rebuild(self) -> None:
        table = self.table
        selected = self._selected_name()
        table.clear(columns=True)
        for column in self.columns:
            marker = ""
            if column.key == self.sort_column:
                marker = " ▼" if self.sort_reverse else " ▲"
            table.add_column(column.label + marker, key=column.key, width=self._width(column))
        self._cells.clear()
        self._forget_rows()
        rows = self._sorted_rows([live for live in self.sessions if self._matches(live)])
        self._order = [r.live.name for r in rows]
        for row in rows:
            cells = self._row_cells(row)
            self._cells[row.live.name] = {k: str(v) for k, v in cells.items()}
            table.add_row(*[cells[c.key] for c in self.columns], key=row.live.name)
        if selected in self._order:
            table.move_cursor(row=self._order.index(selected), animate=False)

    def _selected_name(self) -> str | None:
        if not self._order:
            return None
        row = self.table.cursor_row
        return self._order[row] if 0 <= row < len(self._order) else None

    @property
    def selected_session(self) -> SessionController | None:
        """The session under the cursor (None when the table is empty)."""
        name = self._selected_name()
        return next((s for s in self.sessions if s.name == name), None)

    def _row(self, live: SessionController) -> RowData:
        figures = self.figures.get(live) if self.figures is not None else None
        alerts = self._alerts(live.name) if self._alerts is not None else 0
        return RowData(live, live.snapshot(), figures, alerts)

    def _sorted_rows(self, sessions: Sequence[SessionController]) -> list[RowData]:
        return self._sort([self._row(live) for live in sessions])

    def _sort(self, rows: list[RowData]) -> list[RowData]:
        column = next((c for c in COLUMNS if c.key == self.sort_column), COLUMNS[1])
        rows.sort(key=lambda r: (column.sort_key(r), r.live.name), reverse=self.sort_reverse)
        return rows

    def _row_cells(self, row: RowData) -> dict[str, Text | str]:
        return row_cells(row, self._styles)

    def refresh_rows(self, *, hidden_too: bool = False) -> None:
        """Write changed cells, and re-sort when the order changed (5 Hz timer); only while
        on screen unless ``hidden_too`` (see :meth:`catch_up`)."""
        if not hidden_too and not self.is_on_screen:
            return  # a hidden overview catches up when it is shown again
        self._show_caption()
        table = self.table
        changed: list[tuple[str, str, Text | str]] = []
        now = time.monotonic()
        rows: list[RowData] = []
        for live in self.sessions:
            name = live.name
            if name not in self._cells:
                continue  # filtered out
            # A session that received nothing (only its clock moved: elapsed, a decaying
            # rate) is looked at again once a second: no snapshot, no cells until then.
            quiet = (live.version, live.state, live.current and live.current.run_id)
            kept = self._rows.get(name)
            if (
                kept is not None
                and not hidden_too
                and self._quiet.get(name) == quiet
                and now - self._looked_at.get(name, 0.0) < CLOCK_ONLY_S
            ):
                rows.append(kept)
                continue
            row = self._rows[name] = self._row(live)
            rows.append(row)
            self._quiet[name] = quiet
            self._looked_at[name] = now
            key = row_key(row)
            if self._row_keys.get(name) == key:
                continue
            self._row_keys[name] = key
            cells = self._row_cells(row)
            shown = self._cells.setdefault(name, {})
            for column in self.columns:
                value = cells[column.key]
                plain = f"{value}|{getattr(value, 'style', '')}"
                if shown.get(column.key) != plain:
                    shown[column.key] = plain
                    changed.append((name, column.key, value))
        table.write_cells(changed)
        order = [r.live.name for r in self._sort(rows)]
        if order != self._order:
            rank = {name: i for i, name in enumerate(order)}
            table.sort("name", key=lambda cell: rank[str(cell)])
            self._order = order
        self.refreshes += 1

    def _show_caption(self) -> None:
        figures = self.figures
        if figures is None:
            caption = ""
        elif figures.from_store:
            caption = "runs · ok% · TTFT p50/p95 · p50 t/s: last hour"
        else:
            caption = "runs · ok% · p50/p95: last runs in memory (no store)"
        if caption != self._caption:
            self._caption = caption
            self._caption_line.update(caption)

    # -- actions ----

    def action_focus_filter(self) -> None:
        """Move focus to the filter input."""
        self.query_one("#overview-filter", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Escape is the filter's only while it has text or focus; otherwise the key does
        what it does on the screen."""
        if action == "clear_filter":
            field = self.query_one("#overview-filter", Input)
            return bool(field.value) or field.has_focus
        return True

    def action_clear_filter(self) -> None:
        """Empty the filter (every session shows again) and go back to the table."""
        field = self.query_one("#overview-filter", Input)
        if field.value:
            field.value = ""
            self.filter_text = ""
            self._rebuild()
        self.table.focus()

    def action_sort_next(self) -> None:
        """Sort by the next column."""
        keys = [c.key for c in self.columns]
        index = keys.index(self.sort_column) if self.sort_column in keys else -1
        self.sort_by(keys[(index + 1) % len(keys)])

    def action_sort_reverse(self) -> None:
        """Reverse the sort order."""
        self.sort_by(self.sort_column, reverse=not self.sort_reverse)

    def sort_by(self, column: str, *, reverse: bool | None = None) -> None:
        """Sort by ``column`` (a column key); ``reverse`` None keeps the direction."""
        self.sort_column = column
        if reverse is not None:
            self.sort_reverse = reverse
        self._rebuild()

    @on(DataTable.HeaderSelected)
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key == self.sort_column:
            self.sort_by(key, reverse=not self.sort_reverse)
        else:
            self.sort_by(key, reverse=False)

    @on(Input.Changed, "#overview-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._rebuild()

    @on(Input.Submitted, "#overview-filter")
    def _filter_submitted(self) -> None:
        self.table.focus()

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._preview.show_session(self.selected_session)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.SessionChosen(str(event.row_key.value)))
