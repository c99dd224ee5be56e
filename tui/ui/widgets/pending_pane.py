"""PendingPane: the light stand-in of a session pane until the first frame is on screen."""

from __future__ import annotations

from textual.widget import Widget

from tui.session import SessionController


class PendingPane(Widget):
    """Stands in for a session pane until the first frame is on screen.

    Session tabs start hidden, and a pane (transcript, Markdown, raw log, metrics) is the
    bulk of the screen's widgets and imports: they are built after the overview's first
    frame, so that frame does not wait for them. A pane that mounts mid-run catches up from
    the run's accumulator (:meth:`SessionPane.run_started`). Once mounted, the pane is
    entered in its screen's ``panes`` (by session index) and the stand-in removes itself.
    """

    DEFAULT_CSS = "PendingPane { display: none; }"

    def __init__(self, live: SessionController, index: int) -> None:
        super().__init__()
        self.live = live
        self.index = index

    def on_mount(self) -> None:
        self.call_after_refresh(self._swap)

    async def _swap(self) -> None:
        from tui.ui.widgets.session_pane import SessionPane

        parent = self.parent
        panes = getattr(self.screen, "panes", None)  # MainScreen.panes (no import cycle)
        if not isinstance(parent, Widget) or not isinstance(panes, dict):
            return
        pane = SessionPane(self.live, id=f"pane-{self.index}")
        await parent.mount(pane, after=self)
        panes[self.index] = pane
        await self.remove()
