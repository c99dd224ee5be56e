"""RunPipeline: what a session controller does with each run's events, whoever produced them.

One fold per run: every batch of events (one network read) is redacted, folded into the
run's :class:`~tui.stream.accumulate.RunAccumulator`, handed to the store once and to each
listener once, and moves the session through its states (:data:`tui.vocab.SessionState`).
:class:`~tui.session.controller.SessionController` adds the run lifecycle and the
conversation on top; a test or a replay feed may drive a pipeline directly
(:meth:`RunPipeline.begin_run`, then :meth:`RunPipeline.handle_events`).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from tui.config import SessionConfig
from tui.session.conversation_view import turn_error
from tui.session.redact import Redactor, RunRedactor, session_secrets
from tui.session.run import (
    HISTORY_LIMIT,
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
    RunEvent,
    Started,
    new_run_id,
)
from tui.stream.metrics import MetricsSnapshot
from tui.vocab import SessionState

if TYPE_CHECKING:
    from tui.session.controller import SessionController
    from tui.session.recorder import RunRecorder
    from tui.stream.history import Conversation

log = logging.getLogger(__name__)

RATE_SAMPLE_S = 0.5
"""Spacing of the tokens/s samples behind the sparklines."""


class RunPipeline:
    """One session's runs as the views see them: the current run, its state, the history
    of finished runs, the listeners and the metrics snapshot (see the module)."""

    def __init__(
        self,
        session: SessionConfig,
        *,
        store: RunRecorder | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_store_error: StoreErrorHandler | None = None,
    ) -> None:
        self.session = session
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
        self.keep_raw = True
        """Keep each run's last raw SSE events (:data:`~tui.session.run.RAW_EVENT_LIMIT`) in
        :attr:`SessionRun.debug_events` for a raw view; a face without one (``tokentop
        run``) sets it False: a thousand runs' raw events are hundreds of megabytes."""
        self._clock = clock
        self._on_store_error = on_store_error
        self._listeners: tuple[SessionListener, ...] = ()
        """Copy-on-write, so that the per-batch loop needs no copy."""
        self._snapshot: MetricsSnapshot | None = None
        self._snapshot_key: tuple[int, float] = (-1, -1.0)
        self._last_sample = 0.0

    @property
    def name(self) -> str:
        """The session's name (unique in the config)."""
        return self.session.name

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

    def begin_run(
        self,
        prompt: str,
        *,
        run_id: str | None = None,
        conversation_id: str = "",
        turn: int = 1,
        history: Conversation | None = None,
    ) -> SessionRun:
        """Make a new run current (turn ``turn`` of ``conversation_id``, carrying
        ``history``) and tell the listeners (the controller calls this; a test or a replay
        feed may call it and then :meth:`handle_events` to drive the views)."""
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
            conversation_id=conversation_id,
            turn=turn,
            history=history,
        )
        self.current = run
        self.runs_started += 1
        self.rate_samples.clear()
        self.state = "connecting"
        self.version += 1
        me = cast("SessionController", self)
        for listener in self._listeners:
            try:
                listener.run_started(me, run)
            except Exception:
                log.exception("listener failed on run start of %s", self.name)
        return run

    def handle_events(self, run: SessionRun, events: Sequence[RunEvent]) -> None:
        """Fold the events of one network read into the run, then hand them to the store and
        to each listener in one call (per-event work stays O(1), call overhead per batch).

        With secrets, the events are first redacted (:mod:`tui.session.redact`): a delta that
        could begin a secret waits for the next one (a batch may then shrink to nothing). A
        failure the conversation caused is worded as such (:func:`turn_error`)."""
        if run.finished is not None:  # late events of a run cut by abort (there is one end)
            return
        redactor = run.redactor
        if redactor is not None:
            events = redactor.events(events)
            if not events:
                return
        last = events[-1]
        if type(last) is Finished and last.error is not None:
            events = self._worded(run, events, last)
        apply = run.accumulator.apply
        debug = run.debug_events.append if self.keep_raw else None
        activity = ACTIVITY.get
        raw = 0
        for event in events:
            apply(event)
            cls = type(event)
            if cls is RawEvent:
                if debug is not None:
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
        me = cast("SessionController", self)
        for listener in self._listeners:
            try:
                listener.run_events(me, run, events)
            except Exception:
                log.exception("listener failed on events of %s", self.name)

    def handle_event(self, run: SessionRun, event: RunEvent) -> None:
        """Fold one event (see :meth:`handle_events`)."""
        self.handle_events(run, (event,))

    def _worded(
        self, run: SessionRun, events: Sequence[RunEvent], finished: Finished
    ) -> Sequence[RunEvent]:
        """``events`` with the final error worded for the turn (see :func:`turn_error`)."""
        assert finished.error is not None
        history = run.history
        sent_id = (
            self.session.api == "responses"
            and history is not None
            and history.previous_response_id is not None
        )
        mode = self.session.history if history is None else history.mode
        worded = turn_error(finished.error, run.turn, mode=mode, sent_previous_id=sent_id)
        if worded is finished.error:
            return events
        return [*events[:-1], replace(finished, error=worded)]

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
