"""What one flush of the store's writer writes, and the transaction that writes it.

:class:`ActiveRun` is the writer's state of one run (its fold, sequence numbers, last
checkpoint, the deltas it gathers, the raw events it holds back) and gives the run's row and
changed attempts; :class:`_EventRows` is a chunk of queued events, encoded to JSON by SQLite's
adapter in the writer's thread (never on the event loop), with the sessions' API keys
(:func:`secret_forms`) blanked out; text and reasoning deltas go to ``deltas`` rows instead
(:mod:`tui.store.compact`, encoded the same way); :func:`commit_flush` writes one batch
(events, deltas, alerts, the runs of compare rounds, run rows, attempts, and the deletion
of raw events a completed run need not keep) in one ``BEGIN IMMEDIATE`` transaction.

Promises: :func:`commit_flush` never raises an ``Exception``: it returns (in a
:class:`Flushed`) the one that rolled the transaction back (busy, disk full, read-only, a
bad event), or None once committed, and it leaves no transaction open even when cancelled.
When to flush, how to retry a busy database and how the queue is bounded is
:mod:`tui.store.writer`'s job.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sqlite3
import time
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from tui.stream.accumulate import RunAccumulator
from tui.stream.events import RawEvent, RunEvent
from tui.stream.result import AttemptRecord

from . import queries
from .codec import encode_rows
from .compact import DeltaSegment, blank_secrets, segment_row
from .raw_spill import RawSpill
from .rows import ClientLagSource, changed_attempts, run_row

__all__ = [
    "EVENTS_PER_INSERT",
    "SEQ_BITS",
    "SEQ_MASK",
    "ActiveRun",
    "Flushed",
    "HeldRaw",
    "NewRun",
    "commit_flush",
    "iso_time",
    "raw_forms",
    "rollback",
    "secret_forms",
]

SEQ_BITS = 32
"""Queued events are keyed ``slot << SEQ_BITS | seq``: a plain int, which (unlike a tuple)
the garbage collector never has to visit, keeping GC pauses short at high event rates."""
SEQ_MASK = (1 << SEQ_BITS) - 1
"""The sequence number of a queue key."""

EVENTS_PER_INSERT = 2_000
"""Events per ``INSERT ... FROM json_each(?)``: the writer's thread encodes one chunk while
holding the GIL, so a chunk is kept small enough not to stall the event loop."""


@dataclass(slots=True)
class Flushed:
    """How one flush transaction ended (see :func:`commit_flush`)."""

    error: BaseException | None = None
    """What rolled it back; None once committed."""
    inserted: dict[int, int] = field(default_factory=dict)
    """The new runs' rowids, by slot (valid only once committed)."""
    duplicates: list[int] = field(default_factory=list)
    """Slots of new runs whose run id another writer had stored already (not stored)."""


def secret_forms(secret: str) -> tuple[bytes, ...]:
    """How ``secret`` can appear in the encoded events: as is, JSON-escaped (a key with a quote
    or a backslash), and escaped twice (inside a raw event's data, itself JSON)."""
    raw = secret.encode()
    once = encode_rows(secret)[1:-1]
    twice = encode_rows(once.decode())[1:-1]
    return tuple(dict.fromkeys((twice, once, raw)))  # longest first, no duplicates


def raw_forms(secret: str) -> tuple[str, ...]:
    """How ``secret`` can appear in a raw event's strings: as is, and JSON-escaped (the data
    is JSON text itself)."""
    return tuple(dict.fromkeys((encode_rows(secret)[1:-1].decode(), secret)))


class _EventRows:
    """A chunk of queued events, encoded to the JSON array of :data:`queries.INSERT_EVENTS_JSON`
    only when SQLite binds it: the sqlite3 adapter below runs in the writer's thread, so the
    event loop never pays for the encoding. ``rowids`` maps the events' slots to their runs'
    rowids (an event of a slot without one, a run that was not stored, is left out)."""

    __slots__ = ("events", "keys", "rowids", "secrets")

    def __init__(
        self,
        keys: list[int],
        events: list[RunEvent],
        secrets: dict[int, tuple[bytes, ...]],
        rowids: dict[int, int],
    ) -> None:
        self.keys = keys
        self.events = events
        self.secrets = secrets
        self.rowids = rowids

    def adapt(self) -> str:
        """The rows as JSON text, with the API keys of their sessions blanked out (should a
        server or a URL ever echo one)."""
        keys = self.keys
        rowids = self.rowids
        slots = {key >> SEQ_BITS for key in keys}
        pairs: Iterable[tuple[int, RunEvent]] = zip(keys, self.events, strict=True)
        if not slots <= rowids.keys():  # events of runs that were not stored are left out
            pairs = [(key, event) for key, event in pairs if key >> SEQ_BITS in rowids]
        blob = encode_rows(
            [
                (rowids[key >> SEQ_BITS], key & SEQ_MASK, event.t, type(event).__name__, event)
                for key, event in pairs
            ]
        )
        secrets = self.secrets
        if secrets:
            for slot in slots & secrets.keys():
                blob = blank_secrets(blob, secrets[slot])
        # text, not bytes: SQLite 3.45+ reads a BLOB argument of a JSON function as JSONB
        return blob.decode()


sqlite3.register_adapter(_EventRows, _EventRows.adapt)


class HeldRaw:
    """Raw events a run holds back, as columns of their fields with their sequence numbers:
    the event objects go (the strings stay, shared with the session's raw view), so the
    garbage collector has a few lists to look at instead of an object per event, and each
    costs about 44 bytes instead of 120."""

    __slots__ = ("attempts", "datas", "ids", "names", "seqs", "times")

    def __init__(self) -> None:
        self.seqs: array[int] = array("I")
        self.times: list[float] = []
        self.attempts: list[int] = []
        self.names: list[str | None] = []
        self.datas: list[str] = []
        self.ids: list[str | None] = []

    def __len__(self) -> int:
        return len(self.seqs)

    def events(self) -> list[RawEvent]:
        """The held events, as the objects they were."""
        return list(map(RawEvent, self.times, self.attempts, self.names, self.datas, self.ids))


@dataclass(slots=True)
class ActiveRun:
    """The writer's state of one run between its ``start_run`` and its last flush."""

    slot: int
    """The writer's own number for the run (its events are queued under it)."""
    acc: RunAccumulator
    """The run's one fold: the caller's own (``shared``) or the store's."""
    shared: bool
    """``acc`` is the caller's, who applies every event to it first: not applied again."""
    secret: str | None
    """The session's API key, blanked out of every text written (should one echo it)."""
    key: int
    """``slot`` shifted to key this run's queued events (see :data:`SEQ_BITS`)."""
    begun: NewRun | None = None
    """The run's row to insert with the next flush; None once that flush committed."""
    rowid: int | None = None
    """The run's rowid, once the flush that inserted its row committed."""
    started: float = 0.0
    """Wall time (``time.time()``) when the run started: when ``start_run`` was called, then
    that of its events' clock (see :meth:`heard`)."""
    stamped: float | None = None
    """``started`` as stored (None before the run's row is)."""
    heard: bool = False
    """Its first events were queued."""
    next_seq: int = 0
    """Sequence number of the next event (0, 1, 2, ... per run)."""
    flushed_seq: int = 0
    """``next_seq`` as of the last committed checkpoint."""
    checkpoint_at: float = float("-inf")
    """``time.monotonic()`` of the last checkpoint of the run row (see
    :data:`~tui.store.writer.CHECKPOINT_S`)."""
    ended: bool = False
    """Its :class:`Finished` is queued: nothing after it is kept."""
    last_t: float = 0.0
    """``t`` of the last event queued (the end of a run closed unfinished)."""
    written: list[AttemptRecord] = field(default_factory=list)
    """The attempt records as of the last checkpoint (to write only those that changed)."""
    segment: DeltaSegment | None = None
    """The deltas gathered for the next flush (None: the next delta starts a new one)."""
    held: HeldRaw = field(default_factory=lambda: HeldRaw())
    """Raw events held back until the run's outcome is known (``keep_raw_events =
    "failed"``); bounded, see ``tui.store.queue.RAW_HOLD_TOTAL``."""
    held_bytes: int = 0
    """The size of the held raw events' data."""
    raw: RawSpill | None = None
    """Its raw events past the hold, in a temporary file (:mod:`tui.store.raw_spill`)."""
    spilled: bool = False
    """Held raw events were queued (written) before the outcome was known (no temporary file
    could take them): deleted again if the run completes."""
    purge_raw: bool = False
    """The run completed after raw events were spilled: its last flush deletes them."""
    lag: ClientLagSource | None = None
    """Who measured the client's own loop lag over the run (written with its final row)."""

    def hear(self, first_t: float) -> None:
        """The run's first events were just queued, the first at ``first_t`` of the run's
        own clock: the run started that long before now (a run whose request waited in
        the client, for a connection or a busy event loop, started when it was sent, as
        its events' times say), but never before ``start_run``."""
        self.heard = True
        if math.isfinite(first_t) and first_t >= 0.0:
            self.started = max(self.started, time.time() - first_t)

    def row(self, *, final: bool) -> tuple[Any, ...]:
        """The run's row values now (see :func:`tui.store.rows.run_row`)."""
        return run_row(self.acc, final=final, last_t=self.last_t, secret=self.secret, lag=self.lag)

    def attempt_rows(self) -> list[tuple[Any, ...]]:
        """Rows of the attempts changed since the last call (keyed by the run's slot, which
        :func:`commit_flush` replaces with its rowid)."""
        return changed_attempts(self.slot, self.acc.attempts, self.written, self.secret)


@dataclass(frozen=True, slots=True)
class NewRun:
    """What ``start_run`` knew of a run: its ``sessions`` and ``runs`` rows, written with the
    next flush (``started_at`` is the time of ``start_run``, not of that flush)."""

    session_row: tuple[str, str, str, str]
    """``INSERT_SESSION_ROW``: name, config JSON, its hash, created at."""
    run_row: tuple[Any, ...]
    """``INSERT_RUNS_JSON``'s fields but ``started_at``: run id, config hash, session name,
    api, model, prompt, writer pid, owner, conversation id, turn, broadcast id."""

    @property
    def run_id(self) -> str:
        """The run's id."""
        return str(self.run_row[0])

    def fields(self, started_at: str) -> tuple[Any, ...]:
        """``INSERT_RUNS_JSON``'s fields, ``started_at`` in place."""
        return (*self.run_row[:6], started_at, *self.run_row[6:])


def iso_time(wall: float) -> str:
    """A wall time (``time.time()``) as stored: ISO 8601 UTC with microseconds."""
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="microseconds")


async def _insert_runs(
    conn: aiosqlite.Connection, new_runs: Sequence[tuple[int, NewRun, str]], flushed: Flushed
) -> None:
    """Insert the rows of ``new_runs`` ((slot, row, started_at)): their rowids, and the slots
    of those whose run id is in the database already, into ``flushed``."""
    sessions = {row.session_row[2]: row.session_row for _, row, _ in new_runs}
    await conn.executemany(queries.INSERT_SESSION_ROW, list(sessions.values()))
    runs = encode_rows([row.fields(started) for _, row, started in new_runs]).decode()
    stored = {
        run_id: rowid
        for rowid, run_id in await conn.execute_fetchall(queries.INSERT_RUNS_JSON, (runs,))
    }
    for slot, row, _ in new_runs:
        rowid = stored.get(row.run_id)
        if rowid is None:
            flushed.duplicates.append(slot)
        else:
            flushed.inserted[slot] = rowid


async def commit_flush(
    conn: aiosqlite.Connection,
    keys: list[int],
    batch: list[RunEvent],
    run_rows: list[tuple[Any, ...]],
    attempt_rows: list[tuple[Any, ...]],
    secrets: dict[int, tuple[bytes, ...]],
    *,
    rowids: dict[int, int],
    new_runs: Sequence[tuple[int, NewRun, str]] = (),
    restamp: Sequence[tuple[str, int]] = (),
    segments: Sequence[DeltaSegment] = (),
    alert_rows: Sequence[tuple[Any, ...]] = (),
    round_run_rows: Sequence[tuple[Any, ...]] = (),
    round_prompt_rows: Sequence[tuple[Any, ...]] = (),
    purge_raw: Sequence[int] = (),
    raw_dumps: Sequence[tuple[int, RawSpill]] = (),
) -> Flushed:
    """One flush transaction on ``conn``: the rows of ``new_runs`` (slot, row, started at)
    and the start times ``restamp`` of runs stored before (started at, slot), then the
    events of ``batch`` (keyed by ``keys``, see :data:`SEQ_BITS`, with the ``secrets`` of
    their runs blanked out) and the delta ``segments``; the raw events of the runs
    ``purge_raw`` deleted and the raw events in the files ``raw_dumps`` (slot, file)
    written; then ``alert_rows`` (``INSERT_ALERT``), ``round_run_rows``
    (``INSERT_ROUND_RUN``), ``round_prompt_rows`` (``UPDATE_ROUND_PROMPT``), ``run_rows``
    (``UPDATE_RUN`` values after the run's slot) and ``attempt_rows`` (``UPSERT_ATTEMPT``,
    the slot in place of the rowid). ``rowids`` maps the slots of runs stored before to
    their rowids; ``secrets`` and ``purge_raw`` are by slot too. What a run that is not
    stored (a duplicate run id) queued is left out. A round's run is written with (never
    after) the first checkpoint of the run's row that follows it."""
    flushed = Flushed()
    try:
        await conn.execute("BEGIN IMMEDIATE")
        if new_runs:
            await _insert_runs(conn, new_runs, flushed)
            rowids = {**rowids, **flushed.inserted}
        if restamp:
            await conn.executemany(
                queries.UPDATE_RUN_START, [(at, rowids[s]) for at, s in restamp if s in rowids]
            )
        if batch:
            secrets = dict(secrets)
            # one trip to the writer's thread for the whole batch, one INSERT per chunk
            await conn.executemany(
                queries.INSERT_EVENTS_JSON,
                [
                    (
                        _EventRows(
                            keys[i : i + EVENTS_PER_INSERT],
                            batch[i : i + EVENTS_PER_INSERT],
                            secrets,
                            rowids,
                        ),
                    )
                    for i in range(0, len(batch), EVENTS_PER_INSERT)
                ],
            )
        if segments:
            await conn.executemany(
                queries.INSERT_DELTAS,
                [
                    segment_row(s, rowids[s.slot], secrets.get(s.slot, ()))
                    for s in segments
                    if s.slot in rowids
                ],
            )
        if raw_dumps:  # one chunk in memory at a time, read in SQLite's thread
            await conn.executemany(
                queries.INSERT_RUN_EVENTS_JSON,
                (
                    (rowids[slot], chunk)
                    for slot, spill in raw_dumps
                    if slot in rowids
                    for chunk in spill.chunks()
                ),
            )
        if purge_raw:
            await conn.executemany(
                queries.DELETE_RAW_EVENTS, [(rowids[s],) for s in purge_raw if s in rowids]
            )
        if alert_rows:
            await conn.executemany(queries.INSERT_ALERT, alert_rows)
        if round_run_rows:
            await conn.executemany(queries.INSERT_ROUND_RUN, round_run_rows)
        if round_prompt_rows:
            await conn.executemany(queries.UPDATE_ROUND_PROMPT, round_prompt_rows)
        if run_rows:
            await conn.executemany(
                queries.UPDATE_RUN,
                [(*row[1:], rowids[row[0]]) for row in run_rows if row[0] in rowids],
            )
        if attempt_rows:
            await conn.executemany(
                queries.UPSERT_ATTEMPT,
                [(rowids[row[0]], *row[1:]) for row in attempt_rows if row[0] in rowids],
            )
        await conn.execute("COMMIT")
    except Exception as exc:  # disk full, read-only, busy, closed, or a bad event
        await rollback(conn)
        return Flushed(exc)
    except BaseException:  # the loop is going away: leave no transaction open
        await asyncio.shield(rollback(conn))
        raise
    return flushed


async def rollback(conn: aiosqlite.Connection) -> None:
    """Roll back ``conn``'s transaction, if any (never raises)."""
    with contextlib.suppress(Exception):
        await conn.execute("ROLLBACK")
