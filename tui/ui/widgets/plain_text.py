"""PlainText: a Line-API view of a very long, growing text.

Markdown widgets lay out and wrap every block on each layout refresh, so their cost grows
with the text. This widget keeps the text as wrapped rows: an append re-wraps only the last
logical line, its height is ``len(rows)`` (O(1) for the layout), and :meth:`render_line`
renders just the rows on screen.
"""

from __future__ import annotations

from rich.cells import cell_len, chop_cells
from rich.segment import Segment
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget


def wrap_line(line: str, width: int) -> list[str]:
    """Word-wrap one logical line into rows of at most ``width`` cells (never empty)."""
    if width <= 0 or cell_len(line) <= width:
        return [line]
    rows: list[str] = []
    current = ""
    current_len = 0
    for word in line.split(" "):
        word_len = cell_len(word)
        needed = word_len if not current else current_len + 1 + word_len
        if needed <= width:
            current = word if not current else f"{current} {word}"
            current_len = needed
            continue
        if current:
            rows.append(current)
        if word_len > width:  # a word longer than the row: chop it
            pieces = chop_cells(word, width)
            rows.extend(pieces[:-1])
            current = pieces[-1]
        else:
            current = word
        current_len = cell_len(current)
    rows.append(current)
    return rows


class _Wrapped:
    """The rows of the text at one width, and where its last logical line starts."""

    __slots__ = ("last_start", "rows")

    def __init__(self, lines: list[str], width: int) -> None:
        self.rows: list[str] = []
        for line in lines[:-1]:
            self.rows.extend(wrap_line(line, width))
        self.last_start = len(self.rows)
        self.rows.extend(wrap_line(lines[-1], width))


WIDTHS_KEPT = 3
"""Wrapped layouts kept per widget: a scroll view asks for the height with and without its
scrollbar, and a re-wrap of a long text costs O(text) each time the width flips."""


class PlainText(Widget):
    """A long text as wrapped rows; :meth:`append` is O(length of the last paragraph)."""

    DEFAULT_CSS = """
    PlainText { height: auto; width: 1fr; }
    """

    def __init__(
        self,
        text: str = "",
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._lines: list[str] = [""]
        """Logical lines (split on newlines); the last one may still grow."""
        self._parts: list[str] = []
        self._wrapped: dict[int, _Wrapped] = {}
        """Rows per width, most recently used last (at most :data:`WIDTHS_KEPT`)."""
        if text:
            self.append(text)

    @property
    def text(self) -> str:
        """Everything appended so far."""
        return "".join(self._parts)

    @property
    def row_count(self) -> int:
        """Wrapped rows at the current width."""
        return len(self._at(self.size.width).rows) if self.size.width else 0

    def append(self, text: str) -> None:
        """Add ``text`` at the end (re-wraps only the last logical line)."""
        if not text:
            return
        self._parts.append(text)
        pieces = text.split("\n")
        lines = self._lines
        lines[-1] += pieces[0]
        first_new = len(lines) - 1
        lines.extend(pieces[1:])
        last = len(lines) - 1
        for width, wrapped in self._wrapped.items():
            rows = wrapped.rows
            del rows[wrapped.last_start :]
            for index in range(first_new, last):
                rows.extend(wrap_line(lines[index], width))
            wrapped.last_start = len(rows)
            rows.extend(wrap_line(lines[last], width))
        self.refresh(layout=True)

    def _at(self, width: int) -> _Wrapped:
        wrapped = self._wrapped.pop(width, None)
        if wrapped is None:
            wrapped = _Wrapped(self._lines, width)
            while len(self._wrapped) >= WIDTHS_KEPT:
                del self._wrapped[next(iter(self._wrapped))]
        self._wrapped[width] = wrapped
        return wrapped

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._at(width).rows)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        rows = self._at(width).rows
        style = self.rich_style
        if not 0 <= y < len(rows):
            return Strip.blank(width, style)
        return Strip([Segment(rows[y], style)]).adjust_cell_length(width, style)
