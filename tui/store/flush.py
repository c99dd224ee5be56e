"""What one flush of the store's writer writes, and the transaction that writes it.

:class:`ActiveRun` is the writer's state of one run (its fold, sequence numbers, last
checkpoint, the deltas it gathers, the raw events it holds back) and gives the run's row and
changed attempts; :class:`_EventRows` is a chunk of queued events, encoded to JSON by SQLite's
adapter in the writer's thread (never on the event loop), with the sessions' API keys
(:func:`secret_forms`) blanked out; text and reasoning deltas go to ``deltas`` rows instead
(:mod:`tui.store.compact`, encoded the same way); :func:`commit_flush` writes one batch
(events, deltas, alerts, the runs of compare rounds, run rows, attempts, and the deletion
of raw events a completed run need not keep) in one ``BEGIN IMMEDIATE`` transaction.

Promises: :func:`commit_flush` never raises an ``Exception``: it returns the one that rolled
the transaction back (busy, disk full, read-only, a bad event), or None once committed, and
it leaves no transaction open even when cancelled. When to flush, how to retry a busy
database and how the queue is bounded is :mod:`tui.store.writer`'s job.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from tui.stream.accumulate import RunAccumulator
from tui.stream.events import RawEvent, RunEvent
from tui.stream.result import AttemptRecord

from . import queries
from .codec import encode_rows
from .compact import DeltaSegment, blank_secrets, segment_row
from .rows import changed_attempts, run_row

__all__ = [
    "EVENTS_PER_INSERT",
    "SEQ_BITS",
    "ActiveRun",
    "commit_flush",
    "rollback",
    "secret_forms",
]

SEQ_BITS = 32
"""Queued events are keyed ``rowid << SEQ_BITS | seq``: a plain int, which (unlike a tuple)
the garbage collector never has to visit, keeping GC pauses short at high event rates."""
SEQ_MASK = (1 << SEQ_BITS) - 1

EVENTS_PER_INSERT = 2_000
"""Events per ``INSERT ... FROM json_each(?)``: the writer's thread encodes one chunk while
holding the GIL, so a chunk is kept small enough not to stall the event loop."""


def secret_forms(secret: str) -> tuple[bytes, ...]:
    """How ``secret`` can appear in the encoded events: as is, JSON-escaped (a key with a quote
    or a backslash), and escaped twice (inside a raw event's data, itself JSON)."""
    raw = secret.encode()
    once = encode_rows(secret)[1:-1]
    twice = encode_rows(once.decode())[1:-1]
    return tuple(dict.fromkeys((twice, once, raw)))  # longest first, no duplicates


class _EventRows:
    """A chunk of queued events, encoded to the JSON array of :data:`queries.INSERT_EVENTS_JSON`
    only when SQLite binds it: the sqlite3 adapter below runs in the writer's thread, so the
    event loop never pays for the encoding."""

    __slots__ = ("events", "keys", "secrets")

    def __init__(
        self, keys: list[int], events: list[RunEvent], secrets: dict[int, tuple[bytes, ...]]
    ) -> None:
        self.keys = keys
        self.events = events
        self.secrets = secrets

    def adapt(self) -> str:
        """The rows as JSON text, with the API keys of their sessions blanked out (should a
        server or a URL ever echo one)."""
        keys = self.keys
        blob = encode_rows(
            [
                (key >> SEQ_BITS, key & SEQ_MASK, event.t, type(event).__name__, event)
                for key, event in zip(keys, self.events, strict=True)
            ]
        )
        secrets = self.secrets
        if secrets:
            for rowid in {key >> SEQ_BITS for key in keys} & secrets.keys():
                blob = blank_secrets(blob, secrets[rowid])
        # text, not bytes: SQLite 3.45+ reads a BLOB argument of a JSON function as JSONB
        return blob.decode()


sqlite3.register_adapter(_EventRows, _EventRows.adapt)


@dataclass(slots=True)
class ActiveRun:
    """The writer's state of one run between its ``start_run`` and its last flush."""

    rowid: int
    acc: RunAccumulator
    """The run's one fold: the caller's own (``shared``) or the store's."""
    shared: bool
    """``acc`` is the caller's, who applies every event to it first: not applied again."""
    secret: str | None
    """The session's API key, blanked out of every text written (should one echo it)."""
    key: int
    """``rowid`` shifted to key this run's queued events (see :data:`SEQ_BITS`)."""
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
    held_keys: list[int] = field(default_factory=list)
    held: list[RawEvent] = field(default_factory=list)
    """Raw events held back until the run's outcome is known (``keep_raw_events =
    "failed"``), with their queue keys; bounded, see ``tui.store.writer.RAW_HOLD_EVENTS``."""
    held_bytes: int = 0
    """The size of the held raw events' data."""
    spilled: bool = False
    """Held raw events were queued (written) before the outcome was known: deleted again if
    the run completes."""
    purge_raw: bool = False
    """The run completed after raw events were spilled: its last flush deletes them."""

    def row(self, *, final: bool) -> tuple[Any, ...]:
        """The run's row values now (see :func:`tui.store.rows.run_row`)."""
        return run_row(self.acc, final=final, last_t=self.last_t, secret=self.secret)

    def attempt_rows(self) -> list[tuple[Any, ...]]:
        """Rows of the attempts changed since the last call."""
        return changed_attempts(self.rowid, self.acc.attempts, self.written, self.secret)


async def commit_flush(
    conn: aiosqlite.Connection,
    keys: list[int],
    batch: list[RunEvent],
    run_rows: list[tuple[Any, ...]],
    attempt_rows: list[tuple[Any, ...]],
    secrets: dict[int, tuple[bytes, ...]],
    *,
    segments: Sequence[DeltaSegment] = (),
    alert_rows: Sequence[tuple[Any, ...]] = (),
    round_run_rows: Sequence[tuple[Any, ...]] = (),
    round_prompt_rows: Sequence[tuple[Any, ...]] = (),
    purge_raw: Sequence[int] = (),
) -> BaseException | None:
    """One flush transaction on ``conn``: the events of ``batch`` (keyed by ``keys``, see
    :data:`SEQ_BITS`, with the ``secrets`` of their runs blanked out) and the delta
    ``segments``; the raw events of the runs ``purge_raw`` deleted; then ``alert_rows``
    (``INSERT_ALERT``), ``round_run_rows`` (``INSERT_ROUND_RUN``), ``round_prompt_rows``
    (``UPDATE_ROUND_PROMPT``), ``run_rows`` (``UPDATE_RUN``) and ``attempt_rows``
    (``UPSERT_ATTEMPT``); the exception that rolled it back, if any. A round's run is
    written with (never after) the first checkpoint of the run's row that follows it."""
    try:
        await conn.execute("BEGIN IMMEDIATE")
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
                        ),
                    )
                    for i in range(0, len(batch), EVENTS_PER_INSERT)
                ],
            )
        if segments:
            await conn.executemany(
                queries.INSERT_DELTAS, [segment_row(s, secrets.get(s.rowid, ())) for s in segments]
            )
        if purge_raw:
            await conn.executemany(queries.DELETE_RAW_EVENTS, [(rowid,) for rowid in purge_raw])
        if alert_rows:
            await conn.executemany(queries.INSERT_ALERT, alert_rows)
        if round_run_rows:
            await conn.executemany(queries.INSERT_ROUND_RUN, round_run_rows)
        if round_prompt_rows:
            await conn.executemany(queries.UPDATE_ROUND_PROMPT, round_prompt_rows)
        if run_rows:
            await conn.executemany(queries.UPDATE_RUN, run_rows)
        if attempt_rows:
            await conn.executemany(queries.UPSERT_ATTEMPT, attempt_rows)
        await conn.execute("COMMIT")
    except Exception as exc:  # disk full, read-only, busy, closed, or a bad event
        await rollback(conn)
        return exc
    except BaseException:  # the loop is going away: leave no transaction open
        await asyncio.shield(rollback(conn))
        raise
    return None


async def rollback(conn: aiosqlite.Connection) -> None:
    """Roll back ``conn``'s transaction, if any (never raises)."""
    with contextlib.suppress(Exception):
        await conn.execute("ROLLBACK")
