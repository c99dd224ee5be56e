"""RecordingStatus: one line at the top of a screen while the dashboard is not recording.

A toast about a store that failed goes away after a few seconds; the streams go on unsaved
for as long as the dashboard runs. This line stays while runs are not being saved (a write
error stopped the store, or the database could not be opened for writing at start), in the
failed colour, and goes as soon as its source says writing works again. It asks its source
a couple of times a second: one call that reads a few attributes.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.content import Content
from textual.widgets import Static

from tui.ui.ticker import Ticker, not_subscribed

CHECK_HZ = 2.0
"""How often the line asks whether runs are being saved."""

NOT_RECORDING = "● not recording: "
"""The start of the line (the cause follows)."""


class RecordingStatus(Static):
    """``● not recording: <cause>`` while ``problem()`` gives a cause; hidden otherwise."""

    DEFAULT_CSS = """
    RecordingStatus {
        dock: top;
        height: 1;
        padding: 0 1;
        display: none;
        background: $status-failed 20%;
        color: $status-failed;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    RecordingStatus.-shown { display: block; }
    """

    def __init__(self, problem: Callable[[], str | None], *, id: str | None = None) -> None:
        """Show what ``problem`` says (None: runs are saved, or there is no database)."""
        super().__init__("", id=id)
        self._problem = problem
        self._untick = not_subscribed
        self.problem: str | None = None
        """The cause shown now (None: the line is hidden)."""

    def on_mount(self) -> None:
        self.check()
        # asked while hidden too: the line is hidden until there is a problem to show
        self._untick = Ticker.of(self.app).subscribe(self, self.check, CHECK_HZ, when_hidden=True)

    def on_unmount(self) -> None:
        self._untick()

    def check(self) -> None:
        """Show the current cause, or hide the line once there is none."""
        problem = self._problem()
        if problem == self.problem:
            return
        self.problem = problem
        self.set_class(problem is not None, "-shown")
        if problem is not None:
            self.update(Content.assemble((NOT_RECORDING, "bold"), problem))
        self.tooltip = problem
