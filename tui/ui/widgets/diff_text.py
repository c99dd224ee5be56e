"""One side of a word diff with the changed words highlighted, and the diff's summary line."""

from __future__ import annotations

from typing import ClassVar

from textual.containers import VerticalScroll
from textual.content import Content
from textual.style import Style as VisualStyle
from textual.widget import Widget

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
