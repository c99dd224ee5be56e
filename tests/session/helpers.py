"""Helpers for the session tests: a listener and a recorder that keep what they got, a
controller that traces its states and polling with a deadline (never a bare sleep as a
guarantee)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import httpx

from tui.config import SessionConfig
from tui.session import SessionController, SessionRun
from tui.session.states import phase
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import Finished, RunEvent
from tui.vocab import SessionState

FAST = "ttft=0.01,tps=0,tokens=20"
"""A short answer sent as fast as possible."""

SLOW = "ttft=0.01,tps=20,tokens=2000"
"""An answer that would stream for 100 s."""

STALL = "stall=5"
"""Fault: five events, then the connection stays open and silent (first attempt of a key
only, so a second run of the same key streams normally)."""

DEADLINE_S = 15.0
"""How long a poll waits before the test fails (generous: the machine may be loaded)."""


async def until(predicate: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    """Poll ``predicate`` until it holds; fail the test naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.005)


def state_of(controller: SessionController) -> str:
    """The controller's state, read afresh (keeps mypy from narrowing it across awaits)."""
    return controller.state


def controller_for(
    session: SessionConfig, client: httpx.AsyncClient, sim_url: str, **kwargs: object
) -> TracedController:
    """A controller whose ``sim`` requests go to the test simulator at ``sim_url``."""

    async def resolve(_: SessionConfig) -> str:
        return sim_url

    return TracedController(
        session,
        client=client,
        resolve_base_url=resolve,
        **kwargs,  # type: ignore[arg-type]
    )


def count_requests(client: httpx.AsyncClient) -> list[httpx.Request]:
    """The requests ``client`` sends from now on (a list that grows)."""
    sent: list[httpx.Request] = []

    async def note(request: httpx.Request) -> None:
        sent.append(request)

    client.event_hooks["request"].append(note)
    return sent


class Follower:
    """A listener that keeps every call, with the session's state and phase at that moment."""

    def __init__(self) -> None:
        self.runs: list[SessionRun] = []
        self.start_times: list[float] = []
        self.events: dict[str, list[RunEvent]] = {}
        self.phases: list[str] = []
        self.log: list[tuple[str, str, str]] = []
        """``("started", run_id, "")`` and ``("finished", run_id, status)`` in call order."""

    def run_started(self, session: SessionController, run: SessionRun) -> None:
        """Keep the run and when it started."""
        self.runs.append(run)
        self.start_times.append(time.monotonic())
        self.events[run.run_id] = []
        self.log.append(("started", run.run_id, ""))

    def run_events(
        self, session: SessionController, run: SessionRun, events: Sequence[RunEvent]
    ) -> None:
        """Keep the events and the phase the session shows after them."""
        self.events[run.run_id].extend(events)
        self.phases.append(session.phase)
        for event in events:
            if isinstance(event, Finished):
                self.log.append(("finished", run.run_id, event.status))

    def finished(self, run_id: str) -> list[Finished]:
        """The Finished events ``run_id`` delivered."""
        return [e for e in self.events[run_id] if isinstance(e, Finished)]


class Broken:
    """A listener that raises on every call."""

    calls = 0

    def run_started(self, session: SessionController, run: SessionRun) -> None:
        """Raise."""
        self.calls += 1
        raise RuntimeError("listener bug on start")

    def run_events(
        self, session: SessionController, run: SessionRun, events: Sequence[RunEvent]
    ) -> None:
        """Raise."""
        self.calls += 1
        raise RuntimeError("listener bug on events")


class FakeRecorder:
    """A :class:`~tui.session.RunRecorder` that keeps what it was given; ``fail`` makes
    ``start_run`` and ``add_events`` raise, ``hold`` makes ``start_run`` wait for it."""

    def __init__(self, *, fail: bool = False, hold: asyncio.Event | None = None) -> None:
        self.fail = fail
        self.hold = hold
        self.entered = False
        self.started: list[tuple[SessionConfig, str, str, RunAccumulator | None]] = []
        self.events: dict[str, list[RunEvent]] = {}
        self.turns: dict[str, tuple[str | None, int]] = {}
        """Per run id: ``(conversation_id, turn)`` as given."""
        self.done_at_finished: list[bool] = []
        """For each Finished received: was the shared accumulator already done?"""
        self.closed = False

    async def start_run(
        self,
        session: SessionConfig,
        *,
        prompt: str,
        run_id: str,
        accumulator: RunAccumulator | None = None,
        conversation_id: str | None = None,
        turn: int = 1,
        lag_source: object | None = None,
        broadcast_id: str | None = None,
    ) -> str:
        """Keep the arguments (or raise, or wait); the turns in :attr:`turns`."""
        self.entered = True
        if self.hold is not None:
            await self.hold.wait()
        if self.fail:
            raise OSError("disk full")
        self.started.append((session, prompt, run_id, accumulator))
        self.turns[run_id] = (conversation_id, turn)
        self.events[run_id] = []
        return run_id

    def add_events(self, run_id: str, events: Sequence[RunEvent]) -> None:
        """Keep the events (or raise)."""
        if self.fail:
            raise OSError("disk full")
        self.events[run_id].extend(events)
        accumulator = next(a for _, _, r, a in self.started if r == run_id)
        for event in events:
            if isinstance(event, Finished):
                self.done_at_finished.append(accumulator is not None and accumulator.done)

    async def flush(self) -> None:
        """Nothing is queued."""

    async def close(self) -> None:
        """Note the close."""
        self.closed = True


class TracedController(SessionController):
    """A controller that logs every change of its state as it is made, with the phase the
    session shows then and ``(runs_started, runs_finished)``: exact whatever the load, where
    sampling could miss a short state."""

    trace: list[tuple[str, str, int, int]]

    @property
    def state(self) -> SessionState:
        """The session's state (see :class:`SessionController`)."""
        return self._traced_state

    @state.setter
    def state(self, value: SessionState) -> None:
        self._traced_state = value
        if not hasattr(self, "trace"):
            self.trace = []
        if not self.trace or self.trace[-1][0] != value:
            # __init__ sets the first state before the other attributes exist
            shown = phase(value, getattr(self, "current", None))
            counts = (getattr(self, "runs_started", 0), getattr(self, "runs_finished", 0))
            self.trace.append((value, shown, *counts))

    def states(self) -> list[str]:
        """The states the session went through, in order (consecutive repeats merged)."""
        return [entry[0] for entry in self.trace]


class AlertKeeper(FakeRecorder):
    """A :class:`FakeRecorder` that also keeps alerts (an ``AlertRecorder``), each as the
    keyword arguments it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.alerts: list[dict[str, object]] = []

    def record_alert(
        self,
        *,
        session: str,
        run_id: str,
        metric: str,
        value: float | None,
        threshold: float | None,
        message: str,
        at: float,
    ) -> None:
        """Keep the alert."""
        self.alerts.append(
            {
                "session": session,
                "run_id": run_id,
                "metric": metric,
                "value": value,
                "threshold": threshold,
                "message": message,
                "at": at,
            }
        )
