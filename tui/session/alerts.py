"""Alerts: what a session's finished runs crossed (``alerts`` thresholds of the sessions file).

:class:`Alert` is what every sink receives: the store, ``tokentop run``'s printer, the
dashboard (row and tab state, bell, desktop notification), the ``on_alert`` command and the
Prometheus counters.

:func:`evaluate` is the rules, pure: one finished run (a :class:`RunOutcome`) and the
session's failure streak in, the alerts and the new streak out. :class:`AlertMonitor`
follows every session (a :class:`~tui.session.run.SessionListener`), evaluates each run when
its ``Finished`` arrives, keeps the alerts until acknowledged and hands each one to its
sinks. When the rules fire:

- ``ttft_ms``: the run's time to first token is above the bound (a run that never had a
  first token has no TTFT; any final status, since a later cancel does not change it);
- ``min_tokens_per_s``: a *completed* run with a known rate below the bound (a cut, failed
  or cancelled run is not "slow");
- ``max_duration_s``: the run took longer than the bound, start to end (any final status
  but ``cancelled``: the user decided when that one ended);
- ``on_failure``: the run failed (``incomplete`` is a cut answer, not a failure;
  ``cancelled`` never alerts);
- ``consecutive_failures``: the session's streak of failed runs reaches N: one alert per
  streak. A completed or incomplete run ends the streak; a cancelled run neither counts nor
  ends it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

from tui.stream.events import Finished, RunError, RunEvent

if TYPE_CHECKING:
    from tui.config import AlertRules
    from tui.session.controller import SessionController
    from tui.session.run import SessionRun
    from tui.vocab import RunStatus

log = logging.getLogger(__name__)

AlertMetric: TypeAlias = Literal[
    "ttft_ms", "min_tokens_per_s", "max_duration_s", "on_failure", "consecutive_failures"
]
"""Which rule of :class:`tui.config.schema.AlertRules` fired (its key in the sessions file)."""

ACTIVE_LIMIT = 8
"""Unacknowledged alerts kept per session (older ones are only counted)."""

REASON_CHARS = 120
"""A failure's reason in a message is cut to about this many characters."""

AlertSink: TypeAlias = Callable[["Alert"], None]
"""Called once per alert, on the loop of the runs, soon after the run ended."""


@dataclass(frozen=True, slots=True)
class Alert:
    """One crossed threshold of one run."""

    session: str
    run_id: str
    metric: AlertMetric
    value: float | None
    """What the run measured (ms, tokens/s, s, or the failures in a row); None for on_failure."""
    threshold: float | None
    """The configured bound (None for on_failure)."""
    message: str
    """One line that names the session, the metric, the value and the bound (redacted)."""
    at: float
    """Wall time (``time.time()``) when the run ended."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What the rules read of one finished run."""

    session: str
    run_id: str
    status: RunStatus
    ttft_ms: float | None
    tokens_per_s: float | None
    duration_s: float | None
    error: RunError | None = None

    @classmethod
    def of(cls, session: str, run: SessionRun, finished: Finished) -> RunOutcome:
        """The outcome of ``run``, which ``finished`` ended (its accumulator is done)."""
        snap = run.accumulator.metrics()
        return cls(
            session=session,
            run_id=run.run_id,
            status=finished.status,
            ttft_ms=snap.ttft_ms,
            tokens_per_s=snap.tokens_per_s,
            duration_s=snap.duration_s,
            error=finished.error,
        )


# -- the rules -----------------------------------------------------------------------------


def has_rules(rules: AlertRules) -> bool:
    """True when some rule of ``rules`` is set (a session that can alert)."""
    return bool(
        rules.on_failure
        or rules.ttft_ms is not None
        or rules.min_tokens_per_s is not None
        or rules.max_duration_s is not None
        or rules.consecutive_failures is not None
    )


def _bound(value: float) -> str:
    """A configured bound as typed: ``2,000``, ``2.5``."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"


def _measured(value: float, bound: float, decimals: int) -> str:
    """``value`` with ``decimals`` places, or more (up to 3) while it would read as the bound."""
    shown = _bound(bound)
    for places in range(decimals, 4):
        text = f"{value:,.{places}f}"
        if text != shown:
            return text
    return f"{value:,.3f}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def short_reason(error: RunError | None, redact: Callable[[str], str] | None = None) -> str:
    """One short line saying why a run failed (``HTTP 503: ...``), redacted, cut."""
    if error is None:
        return "unknown error"
    message = error.message
    if error.http_status and str(error.http_status) not in message:
        message = f"HTTP {error.http_status}: {message}"
    if redact is not None:
        message = redact(message)
    message = _CONTROL.sub(" ", message).strip() or error.kind
    if len(message) > REASON_CHARS:
        message = message[: REASON_CHARS - 1].rstrip() + "…"
    return message


def evaluate(
    rules: AlertRules,
    outcome: RunOutcome,
    failures: int,
    *,
    at: float,
    redact: Callable[[str], str] | None = None,
) -> tuple[list[Alert], int]:
    """The alerts ``outcome`` raises under ``rules``, and the failure streak after it.

    ``failures`` is the session's streak of failed runs before this one. ``redact`` blanks
    the session's secrets out of server text (a failure's reason). See the module docstring
    for when each rule fires."""
    alerts: list[Alert] = []
    name = _CONTROL.sub(" ", outcome.session)

    def fire(metric: AlertMetric, value: float | None, bound: float | None, text: str) -> None:
        alerts.append(
            Alert(outcome.session, outcome.run_id, metric, value, bound, f"{name}: {text}", at)
        )

    status = outcome.status
    ttft = outcome.ttft_ms
    if rules.ttft_ms is not None and ttft is not None and ttft > rules.ttft_ms:
        bound = rules.ttft_ms
        fire("ttft_ms", ttft, bound, f"ttft {_measured(ttft, bound, 0)} ms > {_bound(bound)} ms")
    rate = outcome.tokens_per_s
    if (
        rules.min_tokens_per_s is not None
        and status == "completed"
        and rate is not None
        and rate < rules.min_tokens_per_s
    ):
        bound = rules.min_tokens_per_s
        text = f"{_measured(rate, bound, 1)} tok/s < {_bound(bound)} tok/s"
        fire("min_tokens_per_s", rate, bound, text)
    duration = outcome.duration_s
    if (
        rules.max_duration_s is not None
        and status != "cancelled"
        and duration is not None
        and duration > rules.max_duration_s
    ):
        bound = rules.max_duration_s
        text = f"duration {_measured(duration, bound, 1)} s > {_bound(bound)} s"
        fire("max_duration_s", duration, bound, text)
    if status == "failed":
        failures += 1
        reason = short_reason(outcome.error, redact)
        if rules.on_failure:
            fire("on_failure", None, None, f"run failed: {reason}")
        n = rules.consecutive_failures
        if n is not None and failures == n:
            fire("consecutive_failures", failures, n, f"{failures} failures in a row: {reason}")
    elif status != "cancelled":  # completed or incomplete: the streak is over
        failures = 0
    return alerts, failures


# -- the monitor ---------------------------------------------------------------------------


class AlertMonitor:
    """Follows every session, raises its alerts and keeps them until acknowledged.

    A view polls :attr:`version` (bumped on every change) and reads :meth:`active`; sinks
    (:meth:`add_sink`) get each alert once, on the next turn of the loop after the run's
    ``Finished`` (so that every listener has seen the run first). :meth:`drain` delivers what
    is still queued at once (a runtime's close calls it before the store closes)."""

    def __init__(self) -> None:
        self.version = 0
        """Bumped on every change of the alerts kept (fired, acknowledged)."""
        self.total = 0
        """Alerts fired since the monitor was made."""
        self._active: dict[str, deque[Alert]] = {}
        self._counts: dict[str, int] = {}
        self._streaks: dict[str, int] = {}
        self._sinks: tuple[AlertSink, ...] = ()
        self._queue: list[Alert] = []
        self._scheduled = False

    # -- what the views read ----

    def active(self, session_name: str) -> tuple[Alert, ...]:
        """The session's unacknowledged alerts, oldest first (the latest :data:`ACTIVE_LIMIT`)."""
        kept = self._active.get(session_name)
        return tuple(kept) if kept else ()

    def count(self, session_name: str) -> int:
        """How many alerts of the session are unacknowledged (also those no longer kept)."""
        return self._counts.get(session_name, 0)

    def streak(self, session_name: str) -> int:
        """The session's current streak of failed runs."""
        return self._streaks.get(session_name, 0)

    def acknowledge(self, session_name: str | None = None) -> None:
        """Clear the session's alerts (``None``: every session's)."""
        names = list(self._counts) if session_name is None else [session_name]
        changed = False
        for name in names:
            if self._counts.pop(name, 0):
                changed = True
            self._active.pop(name, None)
        if changed:
            self.version += 1

    def add_sink(self, callback: AlertSink) -> Callable[[], None]:
        """Hand every later alert to ``callback``; returns the function that unsubscribes.
        A sink that raises is logged; the other sinks still get the alert."""
        self._sinks = (*self._sinks, callback)

        def remove() -> None:
            self._sinks = tuple(s for s in self._sinks if s is not callback)

        return remove

    # -- raising alerts ----

    def raise_alerts(self, alerts: Sequence[Alert]) -> None:
        """Keep ``alerts`` as active and queue them for the sinks."""
        if not alerts:
            return
        for alert in alerts:
            name = alert.session
            kept = self._active.get(name)
            if kept is None:
                kept = self._active[name] = deque(maxlen=ACTIVE_LIMIT)
            kept.append(alert)
            self._counts[name] = self._counts.get(name, 0) + 1
        self.total += len(alerts)
        self.version += 1
        self._queue.extend(alerts)
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven without a loop (a test feeding events): deliver now
            self._deliver()
            return
        self._scheduled = True
        loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        self._scheduled = False
        queue, self._queue = self._queue, []
        for alert in queue:
            for sink in self._sinks:
                try:
                    sink(alert)
                except Exception:
                    log.exception("an alert sink failed on an alert of %s", alert.session)

    async def drain(self) -> None:
        """Deliver every queued alert to the sinks now."""
        if self._queue:
            self._deliver()

    def run_finished(self, controller: SessionController, run: SessionRun) -> None:
        """Evaluate the session's rules on ``run``, which just ended."""
        finished = run.finished
        if finished is None:
            return
        rules = controller.session.alerts
        if not has_rules(rules):
            return
        name = controller.name
        redactor = run.redactor
        alerts, streak = evaluate(
            rules,
            RunOutcome.of(name, run, finished),
            self._streaks.get(name, 0),
            at=time.time(),
            redact=None if redactor is None else redactor.redactor.redact,
        )
        self._streaks[name] = streak
        self.raise_alerts(alerts)

    # -- SessionListener ----

    def run_started(self, session: SessionController, run: SessionRun) -> None:
        """Nothing to check until the run ends."""

    def run_events(
        self, session: SessionController, run: SessionRun, events: Sequence[RunEvent]
    ) -> None:
        """Evaluate the run when its last batch (ending with ``Finished``) arrives."""
        if events and type(events[-1]) is Finished:
            self.run_finished(session, run)
