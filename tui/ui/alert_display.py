"""AlertDisplay: what the dashboard does when an alert fires.

The row and tab states are drawn by the overview and the main screen from
:meth:`~tui.session.alerts.AlertMonitor.count`; this object is the *signal*: one toast per
burst of alerts (:class:`~tui.ui.toasts.ToastBatcher`), and with that toast the terminal
bell (``[ui] alert_bell``) and a desktop notification through the terminal
(``[ui] alert_notify``: :mod:`tui.ui.terminal_notify`). Alert messages are already redacted
by the monitor; the notification text is also stripped of control characters.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from textual.app import App

from tui.config import UiConfig
from tui.ui.terminal_notify import clean, notification
from tui.ui.textual_private import write_to_terminal
from tui.ui.toasts import ToastBatcher

if TYPE_CHECKING:
    from tui.session.alerts import Alert, AlertMonitor

NOTIFY_TITLE = "tokentop alert"


class AlertDisplay:
    """Toast, bell and desktop notification for the alerts of a monitor (:meth:`attach`).

    ``write`` sends an escape sequence to the terminal (default: through the app's driver;
    tests pass their own); ``env`` is where the terminal is recognised (default: os.environ).
    """

    def __init__(
        self,
        app: App[Any],
        ui: UiConfig,
        *,
        write: Callable[[str], object] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.ui = ui
        self.write: Callable[[str], object] = write or (lambda data: write_to_terminal(app, data))
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.toasts = ToastBatcher(
            app, title="Alert", severity="warning", timeout=8.0, on_show=self._signal
        )
        self.bells = 0
        """How many times the bell was rung (tests)."""
        self.notifications = 0
        """How many desktop notifications were sent (tests)."""
        self._detach: Callable[[], None] | None = None

    def attach(self, monitor: AlertMonitor) -> None:
        """Show every later alert of ``monitor``."""
        self.detach()
        self._detach = monitor.add_sink(self.alert_fired)

    def detach(self) -> None:
        """Stop showing alerts (and drop what is pending)."""
        if self._detach is not None:
            self._detach()
            self._detach = None
        self.toasts.stop()

    def alert_fired(self, alert: Alert) -> None:
        """An alert sink: called on the app's loop for each alert."""
        self.toasts.add(clean(alert.message, 300))

    def _signal(self, lines: list[str], count: int) -> None:
        if self.ui.alert_bell:
            self.app.bell()
            self.bells += 1
        if self.ui.alert_notify:
            body = lines[0] if count == 1 else f"{lines[0]} (and {count - 1} more)"
            self.write(notification(NOTIFY_TITLE, body, self.env))
            self.notifications += 1
