"""A session's run as every face sees it, the summary its history keeps, and the interfaces
of whoever follows a session or serves it (listeners, base-URL resolver, store errors)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from tui.config import SessionConfig
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import Connecting, Finished, Resumed, Retrying, RunEvent, Started

if TYPE_CHECKING:
    from tui.session.controller import SessionController
    from tui.session.engine import Engine
    from tui.session.loop_lag import ClientLag
    from tui.session.redact import RunRedactor
    from tui.stream.history import Conversation
    from tui.stream.runner import StreamRun

RAW_EVENT_LIMIT = 1_500
"""Debug events kept per run for the raw view (older ones are dropped)."""

HISTORY_LIMIT = 50
"""Finished runs kept per session in memory (the store keeps all of them)."""

RawTuple: TypeAlias = tuple[float, int, str | None, str, str | None]
"""A :class:`RawEvent` as ``(t, attempt, event, data, id)``: a tuple of atoms, which the
garbage collector stops tracking, so thousands of kept raw events cost no collection time."""

DebugEvent: TypeAlias = Connecting | Started | RawTuple | Retrying | Resumed | Finished
"""What the raw view shows: SSE events (as :data:`RawTuple`) and the attempt boundaries."""


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One finished run, for a session's in-memory history."""

    run_id: str
    ttft_ms: float | None
    tokens_per_s: float | None
    output_tokens: int | None
    status: str
    finish_reason: str


@dataclass(slots=True)
class SessionRun:
    """One run of a session: its accumulator and what the views need besides."""

    run_id: str
    prompt: str
    accumulator: RunAccumulator
    started_at: float
    """Wall-clock time (``time.time()``) the run was started."""
    started_mono: float = 0.0
    """``time.monotonic()`` when the run began: a repeat schedule counts ``every_s`` from the
    first turn of one conversation to the first turn of the next."""
    conversation_id: str = ""
    """The conversation this run is a turn of (tokentop's id)."""
    turn: int = 1
    """Its turn in that conversation, from 1 (a retry or an edit is another run of a turn)."""
    history: Conversation | None = None
    """What the turn carried: the seeded messages and the kept turns before it."""
    debug_events: deque[DebugEvent] = field(default_factory=lambda: deque(maxlen=RAW_EVENT_LIMIT))
    finished: Finished | None = None
    events: int = 0
    attempt_events: list[DebugEvent] = field(default_factory=list)
    """The attempt boundaries (connecting, started with headers, retrying, resumed,
    finished): few, and never dropped, unlike the raw events."""
    debug_total: int = 0
    """How many debug events were ever appended (the deque keeps the last ones)."""
    activity: str = "started"
    """What the latest delta was: ``streaming`` (text), ``reasoning`` or ``tool call``;
    ``started`` before the first one."""
    boundary: DebugEvent | None = None
    """The latest attempt boundary."""
    redactor: RunRedactor | None = None
    """Blanks the session's secrets out of the run's events (None: the session has none)."""
    client_lag: ClientLag | None = None
    """The engine loop's own lag over the run, set just before its Finished is delivered
    (None: no engine measured it, e.g. a runtime without a thread of its own)."""

    @property
    def done(self) -> bool:
        """True once the run's :class:`Finished` event arrived."""
        return self.finished is not None

    @property
    def client_bound(self) -> bool:
        """True when the run's timing may be tokentop's own: its engine loop lagged past
        :data:`~tui.session.loop_lag.CLIENT_BOUND_LAG_MS` (p99) during the run."""
        return self.client_lag is not None and self.client_lag.bound

    def record_client_lag(self, lag: ClientLag) -> None:
        """The engine's ``on_lag``: keep the run's loop lag (called on the engine thread)."""
        self.client_lag = lag

    def result(self) -> dict[str, Any]:
        """The ``run --jsonl`` result record of the run, with its conversation and turn, and
        ``client_lag_p99_ms`` / ``client_bound`` (see :mod:`tui.session.loop_lag`)."""
        record = self.accumulator.result()
        record["conversation_id"] = self.conversation_id
        record["turn"] = self.turn
        lag = self.client_lag
        p99 = None if lag is None else lag.p99_ms
        record["client_lag_p99_ms"] = None if p99 is None else round(p99, 3)
        record["client_bound"] = self.client_bound
        return record


BaseUrlResolver: TypeAlias = Callable[[SessionConfig], Awaitable[str]]
"""Gives the URL a session's requests go to (the simulator's real URL for ``sim``); raises
with the reason when there is none (a simulator that did not start)."""

StoreErrorHandler: TypeAlias = Callable[[str, BaseException], None]
"""Called as ``handler(session_name, exc)`` when the store refuses something."""


class SessionListener(Protocol):
    """Whoever follows a session: a view, a compare column, a progress printer."""

    def run_started(self, session: SessionController, run: SessionRun) -> None:
        """A new run began: reset whatever shows the previous one."""

    def run_events(
        self, session: SessionController, run: SessionRun, events: Sequence[RunEvent]
    ) -> None:
        """The next events of ``run``, as they arrived together (one network read): keep it
        O(events). The run's last batch ends with its :class:`Finished`."""


@dataclass(slots=True)
class LoopControl:
    """Cancellation state of one session's run loop (a new start gets a fresh one)."""

    stop: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    stream: StreamRun | None = None
    engine: Engine | None = None

    def cancel(self) -> None:
        self.stop = True
        self.wake.set()
        stream = self.stream
        if stream is not None:
            if self.engine is None:
                stream.cancel()
            else:  # the stream lives on the engine's loop
                self.engine.call_soon(stream.cancel)
