"""SessionController: owns one session's runs, for every face (dashboard, ``tokentop run``).

A controller starts :class:`~tui.stream.runner.StreamRun` in an asyncio task, keeps one
:class:`~tui.stream.accumulate.RunAccumulator` per run (the store reads the same one: one
fold), moves the session through its states (:data:`tui.vocab.SessionState`), hands every
batch of events (one network read) to the store and to its listeners, schedules ``repeat``
runs and keeps a bounded history of finished runs.

Runs outlive and precede any view: a listener may subscribe mid-run and catch up from the
run's accumulator. Within a session a new start first cancels the old run *gracefully*
(``StreamRun.cancel()`` ends it with ``Finished(cancelled)``, which reaches the store) and
waits for it. A run's first batch reaches the store and the listeners only after the store
recorded the run's start (a compare round records its membership then). Whatever fails
below (an engine bug, a simulator that cannot start, the store, a listener) ends at most the
run concerned, as a failed run that says why; it never escapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, cast

from tui.config import SessionConfig
from tui.session.redact import Redactor, RunRedactor, redact_session, session_secrets
from tui.session.run import (
    HISTORY_LIMIT,
    BaseUrlResolver,
    LoopControl,
    RunSummary,
    SessionListener,
    SessionRun,
    StoreErrorHandler,
)
from tui.session.states import ACTIVITY, BOUNDARY_EVENTS, next_state, phase
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
from tui.vocab import FINAL_STATES, FinishReason, RunStatus, SessionState

if TYPE_CHECKING:  # imported when a run starts: a dashboard's first frame does not wait
    import httpx

    from tui.session.engine import Engine
    from tui.session.recorder import RunRecorder

log = logging.getLogger(__name__)

RATE_SAMPLE_S = 0.5
"""Spacing of the tokens/s samples behind the sparklines."""


class SessionController:
    """The run lifecycle of one session: :meth:`start`, :meth:`cancel`, :meth:`restart`."""

    def __init__(
        self,
        session: SessionConfig,
        *,
        client: httpx.AsyncClient | None = None,
        store: RunRecorder | None = None,
        ready: Callable[[], Awaitable[object]] | None = None,
        resolve_base_url: BaseUrlResolver | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_store_error: StoreErrorHandler | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.session = session
        self.prompt = session.prompt
        """The prompt of the next run (``edit prompt`` changes it)."""
        self.client = client
        """The HTTP client of the runs (a runtime sets it once it is built)."""
        self.store = store
        self.state: SessionState = "queued"
        self.current: SessionRun | None = None
        self.history: deque[RunSummary] = deque(maxlen=HISTORY_LIMIT)
        self.rate_samples: deque[float] = deque(maxlen=32)
        """Recent tokens/s samples of the current run (for sparklines)."""
        self.runs_started = 0
        self.runs_finished = 0
        self.version = 0
        """Bumped on every batch: views compare it to skip work when nothing changed."""
        self._ready = ready
        self._resolve_base_url = resolve_base_url
        self._clock = clock
        self._on_store_error = on_store_error
        self.engine = engine
        """Where the runs' network side runs (None: on this loop)."""
        self._listeners: tuple[SessionListener, ...] = ()
        """Copy-on-write, so that the per-batch loop needs no copy."""
        self._task: asyncio.Task[None] | None = None
        self._control = LoopControl()
        self._snapshot: MetricsSnapshot | None = None
        self._snapshot_key: tuple[int, float] = (-1, -1.0)
        self._last_sample = 0.0

    @property
    def name(self) -> str:
        """The session's name (unique in the config)."""
        return self.session.name

    @property
    def running(self) -> bool:
        """True while a run (or a repeat schedule) is active."""
        return self._task is not None and not self._task.done()

    @property
    def phase(self) -> str:
        """A short word for the progress line (see :func:`tui.session.states.phase`)."""
        return phase(self.state, self.current)

    def subscribe(self, listener: SessionListener) -> Callable[[], None]:
        """Follow this session; returns the function that unsubscribes."""
        self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    # -- lifecycle ----

    def start(
        self, prompt: str | None = None, *, once: bool = False, run_id: str | None = None
    ) -> asyncio.Task[None]:
        """Start a new run (with ``prompt``, else the current prompt); with ``repeat``, the
        schedule of runs, unless ``once`` (one run, as a compare round wants). ``run_id``
        names the (first) run. A running run is cancelled first, gracefully."""
        if prompt is not None:
            self.prompt = prompt
        previous = self._task
        self._control.cancel()
        self._control = control = LoopControl(engine=self.engine)
        self._task = asyncio.create_task(
            self._run_loop(self.prompt, previous, control, once, run_id), name=f"stream:{self.name}"
        )
        return self._task

    def restart(self) -> asyncio.Task[None]:
        """Cancel the current run (if any) and run the same prompt again."""
        return self.start()

    def cancel(self) -> None:
        """End the current run (``Finished(cancelled)``) and stop any repeat schedule."""
        self._control.cancel()

    async def wait(self) -> None:
        """Until the current run loop (and its repeat schedule) has ended."""
        task = self._task
        if task is not None and not task.done():
            # asyncio.wait neither raises the task's outcome nor swallows a cancellation of
            # the caller (the task itself is not cancelled by it)
            await asyncio.wait([task])

    async def abort(self) -> None:
        """Stop at once: cancel the run loop's task (the run still records ``Finished``)."""
        self._control.cancel()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    async def _run_loop(
        self,
        prompt: str,
        previous: asyncio.Task[None] | None,
        control: LoopControl,
        once: bool,
        run_id: str | None,
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        count = 0
        try:
            while not control.stop:
                run = await self._one_run(prompt, control, run_id)
                count += 1
                run_id = None
                repeat = None if once else self.session.repeat
                if repeat is None or control.stop or (repeat.count and count >= repeat.count):
                    return
                self.state = "waiting"
                self.version += 1
                # every_s counts from one start to the next; a run longer than that is
                # followed by the next one at once
                delay = run.started_mono + repeat.every_s - time.monotonic()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(control.wake.wait(), timeout=delay)
        finally:
            # a schedule stopped between runs: the session shows how its last run ended
            last = self.current
            if self.state == "waiting" and last is not None and last.finished is not None:
                self.state = FINAL_STATES[last.finished.status]
                self.version += 1

    def begin_run(self, prompt: str, *, run_id: str | None = None) -> SessionRun:
        """Make a new run current and tell the listeners (the run loop calls this; a test or
        a replay feed may call it and then :meth:`handle_events` to drive the views)."""
        session = self.session
        run_id = run_id or new_run_id()
        # every event of the run is redacted before anything sees it (the prompt goes out as typed)
        secrets = Redactor(session_secrets(session))
        redactor = RunRedactor(secrets) if secrets else None
        if secrets:
            prompt = secrets.redact(prompt)
        acc = RunAccumulator(
            run_id, session.name, session.api, session.model, prompt, clock=self._clock
        )
        run = SessionRun(
            run_id=run_id,
            prompt=prompt,
            accumulator=acc,
            started_at=time.time(),
            started_mono=time.monotonic(),
            redactor=redactor,
        )
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

    async def _one_run(self, prompt: str, control: LoopControl, run_id: str | None) -> SessionRun:
        if self._ready is not None:  # a runtime opens its store and client first
            await self._ready()
        session = self.session
        run = self.begin_run(prompt, run_id=run_id)
        t0 = self._clock()

        def finish(status: RunStatus, reason: FinishReason, error: RunError | None) -> None:
            if run.finished is None:
                self.handle_events(
                    run, (Finished(self._clock() - t0, status, reason, None, error),)
                )

        try:
            if self.store is not None:
                try:
                    # the store reads the run's state from this accumulator, which
                    # handle_events feeds before it hands the events to the store
                    redactor = run.redactor
                    stored = (
                        session if redactor is None else redact_session(session, redactor.redactor)
                    )
                    await self.store.start_run(
                        stored, prompt=run.prompt, run_id=run.run_id, accumulator=run.accumulator
                    )
                except Exception as exc:
                    self._store_failed(exc)
            from tui.stream.runner import StreamRun

            if self.client is None:
                raise RuntimeError("no HTTP client")
            try:
                base_url = await self._base_url()
            except Exception as exc:  # only the built-in simulator can fail to start here
                finish("failed", "error", RunError("connect", str(exc)))
                return run
            stream = StreamRun(
                session, client=self.client, base_url=base_url, prompt=prompt, clock=self._clock
            )
            control.stream = stream
            if control.stop:  # cancelled while the run was being set up
                stream.cancel()
            if self.engine is not None:
                await self.engine.stream(stream, partial(self.handle_events, run))
            else:
                try:
                    async for batch in stream.batches():
                        self.handle_events(run, batch)
                finally:
                    await stream.aclose()  # a no-op after Finished; stops the producer
        except asyncio.CancelledError:
            finish("cancelled", "cancelled", None)
            raise
        except Exception as exc:  # an engine bug must not end the session: fail this run
            log.exception("run %s of %s crashed", run.run_id, self.name)
            message = f"tokentop internal error: {type(exc).__name__}: {exc}"
            finish("failed", "error", RunError("protocol", message))
        finally:
            control.stream = None
        # an iterator that ended without Finished: never pretend success
        finish("failed", "truncated", RunError("truncated", "the run ended without a final event"))
        return run

    async def _base_url(self) -> str:
        if self._resolve_base_url is not None:
            return await self._resolve_base_url(self.session)
        if self.session.is_simulated:
            raise RuntimeError("the built-in simulator is not available here")
        return self.session.base_url

    def handle_events(self, run: SessionRun, events: Sequence[RunEvent]) -> None:
        """Fold the events of one network read into the run, then hand them to the store and
        to each listener in one call (per-event work stays O(1), call overhead per batch).

        With secrets, the events are first redacted (:mod:`tui.session.redact`): a delta that
        could begin a secret waits for the next one (a batch may then shrink to nothing)."""
        if run.finished is not None:  # late events of a run cut by abort (there is one end)
            return
        redactor = run.redactor
        if redactor is not None:
            events = redactor.events(events)
            if not events:
                return
        apply = run.accumulator.apply
        debug = run.debug_events.append
        activity = ACTIVITY.get
        raw = 0
        for event in events:
            apply(event)
            cls = type(event)
            if cls is RawEvent:
                r = cast(RawEvent, event)
                debug((r.t, r.attempt, r.event, r.data, r.id))
                raw += 1
            elif cls in BOUNDARY_EVENTS:
                self._note_boundary(run, event)
            else:
                kind = activity(cls)
                if kind is not None:
                    run.activity = kind
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

    def handle_event(self, run: SessionRun, event: RunEvent) -> None:
        """Fold one event (see :meth:`handle_events`)."""
        self.handle_events(run, (event,))

    def _note_boundary(self, run: SessionRun, event: RunEvent) -> None:
        """An attempt boundary: keep it for the raw view and move the session's state."""
        assert isinstance(event, (Connecting, Started, Retrying, Resumed, Finished))
        run.debug_events.append(event)
        run.attempt_events.append(event)
        run.debug_total += 1
        run.boundary = event
        self.state = next_state(self.state, event)
        if isinstance(event, Finished):
            run.finished = event
            self.runs_finished += 1
            self._record_history(run, event)

    def _record_history(self, run: SessionRun, finished: Finished) -> None:
        snap = run.accumulator.metrics()
        self._snapshot = snap
        self._snapshot_key = (self.version, -1.0)
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

        Cached per batch version and 0.1 s of clock time, so any number of views can poll it
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
