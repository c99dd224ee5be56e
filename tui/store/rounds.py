"""Compare rounds in the store: one prompt sent ``count`` times to each of several sessions.

A round is its own row (``rounds``, schema 5): prompt, count, order, the columns' session
names, status and times, and the ``owner`` token of the writer running it. Its runs are
ordinary runs; ``round_runs`` says which run is which column's how-manieth one.

The runner calls :meth:`RoundWriter.start_round` (one short transaction, like ``start_run``),
then for each run ``start_run`` and right after it :meth:`RoundWriter.add_round_run`
(synchronous, O(1): queued and written by the next flush with the run's events, in the same
transaction as the next checkpoint of the run's row, so a stored run's round is never
missing once that row is), and at the end :meth:`RoundWriter.end_round`. A round the
store's owner closes without ending is ``interrupted``; so is a running round whose writer
died, when the next writer opens the database (ended when its last stored run ended).

Secrets: the round's prompt is stored with the API key of every session known to the store
blanked out, as a run's prompt is; a key that becomes known with a later run of the round
(its ``start_run``) is blanked out of the stored prompt by the next flush.

Reading (:class:`RoundQueries`): :meth:`~RoundQueries.list_rounds` and
:meth:`~RoundQueries.get_round`, also on a read-only store; a schema-4 database read as it
is (a read-only store does not upgrade) has no rounds.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from tui.config import KeepRawEvents

from . import queries
from .codec import scrub
from .connection import fetch_one, sqlite_problem
from .errors import StoreError
from .reading import RunQueries
from .records import RoundRecord, RoundRun, round_record
from .schema import ROUNDS_SINCE
from .writer import BUSY_GIVE_UP_S, EventWriter, backoff

__all__ = ["ROUND_END_STATUSES", "RoundQueries", "RoundWriter", "interrupt_rounds_of"]

ROUND_END_STATUSES = ("done", "cancelled", "failed")
"""How a runner ends a round (:meth:`RoundWriter.end_round`); ``interrupted`` is the
store's own word for a round nobody ended."""

_BUSY = object()


def _iso(when: datetime) -> str:
    """Wall time as stored (ISO 8601 UTC, microseconds: the form ``runs.started_at`` has)."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(slots=True)
class _OpenRound:
    """The writer's state of one round it started and has not ended."""

    rowid: int
    sessions: tuple[str, ...]
    count: int
    prompt: str
    """As given (secrets not yet blanked out)."""
    stored_prompt: str
    """As stored (every secret known so far blanked out)."""
    runs: set[str] = field(default_factory=set)
    slots: set[tuple[str, int]] = field(default_factory=set)


class RoundWriter(EventWriter):
    """Writing compare rounds, for :class:`~tui.store.store.Store` (mixed in over the writer)."""

    _session_secrets: dict[str, str]
    owner: str | None

    def __init__(
        self,
        conn: aiosqlite.Connection,
        path: Path,
        *,
        readonly: bool,
        keep_raw_events: KeepRawEvents = "failed",
    ) -> None:
        super().__init__(conn, path, readonly=readonly, keep_raw_events=keep_raw_events)
        self._rounds: dict[str, _OpenRound] = {}
        self._ended_rounds: set[str] = set()
        self._dropped_rounds: set[str] = set()
        """Rounds started after recording stopped (not stored)."""

    def _scrubbed(self, prompt: str, sessions: Sequence[str]) -> str:
        for name in sessions:
            prompt = scrub(prompt, self._session_secrets.get(name))
        return prompt

    async def start_round(
        self, round_id: str, *, prompt: str, count: int, order: str, sessions: Sequence[str]
    ) -> None:
        """Record a new round ``round_id``: ``count`` runs of ``prompt`` per column, the
        columns being the sessions named ``sessions`` (in their order), taking turns as
        ``order`` says (the runner's word, stored as given).

        Raises ``ValueError`` for an empty id, order or session name, a ``count`` below 1, no
        sessions or a session named twice; :class:`StoreError` for a round id this store
        started already or that is in the database, and on a read-only or closed store.
        When recording has stopped after a write error, nothing is stored (and
        :meth:`add_round_run` and :meth:`end_round` accept the round all the same).
        """
        self._check_writer()
        names = tuple(sessions)
        if not isinstance(round_id, str) or not round_id.strip():
            raise ValueError("a round needs an id")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"round {round_id}: count must be a whole number of 1 or more")
        if not isinstance(order, str) or not order.strip():
            raise ValueError(f"round {round_id}: order must be named")
        if not names or any(not isinstance(n, str) or not n for n in names):
            raise ValueError(f"round {round_id}: it needs one or more named sessions")
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"round {round_id}: session {twice[0]!r} is named twice")
        if round_id in self._rounds or round_id in self._ended_rounds | self._dropped_rounds:
            raise StoreError(f"round {round_id} was already started")
        if self.errors:
            self._dropped_rounds.add(round_id)
            return
        stored = self._scrubbed(prompt, names)
        row = (round_id, _iso(datetime.now(UTC)), stored, count, order, json.dumps(names))
        rowid = await self._retry_busy(
            lambda: self._insert_round((*row, self.owner)), f"round {round_id} is not saved"
        )
        if rowid is None:
            self._dropped_rounds.add(round_id)
            return
        self._rounds[round_id] = _OpenRound(rowid, names, count, prompt, stored)

    def add_round_run(self, round_id: str, *, session: str, index: int, run_id: str) -> None:
        """Queue that run ``run_id`` (just started with ``start_run``) is the ``index``-th
        (from 1) run of the column ``session`` of round ``round_id``; synchronous, O(1),
        written by the next flush (see the module docstring).

        Raises :class:`StoreError` for a round not started here or already ended, a run not
        started here, or a run already in the round; ``ValueError`` for a session that is
        not one of the round's columns, or an index outside 1 to its count, or taken. A run
        or round that is not stored (recording had stopped) is accepted and not stored.
        """
        self._check_writer()
        state = self._rounds.get(round_id)
        if state is None:
            if round_id in self._dropped_rounds:
                return
            if round_id in self._ended_rounds:
                raise StoreError(f"round {round_id} has ended: no run can be added to it")
            raise StoreError(f"round {round_id} was not started with Store.start_round")
        if session not in state.sessions:
            raise ValueError(
                f"round {round_id}: session {session!r} is not one of its columns "
                f"({', '.join(state.sessions)})"
            )
        if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= state.count:
            raise ValueError(
                f"round {round_id}: run index {index!r} of {session!r} is not between 1 and "
                f"{state.count}"
            )
        if (session, index) in state.slots:
            raise ValueError(f"round {round_id}: {session!r} has a run {index} already")
        if run_id in state.runs:
            raise StoreError(f"run {run_id} is in round {round_id} already")
        if run_id not in self._active and run_id not in self._ended:
            if run_id in self._dropping:
                return
            raise StoreError(f"run {run_id} was not started with Store.start_run")
        state.runs.add(run_id)
        state.slots.add((session, index))
        if self.errors:
            return
        self.queue.round_runs.append((round_id, run_id, session, index))
        secret = self._session_secrets.get(session)
        if secret and secret in state.stored_prompt:
            state.stored_prompt = scrub(state.stored_prompt, secret)
            self.queue.round_prompts.append((state.stored_prompt, round_id))

    async def end_round(self, round_id: str, *, status: str) -> None:
        """End round ``round_id`` as ``status`` (``done``, ``cancelled`` or ``failed``),
        after a flush (so that its queued runs are stored first).

        Raises ``ValueError`` for another status, :class:`StoreError` for a round not
        started here or ended already, and on a read-only or closed store.
        """
        self._check_writer()
        if status not in ROUND_END_STATUSES:
            raise ValueError(
                f"round {round_id}: status {status!r} is not one of {', '.join(ROUND_END_STATUSES)}"
            )
        if round_id in self._dropped_rounds:
            self._dropped_rounds.discard(round_id)
            self._ended_rounds.add(round_id)
            return
        state = self._rounds.pop(round_id, None)
        if state is None:
            if round_id in self._ended_rounds:
                raise StoreError(f"round {round_id} has ended already")
            raise StoreError(f"round {round_id} was not started with Store.start_round")
        self._ended_rounds.add(round_id)
        await self.flush()
        if self.errors:
            return
        params = (
            status,
            _iso(datetime.now(UTC)),
            self._scrubbed(state.prompt, state.sessions),
            state.rowid,
        )
        await self._retry_busy(
            lambda: self._execute_round(queries.END_ROUND, params),
            f"the end of round {round_id} is not saved",
        )

    async def _close_rounds(self) -> None:
        """Closing: the rounds this writer started and did not end are ``interrupted``."""
        rounds, self._rounds = self._rounds, {}
        self._ended_rounds.update(rounds)
        if not rounds or self.errors or self.readonly:
            return
        async with self._write_lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                for round_id, state in rounds.items():
                    prompt = self._scrubbed(state.prompt, state.sessions)
                    await self._conn.execute(queries.UPDATE_ROUND_PROMPT, (prompt, round_id))
                await self._conn.execute(
                    queries.INTERRUPT_OWN_ROUNDS, (_iso(datetime.now(UTC)), self.owner)
                )
                await self._conn.execute("COMMIT")
            except sqlite3.Error as exc:  # the next writer marks them: their owner is dead
                await self._rollback()
                self._report(f"cannot mark the unfinished rounds in {self.path}: {exc}")

    async def _retry_busy(self, write: Callable[[], Awaitable[object]], lost: str) -> Any:
        """``await write()`` until it is not :data:`_BUSY` (another writer held the
        database), with backoff, for up to :data:`BUSY_GIVE_UP_S`; its result (None once it
        gave up, saying what was ``lost``)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + BUSY_GIVE_UP_S
        retry = 0
        while True:
            result = await write()
            if result is not _BUSY:
                return result
            retry += 1
            self.busy_retries += 1
            if loop.time() > give_up:
                self._report(
                    f"database {self.path} stayed busy (another writer holds it) for "
                    f"{BUSY_GIVE_UP_S:g} s: {lost}"
                )
                return None
            await asyncio.sleep(backoff(retry))

    async def _insert_round(self, row: tuple[Any, ...]) -> object:
        """The new round's rowid; None when writing failed (recording stopped), :data:`_BUSY`
        when another writer held the database."""
        async with self._write_lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                rowid = await fetch_one(self._conn, queries.INSERT_ROUND, row)
                await self._conn.execute("COMMIT")
            except sqlite3.IntegrityError:
                await self._rollback()
                raise StoreError(f"round id {row[0]} is already in {self.path}") from None
            except sqlite3.Error as exc:
                await self._rollback()
                if sqlite_problem(exc) == "busy":
                    return _BUSY
                self._fail(exc)
                return None
        return rowid

    async def _execute_round(self, sql: str, params: tuple[Any, ...]) -> object:
        """One statement of its own (True); None when it failed (recording stopped),
        :data:`_BUSY` when another writer held the database."""
        async with self._write_lock:
            try:
                await self._conn.execute(sql, params)
            except sqlite3.Error as exc:
                if sqlite_problem(exc) == "busy":
                    return _BUSY
                self._fail(exc)
                return None
        return True


async def interrupt_rounds_of(conn: aiosqlite.Connection, owners: Sequence[str | None]) -> None:
    """Mark the running rounds of the dead writers ``owners`` ``interrupted``, each ended
    when its last stored run ended (when it started, without runs). Runs first: their own
    end is then known (``MARK_INTERRUPTED``)."""
    for owner in owners:
        for rowid, started_at in await conn.execute_fetchall(
            queries.RUNNING_ROUNDS_OF_OWNER, (owner,)
        ):
            ended = datetime.fromisoformat(started_at)
            for run_start, ended_s in await conn.execute_fetchall(queries.ROUND_RUN_ENDS, (rowid,)):
                end = datetime.fromisoformat(run_start) + timedelta(seconds=ended_s or 0.0)
                ended = max(ended, end)
            await conn.execute(queries.MARK_ROUND_INTERRUPTED, (_iso(ended), rowid))


class RoundQueries(RunQueries):
    """Reading compare rounds (mixed into :class:`~tui.store.store.Store`)."""

    async def _has_rounds(self) -> bool:
        """Whether the database has the rounds tables (a read-only store of a schema-4
        database reads it as it is, without them)."""
        return await self._schema() >= ROUNDS_SINCE

    async def list_rounds(
        self, *, limit: int = 50, since: float | None = None
    ) -> list[RoundRecord]:
        """Stored rounds, newest first: at most ``limit``, those that started at ``since``
        (Unix seconds) or later."""
        await self.flush()
        if not await self._has_rounds():
            return []
        after = None if since is None else _iso(datetime.fromtimestamp(since, UTC))
        rows = await self._query(*queries.list_rounds_sql(limit=limit, since=after))
        runs = await self._round_runs([int(row[-1]) for row in rows])
        return [round_record(tuple(row[:-1]), runs.get(int(row[-1]), ())) for row in rows]

    async def get_round(self, id_or_prefix: str) -> RoundRecord | None:
        """The round whose id is or uniquely starts with the argument; None when none does.
        Raises :class:`StoreError` for an empty id and for a prefix that matches several
        rounds (naming them)."""
        await self.flush()
        prefix = id_or_prefix.strip()
        if not prefix:
            raise StoreError("no round id given")
        if not await self._has_rounds():
            return None
        found = await self._query(*queries.prefix_sql(prefix, rounds=True))
        if not found:
            return None
        if found[0][1] != prefix and len(found) > 1:
            shown = ", ".join(r[1] for r in found[:5]) + (", ..." if len(found) > 5 else "")
            raise StoreError(
                f"round id prefix {prefix!r} is ambiguous: it matches {shown}; give more characters"
            )
        rowid = int(found[0][0])
        rows = await self._query(queries.SELECT_ROUND, (rowid,))
        if not rows:
            return None
        runs = await self._round_runs([rowid])
        return round_record(tuple(rows[0][:-1]), runs.get(rowid, ()))

    async def _round_runs(self, rowids: list[int]) -> dict[int, list[RoundRun]]:
        """The runs of the given rounds, by round rowid, in the order they started."""
        found: dict[int, list[RoundRun]] = {}
        for start in range(0, len(rowids), 500):
            chunk = rowids[start : start + 500]
            sql = queries.SELECT_ROUND_RUNS.format(marks=", ".join("?" for _ in chunk))
            for rowid, session, number, run_id in await self._query(sql, chunk):
                found.setdefault(rowid, []).append(RoundRun(session, number, run_id))
        return found
