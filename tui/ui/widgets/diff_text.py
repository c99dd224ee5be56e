"""One side of a word diff with the changed words highlighted, the diff's summary line, and
the bar that picks the two sides."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.style import Style as VisualStyle
from textual.widget import Widget
from textual.widgets import Select, Static

from tui.ui.diff import SideKind, WordDiff

_SIDE_CLASS: dict[SideKind, str] = {
    "equal": "",
    "insert": "diff--insert",
    "delete": "diff--delete",
}


class DiffText(Widget):
    """One side of a word diff, with changed words highlighted.

    The highlight styles are the component classes ``diff--insert`` and ``diff--delete``
    (theme variables), resolved at render time so that a theme switch restyles them.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"diff--insert", "diff--delete"}
    DEFAULT_CSS = """
    DiffText { width: 1fr; height: auto; padding: 0 1; }
    DiffText > .diff--insert { background: $success-muted; color: $text; text-style: bold; }
    DiffText > .diff--delete { background: $error-muted; color: $text; text-style: strike; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.pieces: list[tuple[str, SideKind]] = []
        """The text to show, as (text, kind) pieces."""

    def show(self, pieces: list[tuple[str, SideKind]]) -> None:
        """Show these pieces (from :meth:`WordDiff.left_pieces` / ``right_pieces``)."""
        self.pieces = pieces
        self.refresh(layout=True)

    @property
    def highlighted(self) -> list[tuple[str, SideKind]]:
        """The pieces that are highlighted (inserted or deleted text)."""
        return [(text, kind) for text, kind in self.pieces if kind != "equal"]

    def change_lines(self) -> list[int]:
        """The line (at the current width) where each highlighted region starts."""
        width = self.content_region.width
        if width <= 0:
            return []
        starts: list[int] = []
        previous = False
        for number, line in enumerate(self.render().wrap(width)):
            if not line.plain.strip():
                continue  # a blank line inside a change does not end it
            # Only highlighted pieces carry a style (see render), so any span is a change.
            highlighted = bool(line.spans)
            if highlighted and not previous:
                starts.append(number)
            previous = highlighted
        return starts

    def render(self) -> Content:
        """The pieces as one Content, changed words in their component style."""
        styles = {
            kind: self.get_visual_style(cls) if cls else None for kind, cls in _SIDE_CLASS.items()
        }
        parts: list[str | tuple[str, VisualStyle]] = []
        for text, kind in self.pieces:
            style = styles[kind]
            parts.append(text if style is None else (text, style))
        return Content.assemble(*parts)


class DiffScroll(VerticalScroll):
    """Scrolls a :class:`DiffText`."""


def diff_summary(diff: WordDiff) -> Content:
    """``3 differences · 87% similar · removed added`` (the last two in the diff's styles),
    or ``identical answers``."""
    if diff.identical:
        return Content("identical answers")
    changes = diff.changed
    plural = "" if changes == 1 else "s"
    return Content.from_markup(
        f"{changes} difference{plural} · {diff.similarity():.0%} similar · "
        "[strike on $error-muted] removed [/] [b on $success-muted] added [/]"
    )


class DiffBar(Horizontal):
    """Picks the two sides of the diff (one select each) and shows the diff's summary."""

    DEFAULT_CSS = """
    DiffBar { height: auto; padding: 0 1; background: $boost; }
    DiffBar > Select { width: 30; }
    DiffBar > #diff-summary { width: 1fr; height: 3; content-align: left middle; padding: 0 1; }
    """

    @dataclass
    class PairChanged(Message):
        """Another pair of sides was picked."""

        pair: tuple[int, int]

    def __init__(self, names: Sequence[str], pair: tuple[int, int], *, id: str | None = None):
        """Offer ``names`` for each side, ``pair`` picked."""
        super().__init__(id=id)
        self._names = list(names)
        self._pair = pair

    def compose(self) -> ComposeResult:
        options = [(name, i) for i, name in enumerate(self._names)]
        yield Select[int](options, value=self._pair[0], allow_blank=False, id="diff-left")
        yield Select[int](options, value=self._pair[1], allow_blank=False, id="diff-right")
        yield Static("", id="diff-summary")

    @on(Select.Changed)
    def _picked(self, event: Select.Changed) -> None:
        event.stop()
        left = self.query_one("#diff-left", Select).value
        right = self.query_one("#diff-right", Select).value
        if isinstance(left, int) and isinstance(right, int):
            self.post_message(self.PairChanged((left, right)))

    def show_summary(self, diff: WordDiff) -> None:
        """Show what ``diff`` found."""
        self.query_one("#diff-summary", Static).update(diff_summary(diff))
