"""RunTally: every finished run of this dashboard, by session and outcome (repeats included).

A session's state says how its *latest* run ended; a repeating session is ``waiting`` or
``streaming`` most of the time, so counting states counts almost nothing. The tally is a
:class:`~tui.session.SessionListener` on every session: per batch it looks at the last event
only (a run's last batch ends with its :class:`~tui.stream.events.Finished`), so it costs
O(1) per batch and a few integers per session, however long the dashboard runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tui.session import SessionController, SessionRun
from tui.stream.events import Finished, RunEvent


@dataclass(slots=True)
class RunCounts:
    """Finished runs of one session since the dashboard started."""

    completed: int = 0
    """Runs that completed (a cut answer, ``length`` or ``content_filter``, included)."""
    incomplete: int = 0
    """Runs the server ended as incomplete."""
    failed: int = 0
    cancelled: int = 0

    @property
    def done(self) -> int:
        """Runs that ended with an answer: completed or incomplete (the header's "done")."""
        return self.completed + self.incomplete

    @property
    def finished(self) -> int:
        """Every finished run."""
        return self.completed + self.incomplete + self.failed + self.cancelled


FinishListener = Callable[[SessionController, Finished], None]
"""Called with the session and its run's :class:`Finished`, once per finished run."""


class RunTally:
    """Counts the finished runs of ``sessions`` from the moment it is made; :meth:`close`
    unsubscribes. :attr:`version` is bumped on every finished run (views skip work when it is
    unchanged); :meth:`on_finish` adds a callback for each finished run."""

    def __init__(self, sessions: Sequence[SessionController]) -> None:
        self.counts: dict[str, RunCounts] = {live.name: RunCounts() for live in sessions}
        self.version = 0
        self._callbacks: tuple[FinishListener, ...] = ()
        self._unsubscribe = [live.subscribe(self) for live in sessions]

    def close(self) -> None:
        """Stop counting."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    def on_finish(self, callback: FinishListener) -> Callable[[], None]:
        """Call ``callback`` on every finished run; returns the function that removes it."""
        self._callbacks = (*self._callbacks, callback)

        def remove() -> None:
            self._callbacks = tuple(c for c in self._callbacks if c is not callback)

        return remove

    def total(self) -> RunCounts:
        """The counts of every session added up."""
        total = RunCounts()
        for counts in self.counts.values():
            total.completed += counts.completed
            total.incomplete += counts.incomplete
            total.failed += counts.failed
            total.cancelled += counts.cancelled
        return total

    # -- SessionListener ----

    def run_started(self, live: SessionController, run: SessionRun) -> None:
        """Nothing to count until the run ends."""

    def run_events(
        self, live: SessionController, run: SessionRun, events: Sequence[RunEvent]
    ) -> None:
        """Count the run when this batch ends it."""
        if not events:
            return
        last = events[-1]
        if type(last) is not Finished:
            return
        counts = self.counts.setdefault(live.name, RunCounts())
        status = last.status
        if status == "completed":
            counts.completed += 1
        elif status == "failed":
            counts.failed += 1
        elif status == "cancelled":
            counts.cancelled += 1
        else:
            counts.incomplete += 1
        self.version += 1
        for callback in self._callbacks:
            callback(live, last)
