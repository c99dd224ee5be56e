"""LiveSession: the controller that owns one session's runs (not a widget).

One :class:`LiveSession` per configured session. It starts :class:`~tui.stream.runner.StreamRun`
in a Textual worker on its *owner* node (the app), keeps a
:class:`~tui.stream.accumulate.RunAccumulator` per run, forwards every event to the store and
to its listeners, and keeps a bounded history of past runs for ``repeat`` sessions.

Why a worker on the app and not on the pane: runs must outlive and precede any view (the
overview, the compare screen and a session pane all watch the same run, and a pane may be
created after the run started). Workers are named ``stream:<session>`` so tests can wait for
them with ``app.workers.wait_for_complete()`` and the app cancels them on exit. Each session
gets its own worker group, so sessions never cancel each other; within a session, a new run
first *gracefully* cancels the old one (``StreamRun.cancel()`` emits ``Finished(cancelled)``,
which reaches the store) and waits for it, instead of using ``exclusive=True`` which would
kill the old worker before its last event.

Listeners (views) implement :class:`LiveListener`; their exceptions are reported, never
allowed to stop the stream. Everything here runs on the app's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias, cast

from textual.dom import DOMNode
from textual.worker import Worker

from tui.config import SessionConfig
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import (
    Connecting,
    Finished,
    RawEvent,
    Resumed,
    Retrying,
    RunError,
    RunEvent,
    Started,
    new_run_id,
)
from tui.stream.metrics import MetricsSnapshot

if TYPE_CHECKING:  # imported when a run starts: the first frame does not wait for them
    import httpx

    from tui.store import Store
    from tui.stream.runner import StreamRun

log = logging.getLogger(__name__)

LiveState: TypeAlias = Literal[
    "queued",
    "connecting",
    "streaming",
    "retrying",
    "resumed",
    "waiting",
    "done",
    "incomplete",
    "failed",
    "cancelled",
]
"""What the overview shows: live states, ``waiting`` (a repeat session between runs), and
the final states (``done`` = completed)."""

FINAL_STATES: dict[str, LiveState] = {
    "completed": "done",
    "incomplete": "incomplete",
    "failed": "failed",
    "cancelled": "cancelled",
}

_BOUNDARY_EVENTS: frozenset[type[RunEvent]] = frozenset(
    {Connecting, Started, Retrying, Resumed, Finished}
)

RAW_EVENT_LIMIT = 1_500
"""Debug events kept per run for the raw view (older ones are dropped)."""

HISTORY_LIMIT = 50
"""Past runs kept per session for the repeat history."""

RATE_SAMPLE_S = 0.5
"""Spacing of the tokens/s samples behind the overview sparkline."""

RawTuple: TypeAlias = tuple[float, int, str | None, str, str | None]
"""A :class:`RawEvent` as ``(t, attempt, event, data, id)``: a tuple of atoms, which the
garbage collector stops tracking, so thousands of kept raw events cost no GC pauses (as
event objects they made full collections of 100+ ms under load)."""

DebugEvent: TypeAlias = Connecting | Started | RawTuple | Retrying | Resumed | Finished
"""What the raw view shows: SSE events (as :data:`RawTuple`) and the attempt boundaries."""


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One finished run, for the history of ``repeat`` sessions."""

    run_id: str
    ttft_ms: float | None
    tokens_per_s: float | None
    output_tokens: int | None
    status: str
    finish_reason: str


@dataclass(slots=True)
class LiveRun:
    """One run of a session as the dashboard sees it."""

    run_id: str
    prompt: str
    accumulator: RunAccumulator
    started_at: float
    """Wall-clock time (``time.time()``) the run was started."""
    debug_events: deque[DebugEvent] = field(default_factory=lambda: deque(maxlen=RAW_EVENT_LIMIT))
    finished: Finished | None = None
    events: int = 0
    attempt_events: list[DebugEvent] = field(default_factory=list)
    """The attempt boundaries (connecting, started with headers, retrying, resumed,
    finished): few, and never dropped, unlike the raw events."""
    debug_total: int = 0
    """How many debug events were ever appended (the deque keeps the last ones)."""

    @property
    def done(self) -> bool:
        """True once the run's :class:`Finished` event arrived."""
        return self.finished is not None


@dataclass(slots=True)
class _LoopControl:
    """Cancellation state of one run loop (a new start gets a fresh one)."""

    stop: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    stream: StreamRun | None = None

    def cancel(self) -> None:
        self.stop = True
        self.wake.set()
        if self.stream is not None:
            self.stream.cancel()


class LiveListener(Protocol):
    """A view that follows a :class:`LiveSession` (overview row, session pane, compare column)."""

    def run_started(self, live: LiveSession, run: LiveRun) -> None:
        """A new run began: reset whatever shows the previous one."""

    def run_events(self, live: LiveSession, run: LiveRun, events: Sequence[RunEvent]) -> None:
        """The next events of ``run``, as they arrived together (one network read): keep it
        O(events), buffer, render later."""


StoreErrorHandler: TypeAlias = Callable[[str, BaseException], None]
"""Called as ``handler(session_name, exc)`` when the store refuses something."""


class LiveSession:
    """Owns the run lifecycle of one session: ``start``, ``cancel``, ``restart``."""

    def __init__(
        self,
        session: SessionConfig,
        *,
        owner: DOMNode,
        client: httpx.AsyncClient | None = None,
        ready: Callable[[], Awaitable[object]] | None = None,
        store: Store | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_store_error: StoreErrorHandler | None = None,
        resolve_simulator: Callable[[], str] | None = None,
    ) -> None:
        self.session = session
        self.prompt = session.prompt
        """The prompt of the next run (``edit prompt`` changes it)."""
        self.store = store
        self.state: LiveState = "queued"
        self.current: LiveRun | None = None
        self.history: deque[RunSummary] = deque(maxlen=HISTORY_LIMIT)
        self.rate_samples: deque[float] = deque(maxlen=32)
        """Recent tokens/s samples of the current run (for sparklines)."""
        self.runs_started = 0
        self.version = 0
        """Bumped on every event: views compare it to skip work when nothing changed."""
        self._owner = owner
        self.client = client
        """The HTTP client of the runs (the app sets it after its first frame)."""
        self._ready = ready
        self._clock = clock
        self._on_store_error = on_store_error
        self._resolve_simulator = resolve_simulator
        self._listeners: tuple[LiveListener, ...] = ()
        """Copy-on-write, so that the per-event loop needs no copy."""
        self._worker: Worker[None] | None = None
        self._control = _LoopControl()
        self._snapshot: MetricsSnapshot | None = None
        self._snapshot_key: tuple[int, float] = (-1, -1.0)
        self._last_sample = 0.0

    # -- identity ----

    @property
    def name(self) -> str:
        """The session's name (unique in the config)."""
        return self.session.name

    @property
    def running(self) -> bool:
        """True while a run (or a repeat schedule) is active."""
        return self._worker is not None and not self._worker.is_finished

    @property
    def worker(self) -> Worker[None] | None:
        """The worker of the current run loop (None before the first start)."""
        return self._worker

    # -- listeners ----

    def subscribe(self, listener: LiveListener) -> Callable[[], None]:
        """Follow this session; returns the function that unsubscribes."""
        self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    # -- lifecycle ----

    def start(self, prompt: str | None = None) -> Worker[None]:
        """Start a new run (with ``prompt``, else the current prompt). A running run is
        cancelled first (gracefully: its ``Finished(cancelled)`` is recorded)."""
        if prompt is not None:
            self.prompt = prompt
        previous = self._worker
        self._control.cancel()
        self._control = control = _LoopControl()
        self._worker = self._owner.run_worker(
            self._run_loop(self.prompt, previous, control),
            name=f"stream:{self.name}",
            group=f"stream:{self.name}",
            exit_on_error=False,
        )
        return self._worker

    def restart(self) -> Worker[None]:
        """Cancel the current run (if any) and run the same prompt again."""
        return self.start()

    def cancel(self) -> None:
        """End the current run (``Finished(cancelled)``) and stop any repeat schedule."""
        self._control.cancel()

    async def _run_loop(
        self, prompt: str, previous: Worker[None] | None, control: _LoopControl
    ) -> None:
        if previous is not None and not previous.is_finished:
            try:
                await previous.wait()
            except Exception:  # the old run's failure is already reported
                log.debug("previous run of %s ended with an error", self.name)
        count = 0
        while not control.stop:
            started = time.monotonic()
            await self._one_run(prompt, control)
            count += 1
            repeat = self.session.repeat
            if repeat is None or control.stop or (repeat.count and count >= repeat.count):
                return
            self.state = "waiting"
            self.version += 1
            # every_s runs from one start to the next (as `tokentop run` does); a run longer
            # than that is followed by the next one at once
            delay = started + repeat.every_s - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(control.wake.wait(), timeout=delay)

    async def _base_url(self) -> str:
        if not self.session.is_simulated:
            return self.session.base_url
        if self._resolve_simulator is not None:
            return self._resolve_simulator()
        from tui.sim.server import shared_simulator

        # Starting the simulator waits for its thread to listen: keep that off the loop.
        return await asyncio.to_thread(shared_simulator)

    def begin_run(self, prompt: str, *, run_id: str | None = None) -> LiveRun:
        """Make a new run current and tell the listeners (the run loop calls this; a test or
        a replay feed may call it and then :meth:`handle_event` to drive the views)."""
        session = self.session
        run_id = run_id or new_run_id()
        acc = RunAccumulator(
            run_id, session.name, session.api, session.model, prompt, clock=self._clock
        )
        run = LiveRun(run_id=run_id, prompt=prompt, accumulator=acc, started_at=time.time())
        self.current = run
        self.runs_started += 1
        self.rate_samples.clear()
        self.state = "connecting"
        self.version += 1
        for listener in self._listeners:
            try:
                listener.run_started(self, run)
            except Exception:
                log.exception("listener failed on run start of %s", self.name)
        return run

    async def _one_run(self, prompt: str, control: _LoopControl) -> None:
        if self._ready is not None:  # the app opens its store and client after the first frame
            await self._ready()
        session = self.session
        run = self.begin_run(prompt)
        run_id = run.run_id
        if self.store is not None:
            try:
                # the store reads the run's state from this session's accumulator, which
                # handle_events feeds before it hands the events to the store
                await self.store.start_run(
                    session, prompt=prompt, run_id=run_id, accumulator=run.accumulator
                )
            except Exception as exc:
                self._store_failed(exc)
        t0 = self._clock()
        try:
            from tui.stream.runner import StreamRun

            if self.client is None:
                raise RuntimeError("no HTTP client yet")
            try:
                base_url = await self._base_url()
            except Exception as exc:  # only the built-in simulator can fail to start here
                error = RunError("connect", f"the built-in simulator did not start: {exc}")
                self.handle_event(run, Finished(self._clock() - t0, "failed", "error", None, error))
                return
            stream = StreamRun(
                session, client=self.client, base_url=base_url, prompt=prompt, clock=self._clock
            )
            control.stream = stream
            if control.stop:  # cancelled while the run was being set up
                stream.cancel()
            async for batch in stream.batches():
                self.handle_events(run, batch)
        except asyncio.CancelledError:
            if run.finished is None:
                self.handle_event(
                    run, Finished(self._clock() - t0, "cancelled", "cancelled", None, None)
                )
            raise
        except Exception as exc:  # an engine bug must not end the app: fail this run only
            log.exception("run %s of %s crashed", run_id, self.name)
            if run.finished is None:
                error = RunError("protocol", f"tokentop internal error: {exc!r}")
                self.handle_event(run, Finished(self._clock() - t0, "failed", "error", None, error))
        finally:
            control.stream = None
        if run.finished is None:  # the iterator ended without Finished: never pretend success
            error = RunError("truncated", "the run ended without a final event")
            self.handle_event(run, Finished(self._clock() - t0, "failed", "truncated", None, error))

    def handle_event(self, run: LiveRun, event: RunEvent) -> None:
        """Fold one event into the run, the store and the listeners."""
        self.handle_events(run, (event,))

    def handle_events(self, run: LiveRun, events: Sequence[RunEvent]) -> None:
        """Fold the events of one network read into the run, then hand them to the store and
        to each listener in one call (per-event work stays O(1) and call overhead per batch)."""
        apply = run.accumulator.apply
        debug = run.debug_events.append
        raw = 0
        for event in events:
            apply(event)
            cls = type(event)
            if cls is RawEvent:
                r = cast(RawEvent, event)
                debug((r.t, r.attempt, r.event, r.data, r.id))
                raw += 1
            elif cls in _BOUNDARY_EVENTS:
                self._note_boundary(run, event)
        run.events += len(events)
        run.debug_total += raw
        self.version += 1
        if self.store is not None:
            try:
                self.store.add_events(run.run_id, events)
            except Exception as exc:
                self._store_failed(exc)
        for listener in self._listeners:
            try:
                listener.run_events(self, run, events)
            except Exception:
                log.exception("listener failed on events of %s", self.name)

    def _note_boundary(self, run: LiveRun, event: RunEvent) -> None:
        """An attempt boundary: keep it for the raw view and move the session state."""
        assert isinstance(event, (Connecting, Started, Retrying, Resumed, Finished))
        run.debug_events.append(event)
        run.attempt_events.append(event)
        run.debug_total += 1
        if isinstance(event, Connecting):
            if self.state not in ("retrying", "resumed"):
                self.state = "connecting"
        elif isinstance(event, Started):
            if self.state != "resumed":
                self.state = "streaming"
        elif isinstance(event, Retrying):
            self.state = "retrying"
        elif isinstance(event, Resumed):
            self.state = "resumed"
        else:
            run.finished = event
            self.state = FINAL_STATES[event.status]
            self._record_history(run)

    def _record_history(self, run: LiveRun) -> None:
        snap = run.accumulator.metrics()
        self._snapshot = snap
        self._snapshot_key = (self.version, -1.0)
        finished = run.finished
        assert finished is not None
        self.history.append(
            RunSummary(
                run_id=run.run_id,
                ttft_ms=snap.ttft_ms,
                tokens_per_s=snap.tokens_per_s,
                output_tokens=snap.output_tokens,
                status=finished.status,
                finish_reason=finished.reason,
            )
        )

    def _store_failed(self, exc: BaseException) -> None:
        if self._on_store_error is not None:
            self._on_store_error(self.name, exc)
        else:
            log.warning("store error in %s: %s", self.name, exc)

    # -- metrics ----

    def snapshot(self) -> MetricsSnapshot | None:
        """The current run's metrics (None before the first run).

        Cached per event version and 0.1 s of wall time, so any number of views can poll it
        at their own rate; also samples tokens/s for :attr:`rate_samples`.
        """
        run = self.current
        if run is None:
            return None
        now = self._clock()
        key = (self.version, -1.0 if run.done else round(now, 1))
        if key != self._snapshot_key or self._snapshot is None:
            self._snapshot = run.accumulator.metrics()
            self._snapshot_key = key
            if not run.done and now - self._last_sample >= RATE_SAMPLE_S:
                self._last_sample = now
                self.rate_samples.append(self._snapshot.rolling_tokens_per_s or 0.0)
        return self._snapshot
