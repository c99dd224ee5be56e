"""PlainText: a Line-API view of a very long, growing text (toolong's approach).

Markdown widgets lay out and wrap every block on each layout refresh, so a 200k-token answer
gets slower with every flush. This widget keeps the text as wrapped rows: an append re-wraps
only the last logical line, its height is ``len(rows)`` (O(1) for the layout), and
:meth:`render_line` renders just the rows on screen.
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
        self._rows: list[str] = []
        self._last_start = 0
        """Index in ``_rows`` of the first row of the last logical line."""
        self._width = 0
        if text:
            self.append(text)

    @property
    def text(self) -> str:
        """Everything appended so far."""
        return "".join(self._parts)

    @property
    def row_count(self) -> int:
        """Wrapped rows at the current width."""
        return len(self._rows)

    def append(self, text: str) -> None:
        """Add ``text`` at the end (re-wraps only the last logical line)."""
        if not text:
            return
        self._parts.append(text)
        pieces = text.split("\n")
        self._lines[-1] += pieces[0]
        first_new = len(self._lines) - 1
        self._lines.extend(pieces[1:])
        if self._width:
            del self._rows[self._last_start :]
            for index in range(first_new, len(self._lines)):
                if index == len(self._lines) - 1:
                    self._last_start = len(self._rows)
                self._rows.extend(wrap_line(self._lines[index], self._width))
        self.refresh(layout=True)

    def _rewrap(self, width: int) -> None:
        self._width = width
        self._rows = []
        for line in self._lines[:-1]:
            self._rows.extend(wrap_line(line, width))
        self._last_start = len(self._rows)
        self._rows.extend(wrap_line(self._lines[-1], width))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if width != self._width:
            self._rewrap(width)
        return len(self._rows)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if width != self._width:
            self._rewrap(width)
        if not 0 <= y < len(self._rows):
            return Strip.blank(width, self.rich_style)
        style = self.rich_style
        return Strip([Segment(self._rows[y], style)]).adjust_cell_length(width, style)
