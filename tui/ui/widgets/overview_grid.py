"""OverviewGrid: a DataTable whose cell updates re-render only the cells that changed.

Textual's ``DataTable.update_cell`` bumps one counter that is part of every render cache
key, and repaints the whole widget: after any update every visible cell is rendered again
(Rich measures and wraps each one), so a table of 64 streaming sessions spent about 100 ms
per refresh on cells that had not changed. This table keeps each cell's rendered lines
until that cell is written again (or the table's shape, sort, styles or size change), and
repaints only the rows that were written.

This relies on DataTable's private render path (``_render_cell``, its row and column
locations and the update counter); ``tests/ui/test_overview_grid.py`` fails when Textual
changes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.style import Style
from rich.text import Text
from textual._types import SegmentLines
from textual.geometry import Region
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, RowKey

CELL_VARIANTS = 16
"""Renderings kept per cell (cursor, hover, zebra, focus...); past it they start over."""


class OverviewGrid(DataTable[Text | str]):
    """A DataTable for values that change a few cells at a time (:meth:`write_cells`)."""

    def __init__(self, **kwargs: Any) -> None:
        # set first: DataTable's __init__ sets reactives whose watchers clear the caches
        self._rendered: dict[tuple[Any, Any], dict[tuple[Any, ...], SegmentLines]] = {}
        """Rendered lines per (row key, column key), per rendering context."""
        self._writes = 0
        """How many of the update counter's bumps were cell writes (the rest are changes of
        shape, sort or size, after which every kept rendering is dropped)."""
        self._shape = -1
        self.cells_rendered = 0
        """How many cells were rendered (tests: a write renders its cell, not the table)."""
        super().__init__(**kwargs)

    def write_cells(self, cells: Iterable[tuple[str, str, Text | str]]) -> None:
        """Set each ``(row key, column key, value)``; repaint only the rows written."""
        rows: set[int] = set()
        locations, columns, data = self._row_locations, self._column_locations, self._data
        for row_name, column_name, value in cells:
            row_key, column_key = RowKey(row_name), ColumnKey(column_name)
            if row_key not in locations or column_key not in columns:
                raise CellDoesNotExist(f"no cell {row_name!r}, {column_name!r}")
            data[row_key][column_key] = value
            self._rendered.pop((row_key, column_key), None)
            index = locations.get(row_key)
            if index is not None:
                rows.add(index)
        if not rows:
            return
        self._update_count += 1
        self._writes += 1
        # Each row's place from one pass over the heights (refresh_row sums the heights of
        # the rows above it for each row); rows out of the window are not repainted.
        tops = [self.header_height if self.show_header else 0]
        for row in self.ordered_rows:
            tops.append(tops[-1] + row.height)
        window = self.window_region
        width = max(self.size.width, self.virtual_size.width)
        for index in rows:
            region = Region(0, tops[index], width, tops[index + 1] - tops[index])
            if window.overlaps(region):
                self.refresh(region.translate(-self.scroll_offset))

    def update_cell(
        self,
        row_key: RowKey | str,
        column_key: ColumnKey | str,
        value: Text | str,
        *,
        update_width: bool = False,
    ) -> None:
        """Set one cell (see :meth:`write_cells`; ``update_width`` takes DataTable's way)."""
        if update_width:
            super().update_cell(row_key, column_key, value, update_width=True)
            return
        self.write_cells([(_name(row_key), _name(column_key), value)])

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> SegmentLines:
        shape = self._update_count - self._writes
        if shape != self._shape:
            self._shape = shape
            self._rendered.clear()
        if row_index == -1:
            row_key: RowKey | None = self._header_row_key
        else:
            row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:  # row labels: not cached here
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        kept = self._rendered.setdefault((row_key, column_key), {})
        context = (
            row_index,
            column_index,
            base_style,
            width,
            cursor,
            hover,
            self._show_hover_cursor,
            self._pseudo_class_state,
        )
        lines = kept.get(context)
        if lines is None:
            if len(kept) >= CELL_VARIANTS:
                kept.clear()
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            kept[context] = lines
            self.cells_rendered += 1
        return lines

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._rendered.clear()

    def notify_style_update(self) -> None:
        self._rendered.clear()
        super().notify_style_update()


def _name(key: RowKey | ColumnKey | str) -> str:
    return key if isinstance(key, str) else str(key.value)
