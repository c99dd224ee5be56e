"""Retention: deleting old runs (``Store.prune``, ``[store] keep_days``) and what they held.

Conversations go whole: a run is old when its conversation's last run started before the
cutoff (and none of its runs is running), so that a long conversation never loses its first
turns while it goes on.

A pruned run is gone from every table: its ``runs`` row, and with it (``ON DELETE
CASCADE``) its attempts, events, compact deltas, alerts and place in a compare round, and
its search entry (the ``runs_fts_deleted`` trigger); config snapshots no run refers to any
more go too, and so do old alerts of runs that were never stored and old rounds left without
runs (a round stays while one of its runs does). A ``running`` run is never pruned (its
writer is alive: a dead writer's runs are marked ``interrupted`` when a writer opens the
database), nor is a running round.

Runs are deleted :data:`PRUNE_BATCH` at a time, each batch its own short transaction, so the
writer's flushes (and other writers) take turns with a long prune instead of waiting for it.
``keep_days`` is applied when a writer opens the database and then every
:data:`~tui.store.writer.UPKEEP_S` (an hour) by the writer's flusher, so a process that runs
for days keeps its database within the window; a failure there is reported through
``on_error`` and does not stop recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

from . import queries
from .connection import fetch_one, store_error
from .errors import StoreError
from .records import PruneResult
from .window import started_since
from .writer import EventWriter

__all__ = ["PRUNE_BATCH", "Pruner", "file_bytes"]

PRUNE_BATCH = 200
"""Runs deleted per transaction (a 400-token run is about 800 rows with its raw events)."""

DAY_S = 86400.0


def file_bytes(db: Path) -> int:
    """The database file plus its write-ahead log, in bytes."""
    total = 0
    for path in (db, db.with_name(db.name + "-wal")):
        with contextlib.suppress(OSError):
            total += os.stat(path).st_size
    return total


class Pruner(EventWriter):
    """Pruning, for :class:`~tui.store.store.Store` (mixed in over the writer)."""

    keep_days: float | None = None
    """Runs older than this many days are deleted on open and every ``upkeep_period``
    (``[store] keep_days``; None: kept until pruned)."""

    async def prune(self, older_than_s: float, *, vacuum: bool = False) -> PruneResult:
        """Delete every ended run that started more than ``older_than_s`` seconds ago, with
        the rest of its conversation: a conversation with a run started since, or running,
        is kept whole.

        Everything of a pruned run goes (see the module docstring); ``vacuum`` then rebuilds
        the search index and the file, giving the freed space back to the disk (it needs a
        moment when no other connection writes). Returns how many runs went and the file's
        size (main file plus write-ahead log, checkpointed) before and after. Raises
        :class:`StoreError` on a read-only store or when the database stays busy.
        """
        self._check_writer()
        if not older_than_s > 0:
            raise ValueError(f"older_than_s must be positive, not {older_than_s}")
        await self.flush()
        before, free_before = await self._measure()
        runs = await self._prune_before(started_since(older_than_s))
        if vacuum:
            async with self._write_lock:
                try:
                    await self._conn.execute("INSERT INTO runs_fts(runs_fts) VALUES ('optimize')")
                    await self._conn.execute("VACUUM")
                except sqlite3.Error as exc:
                    raise store_error(self.path, exc) from None
        after, free_after = await self._measure()
        return PruneResult(runs, before, after, free_before, free_after)

    async def _measure(self) -> tuple[int, int]:
        """(file + WAL bytes, free-page bytes), after a checkpoint that truncates the WAL
        when no reader holds it (otherwise as it is)."""
        try:
            async with self._write_lock:
                await self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            free = int(await fetch_one(self._conn, "PRAGMA freelist_count"))
            page = int(await fetch_one(self._conn, "PRAGMA page_size"))
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None
        return await asyncio.to_thread(file_bytes, self.path), free * page

    async def _prune_before(self, cutoff: str) -> int:
        """Delete the ended runs that started before ``cutoff`` (a ``started_at``) and what
        they held, :data:`PRUNE_BATCH` per transaction; how many runs went."""
        total = 0
        while True:
            async with self._write_lock:
                deleted = await self._in_transaction(self._delete_batch, cutoff)
            total += deleted
            if deleted < PRUNE_BATCH:
                break
        async with self._write_lock:
            await self._in_transaction(self._delete_leftovers, cutoff)
        return total

    async def _delete_batch(self, cutoff: str) -> int:
        rows = await self._conn.execute_fetchall(queries.PRUNABLE_RUNS, (cutoff, PRUNE_BATCH))
        ids = [row[0] for row in rows]
        if ids:
            marks = ", ".join("?" for _ in ids)
            await self._conn.execute(queries.DELETE_RUNS.format(marks=marks), ids)
        return len(ids)

    async def _delete_leftovers(self, cutoff: str) -> int:
        await self._conn.execute(queries.DELETE_UNUSED_SESSIONS)
        await self._conn.execute(queries.DELETE_OLD_LOOSE_ALERTS, (cutoff,))
        await self._conn.execute(queries.DELETE_EMPTY_ROUNDS, (cutoff,))
        return 0

    async def _in_transaction(self, work: Callable[[str], Awaitable[int]], cutoff: str) -> int:
        """``work(cutoff)`` in one ``BEGIN IMMEDIATE`` transaction (rolled back on error,
        which is raised as a :class:`StoreError`)."""
        try:
            await self._conn.execute("BEGIN IMMEDIATE")
            result = await work(cutoff)
            await self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            await self._rollback()
            raise store_error(self.path, exc) from None
        except BaseException:
            await asyncio.shield(self._rollback())
            raise
        return result

    async def apply_keep_days(self) -> int:
        """Delete the runs older than :attr:`keep_days` now (0 when it is None); how many."""
        if self.keep_days is None or self.readonly or self._closed:
            return 0
        return await self._prune_before(started_since(self.keep_days * DAY_S))

    async def _periodic_upkeep(self) -> None:
        """Called by the flusher every ``upkeep_period``: apply ``keep_days``. A
        failure is reported and retried next period; recording goes on."""
        try:
            await self.apply_keep_days()
        except StoreError as exc:
            if exc.problem != "busy":  # another writer's long transaction: next time
                self._report(f"{exc} (while deleting runs older than keep_days)")
        except Exception as exc:  # never the flusher's end: recording goes on
            self._report(
                f"cannot delete runs older than keep_days from {self.path}: internal error "
                f"{type(exc).__name__}: {exc}"
            )
