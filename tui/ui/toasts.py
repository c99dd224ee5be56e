"""ToastBatcher: many messages in a short time become one toast, never a stack of them.

A repeating session that fails every half second, or a burst of alerts, would otherwise
stack a toast per run. A batcher gathers the messages of :data:`GATHER_S` into one toast,
and holds later ones while its toast is still on screen (then shows them together), so at
most one toast of each batcher is visible at a time. What it keeps is bounded: the first
:data:`LINES_SHOWN` different messages (a repeated one is counted, ``(×3)``) and a count of
the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.notifications import SeverityLevel
from textual.timer import Timer

from tui.vocab import CUT_REASONS

if TYPE_CHECKING:
    from tui.session import SessionController
    from tui.stream.events import Finished

GATHER_S = 0.3
"""Messages that arrive within this long of the first one share its toast."""

LINES_SHOWN = 3
"""A toast lists this many messages, then "and N more"."""


class ToastBatcher:
    """One kind of toast (``title``, ``severity``) for messages that may come in bursts.

    ``on_show`` is called with the number of messages each time a toast is shown (the alert
    display rings the bell there: once per toast, not once per alert)."""

    def __init__(
        self,
        app: App[Any],
        *,
        title: str,
        severity: SeverityLevel = "information",
        timeout: float = 6.0,
        on_show: Callable[[list[str], int], None] | None = None,
    ) -> None:
        self.app = app
        self.title = title
        self.severity = severity
        self.timeout = timeout
        self.on_show = on_show
        self.shown = 0
        """How many toasts were shown (tests)."""
        self._repeats: dict[str, int] = {}
        """The first :data:`LINES_SHOWN` different messages, each with how often it came."""
        self._count = 0
        self._timer: Timer | None = None
        self._next_at = 0.0

    @property
    def pending(self) -> int:
        """Messages waiting for the next toast."""
        return self._count

    def add(self, message: str) -> None:
        """Show ``message`` in the next toast (plain text: never read as markup)."""
        if message in self._repeats:
            self._repeats[message] += 1
        elif len(self._repeats) < LINES_SHOWN:
            self._repeats[message] = 1
        self._count += 1
        if self._timer is None:
            delay = max(GATHER_S, self._next_at - time.monotonic())
            self._timer = self.app.set_timer(delay, self._show, name=f"toast:{self.title}")

    def _show(self) -> None:
        self._timer = None
        repeats, count = self._repeats, self._count
        self._repeats, self._count = {}, 0
        if not count:
            return
        lines = [m if n == 1 else f"{m} (×{n})" for m, n in repeats.items()]
        text = "\n".join(lines)
        listed = sum(repeats.values())
        if count > listed:
            text += f"\n… and {count - listed} more"
        title = self.title if count == 1 else f"{self.title} ({count})"
        self.app.notify(
            text, title=title, severity=self.severity, timeout=self.timeout, markup=False
        )
        self.shown += 1
        # the next toast of this kind waits until this one is gone
        self._next_at = time.monotonic() + self.timeout
        if self.on_show is not None:
            self.on_show(lines, count)

    def stop(self) -> None:
        """Drop what is pending (the app is closing)."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._repeats, self._count = {}, 0


class RunEndToasts:
    """The toasts of runs that end out of view, one :class:`ToastBatcher` per kind, so that
    four sessions failing, or cut by ``length``, or finishing at once make one toast of each
    kind, never a stack of four: :attr:`failed`, :attr:`cut` and :attr:`finished`."""

    def __init__(self, app: App[Any]) -> None:
        self.failed = ToastBatcher(app, title="Run failed", severity="error")
        """Failed runs (``"<session> failed: <why>"``)."""
        self.cut = ToastBatcher(app, title="Run cut", severity="warning")
        """Answers cut short (``"<session> ended: length"``)."""
        self.finished = ToastBatcher(app, title="Run finished", timeout=3.0)
        """Runs that completed out of view (``"<session> finished (stop)"``)."""

    def run_ended(
        self, live: SessionController, finished: Finished, *, seen_on_overview: bool
    ) -> None:
        """Toast the end of a run of ``live`` that was not in view, when it is a surprise:
        a completed run of a repeating session, or one whose row the overview shows
        (``seen_on_overview``), says so there; a cancelled run was the user's doing; a
        failure with an ``on_failure`` alert has the alert's toast."""
        routine = live.session.repeat is not None or seen_on_overview
        status, name = finished.status, live.name
        if (routine and status == "completed") or status == "cancelled":
            return
        if status == "failed":
            if not live.session.alerts.on_failure:
                why = finished.error.message if finished.error else finished.reason
                self.failed.add(f"{name} failed: {why}")
        elif status == "incomplete" or finished.reason in CUT_REASONS:
            self.cut.add(f"{name} ended: {finished.reason}")
        else:
            self.finished.add(f"{name} finished ({finished.reason})")

    def stop(self) -> None:
        """Drop what is pending (the screen is going away)."""
        for batcher in (self.failed, self.cut, self.finished):
            batcher.stop()
