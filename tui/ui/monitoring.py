"""Monitoring: what the dashboard keeps about the sessions' runs over time, in one object.

The app owns one :class:`Monitoring`; screens read it: the finished-run tally (the header),
the monitoring figures (the overview's columns, the monitor screen), the runtime's alert
monitor (row and tab states, acknowledging) and the alert display (toast, bell,
notification). None of it is per run: its memory does not grow with the number of runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.app import App

from tui.config import UiConfig
from tui.session import SessionRuntime
from tui.ui.alert_display import AlertDisplay
from tui.ui.figures import FiguresCache
from tui.ui.tally import RunTally

if TYPE_CHECKING:
    from tui.session.alerts import AlertMonitor
    from tui.store import Store


class Monitoring:
    """The tally, the figures and the alerts of ``runtime``'s sessions, for ``app``'s views.

    ``store`` gives the open store the sessions record into (None: none, or closed)."""

    def __init__(
        self,
        app: App[Any],
        runtime: SessionRuntime,
        ui: UiConfig,
        store: Callable[[], Store | None],
    ) -> None:
        self.runtime = runtime
        self.tally = RunTally(runtime.controllers)
        """Every finished run of this dashboard, by session and outcome (the header's counts)."""
        self.figures = FiguresCache(runtime.controllers, store)
        """Each session's figures over the last hour (the overview's columns)."""
        self.tally.on_finish(self.figures.run_finished)
        self.alert_display = AlertDisplay(app, ui)
        """Toast, bell and desktop notification of each burst of alerts."""

    @property
    def alerts(self) -> AlertMonitor:
        """The runtime's alert monitor."""
        return self.runtime.alerts

    def start(self) -> None:
        """Show alerts from now on (the app calls this when it mounts)."""
        self.alert_display.attach(self.alerts)

    def alert_count(self, session_name: str) -> int:
        """How many of the session's alerts are unacknowledged."""
        return self.alerts.count(session_name)

    def acknowledge(self, session_name: str | None) -> int:
        """Acknowledge the session's alerts (None: every session's); returns how many."""
        monitor = self.alerts
        names = (
            [c.name for c in self.runtime.controllers] if session_name is None else [session_name]
        )
        count = sum(monitor.count(name) for name in names)
        monitor.acknowledge(session_name)
        return count

    async def aclose(self) -> None:
        """Stop the alert display and wait for a read of the store (before it closes)."""
        self.alert_display.detach()
        await self.figures.aclose()
        self.tally.close()
