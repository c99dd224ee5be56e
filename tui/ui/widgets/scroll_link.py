"""ScrollLink: scrolling one of a set of views scrolls the others to the same line."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.dom import DOMNode
from textual.widget import Widget


class ScrollLink:
    """Links the vertical scrolling of ``views`` while :attr:`linked` is True."""

    def __init__(self) -> None:
        self.linked = False
        """True while scrolling one view scrolls the others (shown ones only)."""
        self._views: list[Widget] = []
        self._syncing = False

    def follow(self, owner: DOMNode, views: Sequence[Widget]) -> None:
        """Watch the scrolling of ``views`` (for as long as ``owner`` lives)."""
        self._views = list(views)
        for view in self._views:
            owner.watch(view, "scroll_y", self._sync_from(view), init=False)

    def _sync_from(self, source: Widget) -> Callable[[float], None]:
        def sync(scroll_y: float) -> None:
            if not self.linked or self._syncing:
                return
            self._syncing = True
            try:
                for target in self._views:
                    if target is not source and target.display:
                        target.scroll_to(y=scroll_y, animate=False, immediate=True)
            finally:
                self._syncing = False

        return sync
