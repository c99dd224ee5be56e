"""The batched event writer of :class:`~tui.store.store.Store`: queueing, flushing, checkpoints.

``add_event`` / ``add_events`` only append to an in-memory list (O(1) per event, never
await); the store's own accumulator of a run applies them, unless the caller shares its own.
A background task flushes the list every :data:`FLUSH_PERIOD_S`, within the
:data:`FLUSH_INTERVAL_S` crash bound, and at once after every
:class:`~tui.stream.events.Finished`: one transaction per flush with the rows of the runs
started since (``start_run`` only queues them) and the events (one ``INSERT ... FROM
json_each(?)`` per :data:`EVENTS_PER_INSERT`, encoded in SQLite's worker thread), so a
``kill -9`` loses at most one flush interval. Every :data:`CHECKPOINT_S` (on a phase of its
own per run), and at its end, a run's row (text so far, metrics) and attempts are rewritten.

A failed flush (disk full, file made read-only) is rolled back, nothing already committed
is touched, recording stops, and the error is surfaced in ``errors`` / ``last_error`` /
``on_error``, while ``add_event`` keeps accepting (and dropping) events so that streams go
on. A flush is never cut short: a cancelled caller waits for its transaction to end.

A flush that finds the database busy (``SQLITE_BUSY``: another writer held its write
transaction past the busy timeout) is rolled back too, but nothing is dropped and recording
goes on: its events go back to the front of the queue and the flusher tries again after a
backoff (:data:`BUSY_BACKOFF_S`), for as long as it takes. Memory stays bounded: past
:data:`PENDING_LIMIT` queued events, new ones are not queued (counted in
``events_dropped``, reported once through ``on_error``) until the queue is written.

What is queued, and how a run's events are sorted into it (compact deltas, raw events held
back as ``keep_raw_events`` says), is :mod:`tui.store.queue`.

Alerts (``Store.record_alert``) and the runs of compare rounds (``Store.add_round_run``)
are queued the same way and written by the next flush, retried like events while another
writer holds the database.

What one flush writes, and its transaction, is :mod:`tui.store.flush`; this module decides
what goes into a flush and when, retries a busy database and accounts for every event.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import aiosqlite

from tui.config import KeepRawEvents
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import RunEvent

from .connection import BUSY_BACKOFF_S, backoff, sqlite_problem, store_error
from .errors import StoreError
from .flush import (
    EVENTS_PER_INSERT,
    SEQ_BITS,
    ActiveRun,
    Flushed,
    NewRun,
    rollback,
    secret_forms,
)
from .plan import FlushPlan
from .queue import RAW_HOLD_BYTES, RAW_HOLD_EVENTS, WriteQueue
from .rows import ClientLagSource

__all__ = [
    "BUSY_BACKOFF_S",
    "CHECKPOINT_S",
    "EVENTS_PER_INSERT",
    "FLUSH_INTERVAL_S",
    "FLUSH_PERIOD_S",
    "RAW_HOLD_BYTES",
    "RAW_HOLD_EVENTS",
    "SEQ_BITS",
    "ActiveRun",
    "EventWriter",
    "NewRun",
    "backoff",
    "secret_forms",
]

FLUSH_INTERVAL_S = 0.2
"""The longest time an event should wait in memory before it is committed (the crash bound)."""

FLUSH_PERIOD_S = 0.15
"""How often the flusher runs: shorter than :data:`FLUSH_INTERVAL_S`, leaving room for the
commit itself and for event-loop jitter within the bound."""

CHECKPOINT_S = 2.0
"""How often the periodic flush rewrites a running run's row (its text so far and metrics).

Events are committed every :data:`FLUSH_PERIOD_S`; the run row holds the whole text, so it
is rewritten only this often, keeping a periodic flush's cost in proportion to its new
events rather than to the answer so far. A run's end, :meth:`EventWriter.flush` and
``Store.close`` always write it; a dead writer's runs are re-folded from their events when
the next writer opens the database."""

UPKEEP_S = 3600.0
"""How often the flusher does its upkeep: a writer open for days applies ``[store]
keep_days`` again every hour (see :mod:`tui.store.retention`)."""

BUSY_GIVE_UP_S = 60.0
"""How long :meth:`EventWriter.flush` and ``Store.close`` keep retrying a busy database before
they give up (the flusher itself never does): ``flush`` then returns with the events (and the
rows of new runs) still queued, ``close`` reports how many events it could not save."""

PENDING_LIMIT = 1_000_000
"""Queued events at most (about 150 MB) while the database stays busy. Past it, new events
are not queued (counted in ``events_dropped`` and reported once through ``on_error``) until
the queue has been written; recording never stops for a busy database."""


class EventWriter:
    """The writing half of :class:`~tui.store.store.Store` (which opens and closes it)."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        path: Path,
        *,
        readonly: bool,
        keep_raw_events: KeepRawEvents = "failed",
    ) -> None:
        self._conn = conn
        self.path = path
        """The database file."""
        self.readonly = readonly
        """True when opened for reading only (``readonly=True``)."""
        self.queue = WriteQueue(keep_raw_events, path.parent)
        """What the next flush writes (``queue.fold_errors``, ``queue.raw_events_discarded``
        and ``queue.compact_deltas`` live there too)."""
        self.flush_period = FLUSH_PERIOD_S
        """Seconds between background flushes (tests and benchmarks may change it)."""
        self.checkpoint_period = CHECKPOINT_S
        """Seconds between two periodic rewrites of a running run's row."""
        self.upkeep_period = UPKEEP_S
        """Seconds between two runs of the flusher's upkeep (``keep_days``)."""
        self.errors: list[str] = []
        """Write errors so far (recording stops at the first)."""
        self.on_error: Callable[[str], None] | None = None
        """Called with the message when writing fails (the UI shows it)."""
        self.on_flush: Callable[[int], None] | None = None
        """Called after each committed flush with the total number of events written."""
        self.events_written = 0
        """Events committed (each compact delta counts as one event)."""
        self.events_dropped = 0
        self.busy_retries = 0
        """Flushes retried because another writer held the database."""
        self._busy = False
        """The last flush found the database busy (and queued its events again)."""
        self._overflow = 0
        self._active: dict[str, ActiveRun] = {}
        self._rowids: dict[int, int] = {}
        """The rowids of the active runs whose rows are stored, by slot."""
        self._slots = 0
        """Slots handed out so far (a run's slot is the writer's own number for it)."""
        self._ended: set[str] = set()
        self._dropping: set[str] = set()
        self._secrets: dict[int, tuple[bytes, ...]] = {}
        self._write_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._stopping = False
        self._closed = False

    @property
    def last_error(self) -> str | None:
        """The write error that stopped recording, if any."""
        return self.errors[-1] if self.errors else None

    def _track(
        self,
        begun: NewRun,
        acc: RunAccumulator,
        *,
        shared: bool,
        secret: str | None,
        started: float,
        lag: ClientLagSource | None = None,
    ) -> None:
        """Start queueing the events of a new run (started at wall time ``started``), whose
        row the next flush inserts."""
        self._slots += 1
        slot = self._slots
        run = ActiveRun(
            slot, acc, shared, secret, key=slot << SEQ_BITS, begun=begun, started=started, lag=lag
        )
        self._active[begun.run_id] = run
        if secret is not None:
            self._secrets[slot] = secret_forms(secret)

    def _start_flusher(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop(), name="tokentop-store-flusher")

    async def _stop_flusher(self) -> None:
        """Stop the flusher between flushes, never in the middle of one."""
        if self._flusher is not None:
            self._stopping = True
            self._wake.set()
            await self._flusher

    def add_event(self, run_id: str, event: RunEvent) -> None:
        """Queue ``event`` of ``run_id`` for the next flush (synchronous, O(1), never blocks).

        Events after a write error, or after the run's :class:`Finished`, are dropped.
        """
        self.add_events(run_id, (event,))

    def add_events(self, run_id: str, events: Sequence[RunEvent]) -> None:
        """Queue several events of ``run_id`` (in order) for the next flush, as
        :meth:`add_event` does one by one."""
        run = self._active.get(run_id)
        if run is None or run.ended:
            if run is not None or run_id in self._ended or run_id in self._dropping:
                self.events_dropped += len(events)
                return
            raise StoreError(f"run {run_id} was not started with Store.start_run")
        if self.errors or not events:
            self.events_dropped += len(events)
            return
        if len(self.queue) >= PENDING_LIMIT:
            self._overflowed(len(events))
            return
        if not run.heard:
            run.hear(events[0].t)
        dropped, ended = self.queue.add(run, events)
        self.events_dropped += dropped
        if ended is not None:
            self._wake.set()

    @property
    def keep_raw_events(self) -> KeepRawEvents:
        """Which runs keep their raw SSE events (``[store] keep_raw_events``)."""
        return self.queue.keep_raw_events

    def _check_writer(self) -> None:
        if self.readonly:
            raise StoreError(f"database {self.path} is open read-only (another tokentop writes it)")
        if self._closed:
            raise StoreError("the store is closed")

    async def flush(self) -> None:
        """Commit everything queued so far (and every active run's row); while another
        writer keeps the database busy, retry for up to :data:`BUSY_GIVE_UP_S` (then the
        events stay queued for the flusher)."""
        if not self.readonly and not self._closed:
            await self._flush_retrying()

    async def _flush_retrying(self, *, closing: bool = False) -> bool:
        """Flush, retrying a busy database with backoff; False when it stayed busy."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + BUSY_GIVE_UP_S
        retry = 0
        while True:
            await self._flush_batch(closing=closing)
            if not self._busy:
                return True
            retry += 1
            if loop.time() > give_up:
                return False
            await asyncio.sleep(backoff(retry))

    async def _periodic_upkeep(self) -> None:
        """Work the flusher does every :attr:`upkeep_period` (the store applies
        ``keep_days``); nothing here."""

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.flush_period
        upkeep_at = loop.time() + self.upkeep_period
        retry = 0
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_at - loop.time()))
            self._wake.clear()
            if self._stopping:
                return  # close() does the last flush
            next_at = loop.time() + self.flush_period
            await self._flush_batch(checkpoint_s=self.checkpoint_period)
            if not self._busy:
                retry = 0
            else:  # busy: the batch is queued again, try after a pause
                retry += 1
                next_at = loop.time() + backoff(retry)
            if loop.time() >= upkeep_at:
                upkeep_at = loop.time() + self.upkeep_period
                await self._periodic_upkeep()

    def _report(self, message: str) -> None:
        """Tell ``on_error`` something that does not stop recording."""
        if self.on_error is not None:
            with contextlib.suppress(Exception):
                self.on_error(message)

    def _give_up_queued(self) -> None:
        """Closing, the database stayed busy: say how many events were not saved."""
        lost = self.queue.clear()
        self.events_dropped += lost
        self._fail_message(
            f"database {self.path} stayed busy (another writer holds it) for "
            f"{BUSY_GIVE_UP_S:g} s while closing: {lost:,} events are not saved"
        )

    def _overflowed(self, count: int) -> None:
        """Events not queued because the queue is full (the database has been busy)."""
        self.events_dropped += count
        if not self._overflow:
            self._report(
                f"database {self.path} has been busy (another writer holds it) and "
                f"{PENDING_LIMIT:,} events wait to be saved: new events are not saved "
                "until they are"
            )
        self._overflow += count

    async def _flush_batch(self, *, closing: bool = False, checkpoint_s: float = 0.0) -> None:
        """One flush transaction; :attr:`_busy` tells whether the database was busy (then
        everything of it is queued again, to be retried)."""
        self._busy = False
        async with self._write_lock:
            if closing:  # a run still open did not complete: its raw events are kept
                for run in self._active.values():
                    self.queue.spill(run)
            queued = self.queue.take(self._active.values())
            if self.errors:
                self.events_dropped += len(queued)
                return
            # Snapshot run rows now, on the loop: they match exactly the events queued.
            try:
                plan = FlushPlan.take(
                    queued, self._active, closing=closing, checkpoint_s=checkpoint_s
                )
            except Exception as exc:  # a bad event
                self.events_dropped += len(queued)
                self._fail(exc)
                return
            if plan is None:
                return
            # A flush is never cut short: when the task awaiting it is cancelled (close()
            # does not, but a caller's task may be), the transaction still runs to its end
            # and is accounted for before the cancellation goes on.
            work = asyncio.ensure_future(plan.commit(self._conn, self._secrets, self._rowids))
            try:
                flushed = await asyncio.shield(work)
            except asyncio.CancelledError:
                await asyncio.wait([work])
                self._committed(work.result(), plan)
                raise
            self._busy = not self._committed(flushed, plan)
            error = flushed.error
        if self.on_flush is not None and error is None:
            with contextlib.suppress(Exception):
                self.on_flush(self.events_written)

    def _committed(self, flushed: Flushed, plan: FlushPlan) -> bool:
        """Account for a flush transaction that ended (``flushed.error``: rolled back);
        False when it was rolled back because the database was busy: then its events,
        deltas and alerts go back to the front of the queue, and its new runs' rows, their
        start times, its runs' rows and its attempts are written again next time."""
        queued, changed, fresh = plan.queued, plan.changed, plan.fresh
        count = len(queued)
        error = flushed.error
        if error is not None and sqlite_problem(error) == "busy" and not self._closed:
            self.busy_retries += 1
            self.queue.put_back(queued)
            for _, run, _, _ in changed:
                run.checkpoint_at = float("-inf")
                run.written.clear()  # upserts: rewriting them all is safe
            return False
        if error is not None:
            self.events_dropped += count
            self._fail(error)
            return True
        if self._overflow and len(self.queue) < PENDING_LIMIT // 2:
            self._overflow = 0  # queueing again (the count stays in events_dropped)
        for _, run in fresh:
            rowid = flushed.inserted.get(run.slot)
            if rowid is not None:
                run.rowid, run.begun = rowid, None
                self._rowids[run.slot] = rowid
        for run, at in plan.stamps:
            run.stamped = at
        if flushed.duplicates:
            mine, dropped, lost = plan.not_stored(flushed.duplicates, self.queue)
            count -= mine
            self.events_dropped += dropped
            for run_id, run in lost:
                self._forget(run_id, run)
                self._dropping.add(run_id)
                self._report(f"run id {run_id} is already in {self.path}: the run is not saved")
        self.events_written += count + sum(spill.events for _, spill in plan.raw_dumps)
        for run_id, run, seq, final in changed:
            run.flushed_seq = seq
            if final and run_id in self._active:
                self._forget(run_id, run)
                self._ended.add(run_id)
                self.queue.drop_held(run)  # its raw file, written now
        return True

    def _forget(self, run_id: str, run: ActiveRun) -> None:
        del self._active[run_id]
        self._rowids.pop(run.slot, None)
        self._secrets.pop(run.slot, None)

    async def _rollback(self) -> None:
        await rollback(self._conn)

    def _fail(self, exc: BaseException) -> None:
        if isinstance(exc, sqlite3.Error | ValueError):
            cause = str(store_error(self.path, exc))
        else:
            cause = f"cannot save to {self.path}: internal error {type(exc).__name__}: {exc}"
        self._fail_message(cause + "; recording stopped (the streams go on, but are not saved)")

    def _fail_message(self, message: str) -> None:
        for run in self._active.values():  # recording stopped: what runs hold is lost
            self.events_dropped += self.queue.drop_held(run)
        self.errors.append(message)
        if self.on_error is not None:
            with contextlib.suppress(Exception):
                self.on_error(message)
