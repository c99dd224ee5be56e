"""The ``on_alert`` command: a session's own program run once per alert, bounded.

The program is started with :func:`asyncio.create_subprocess_exec` (an argv list, never a
shell), its standard streams on ``/dev/null``, in a process group of its own, with the
environment of tokentop plus the alert's ``TOKENTOP_ALERT_*`` variables (:func:`alert_env`).
It never blocks the loop, and a program still running after the session's
``command_timeout_s`` is killed (its whole process group).

A flood of alerts does not fork a flood of processes: at most :data:`PER_SESSION` commands
of one session and :data:`TOTAL` in all run at once. An alert that finds no free slot waits
as the session's one pending alert; a later one replaces it and is counted, so when a slot
frees the command runs once for the latest alert, with ``TOKENTOP_ALERT_COALESCED`` (and
the message) saying how many alerts it stands for. That is said once per burst as a warning.
A program that cannot start, exits with an error or is killed is a warning naming the
session and the program (once per session and kind: a missing program alerting every
second says so once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.config import AlertRules
    from tui.session.alerts import Alert

log = logging.getLogger(__name__)

PER_SESSION = 2
"""``on_alert`` commands of one session running at once."""

TOTAL = 8
"""``on_alert`` commands running at once, all sessions together."""

REAP_S = 2.0
"""How long to wait for a killed command to be reaped."""

_POSIX = os.name == "posix"


def alert_number(value: float | None) -> str:
    """A value as a ``TOKENTOP_ALERT_*`` variable: plain decimal, empty when unknown."""
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def alert_time(at: float) -> str:
    """Wall time as ISO 8601 in UTC, to the millisecond."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def alert_env(alert: Alert, coalesced: int = 0) -> dict[str, str]:
    """The ``TOKENTOP_ALERT_*`` variables of ``alert`` (``coalesced`` earlier alerts of the
    session folded into this one)."""
    message = alert.message
    if coalesced:
        message += f" (and {coalesced} earlier alert(s) while commands were running)"
    return {
        "TOKENTOP_ALERT_SESSION": alert.session,
        "TOKENTOP_ALERT_METRIC": alert.metric,
        "TOKENTOP_ALERT_VALUE": alert_number(alert.value),
        "TOKENTOP_ALERT_THRESHOLD": alert_number(alert.threshold),
        "TOKENTOP_ALERT_MESSAGE": message,
        "TOKENTOP_ALERT_RUN_ID": alert.run_id,
        "TOKENTOP_ALERT_AT": alert_time(alert.at),
        "TOKENTOP_ALERT_COALESCED": str(coalesced),
    }


@dataclass(slots=True)
class _Session:
    """One session's commands: running, the one pending alert, what was said."""

    running: int = 0
    pending: Alert | None = None
    coalesced: int = 0
    """Alerts folded into ``pending`` besides itself."""
    said_coalescing: bool = False
    warned: set[str] = field(default_factory=set)


class AlertCommands:
    """The sink that runs each alert's session's ``on_alert`` command (see the module
    docstring). ``rules`` gives a session's rules by name; ``warn`` reports problems."""

    def __init__(
        self,
        rules: Callable[[str], AlertRules | None],
        warn: Callable[[str], None],
    ) -> None:
        self._rules = rules
        self._warn = warn
        self._sessions: dict[str, _Session] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self.running = 0
        """Commands running now."""
        self.started = 0
        """Commands started (tests, diagnostics)."""

    def __call__(self, alert: Alert) -> None:
        """Run (or queue) the command of ``alert``'s session, if it has one."""
        rules = self._rules(alert.session)
        if self._closing or rules is None or not rules.on_alert:
            return
        state = self._sessions.setdefault(alert.session, _Session())
        if self._can_start(state):
            self._start(alert, state, 0, rules)
            return
        if state.pending is not None:
            state.coalesced += 1
        state.pending = alert
        if not state.said_coalescing:
            state.said_coalescing = True
            self._warn(
                f"{alert.session}: on_alert {rules.on_alert[0]!r} is still running for earlier "
                "alerts; the next alerts are coalesced into one run"
            )

    def _can_start(self, state: _Session) -> bool:
        return state.running < PER_SESSION and self.running < TOTAL

    def _start(self, alert: Alert, state: _Session, coalesced: int, rules: AlertRules) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("%s: on_alert not run (no event loop)", alert.session)
            return
        state.running += 1
        self.running += 1
        self.started += 1
        task = loop.create_task(
            self._run(alert, state, coalesced, rules), name=f"on_alert:{alert.session}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _warn_once(self, state: _Session, kind: str, message: str) -> None:
        if kind not in state.warned:
            state.warned.add(kind)
            self._warn(message)

    async def _run(self, alert: Alert, state: _Session, coalesced: int, rules: AlertRules) -> None:
        argv = rules.on_alert or ()
        program = argv[0]
        try:
            await self._command(alert, state, coalesced, argv, rules.command_timeout_s)
        except Exception as exc:  # never let one command's trouble escape the task
            log.exception("on_alert of %s failed", alert.session)
            self._warn_once(state, "bug", f"{alert.session}: on_alert {program!r} failed: {exc}")
        finally:
            state.running -= 1
            self.running -= 1
            self._next()

    async def _command(
        self,
        alert: Alert,
        state: _Session,
        coalesced: int,
        argv: tuple[str, ...],
        timeout_s: float,
    ) -> None:
        program = argv[0]
        env = {**os.environ, **alert_env(alert, coalesced)}
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                start_new_session=_POSIX,
            )
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._warn_once(
                state,
                "start",
                f"{alert.session}: the on_alert command {program!r} could not start: {why}",
            )
            return
        try:
            async with asyncio.timeout(timeout_s):
                code = await proc.wait()
        except TimeoutError:
            await _kill(proc)
            self._warn_once(
                state,
                "timeout",
                f"{alert.session}: the on_alert command {program!r} was still "
                f"running after {alert_number(timeout_s)} s and was killed",
            )
            return
        except asyncio.CancelledError:  # the runtime closes: do not leave it behind
            await _kill(proc)
            raise
        if code != 0:
            self._warn_once(
                state,
                "exit",
                f"{alert.session}: the on_alert command {program!r} exited with status {code}",
            )

    def _next(self) -> None:
        """Start pending alerts while there are free slots (sessions in order of arrival)."""
        if self._closing:
            return
        for name, state in list(self._sessions.items()):
            pending = state.pending
            if pending is None:
                if state.running == 0:
                    state.said_coalescing = False  # the burst is over
                continue
            rules = self._rules(name)
            if rules is None or not rules.on_alert:
                state.pending = None
                continue
            if not self._can_start(state):
                if self.running >= TOTAL:
                    return
                continue
            state.pending, coalesced, state.coalesced = None, state.coalesced, 0
            self._start(pending, state, coalesced, rules)

    async def close(self, wait_s: float) -> None:
        """Start nothing more; wait up to ``wait_s`` for running commands, then kill them."""
        self._closing = True
        for state in self._sessions.values():
            state.pending = None
        tasks = list(self._tasks)
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=wait_s)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill ``proc`` (its process group on POSIX) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if _POSIX:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(REAP_S):
            await proc.wait()
