"""The transcript store: one long-lived aiosqlite connection, its lifecycle and its runs.

:class:`Store` opens the database (creating, upgrading and repairing it), starts runs, and
closes; writing events is :class:`~tui.store.writer.EventWriter`'s job (batched, see
:mod:`tui.store.writer`), reading is :class:`~tui.store.reading.RunQueries`', and compare
rounds are :mod:`tui.store.rounds`'.

Locking: any number of tokentop processes (the dashboard, ``tokentop run`` in another
terminal, several stores in one process) write one database at once. SQLite in WAL mode
serialises their write transactions, which are all short (one per flush: ``start_run``
only queues the run's row for the next one); a writer waits up to ``busy_timeout`` (5 s) for
its turn, and readers never wait. Only a transaction held longer than that (another
program's ``BEGIN EXCLUSIVE``, a sqlite3 shell left in a transaction) makes opening fail with
a :class:`StoreError` naming the cause; a flush that finds the database busy keeps what it
had and tries again with backoff (:mod:`tui.store.writer`), so recording goes on.

Each writing store holds an exclusive ``flock`` on its own lock file
``<db>.writers/<token>.lock`` while it is open and records its token as the ``owner`` of
every run it starts (:mod:`tui.store.lock`). Opening a writer marks ``running`` runs
``interrupted`` only when their owner is dead (its lock file can be locked, or is gone):
the runs of live writers are never touched. Such runs are first re-folded from their
committed events (a running run's row is only a checkpoint), so their text is never older
than their events; the dead writer's running rounds are marked ``interrupted`` too. Closing
marks the store's own unfinished runs and rounds ``interrupted`` and removes its lock file.

A read-only store reads a database of schema 4 or 5 as it is when it cannot upgrade it (the
file is read-only, or an older tokentop holds it): the schema-5 rounds of a schema-4 file
are then just absent, and every run is a one-turn conversation of its own (schema 6 added
conversations, :mod:`tui.store.conversations`).

Retention (``[store]``, given to :meth:`Store.open` as ``retention``): ``keep_raw_events``
decides which runs keep their raw SSE events (:mod:`tui.store.writer`), ``keep_days`` how
long runs are kept (:mod:`tui.store.retention`, also :meth:`Store.prune`).

Closing stops the flusher with an event (never by cancelling a flush in flight) and then
commits what is left; a flush interrupted anyway (its task cancelled) is rolled back, so the
connection never stays inside a transaction.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import aiosqlite

from tui.config import SessionConfig, StoreConfig
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import new_run_id

from . import queries
from .broadcasts import BroadcastQueries, checked_broadcast_id
from .codec import config_snapshot, scrub, secret_of, snapshot_json
from .connection import (
    busy_timeout_sql,
    check_version,
    claim,
    connect,
    fetch_one,
    identified,
    migrate,
    readonly_error,
    store_error,
)
from .conversations import checked_turn
from .dead_writers import interrupt_dead_writers
from .errors import StoreError
from .lock import DbLock, owner_alive, sweep_dead
from .retention import Pruner
from .rounds import RoundQueries, RoundWriter
from .rows import ClientLagSource
from .schema import READABLE_SINCE
from .writer import CHECKPOINT_S, FLUSH_INTERVAL_S, FLUSH_PERIOD_S, NewRun

__all__ = ["CHECKPOINT_S", "FLUSH_INTERVAL_S", "FLUSH_PERIOD_S", "Store"]


class Store(Pruner, RoundWriter, RoundQueries, BroadcastQueries):
    """Every run, every event, every conversation, every compare round and broadcast, in
    one SQLite file. Open with :meth:`open`."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        path: Path,
        lock: DbLock | None,
        retention: StoreConfig | None = None,
    ) -> None:
        """Use :meth:`Store.open`."""
        retention = retention or StoreConfig()
        super().__init__(
            conn, path, readonly=lock is None, keep_raw_events=retention.keep_raw_events
        )
        self.keep_days = retention.keep_days
        self._session_secrets: dict[str, str] = {}
        """The API key of each session that started a run here (blanked out of alerts)."""
        self._lock = lock
        self.owner = lock.token if lock is not None else None
        """This writer's token, the ``owner`` of the runs it starts (None when read-only)."""

    # -- opening -----------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        retention: StoreConfig | None = None,
    ) -> Store:
        """Open (creating, upgrading and repairing as needed) the database at ``path``.

        A writer takes its own lock file (other writers, in this process or others, may be
        open at the same time), applies pending migrations, marks runs left ``running``
        by dead writers ``interrupted`` and applies ``retention`` (the ``[store]`` settings;
        None: the defaults): it keeps raw events as ``keep_raw_events`` says and deletes the
        runs older than ``keep_days`` now and every hour while it stays open.
        ``readonly=True`` (history, export) does the same upkeep, without ``retention``,
        when it may write the file and gives its lock back at once, then reads through a
        read-only connection; it skips the upkeep when the file is read-only or stays
        locked. Every expected problem raises :class:`StoreError`.
        """
        # refuse what is not ours before anything (a lock file, the WAL switch) touches it
        db = identified(Path(path), readonly=readonly)  # a few bytes, as claim() reads
        db, lock = claim(db, readonly=readonly)
        if not readonly:
            assert lock is not None  # claim raises when a writer cannot lock
            return await cls._open_locked(db, lock, retention)
        if lock is not None:
            try:
                await (await cls._open_locked(db, lock)).close()
            except StoreError as exc:
                if exc.problem not in ("readonly", "busy"):  # reading may still work
                    raise
        return await cls._open_readonly(db)

    @classmethod
    async def _open_locked(
        cls, db: Path, lock: DbLock, retention: StoreConfig | None = None
    ) -> Store:
        conn: aiosqlite.Connection | None = None
        try:
            conn = await connect(str(db))
            await conn.execute(busy_timeout_sql())
            mode = await fetch_one(conn, "PRAGMA journal_mode = WAL")
            if str(mode).lower() != "wal":
                # SQLite answers with the old mode when it cannot create the -wal file.
                raise readonly_error(db, "cannot create its write-ahead log")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await migrate(conn, db)
            owners = [row[0] for row in await conn.execute_fetchall(queries.RUNNING_OWNERS)]
            dead = [o for o in owners if o != lock.token and not owner_alive(db, o)]
            if dead:
                await interrupt_dead_writers(conn, dead)
            sweep_dead(db, keep=lock.token)
        except BaseException as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            lock.release()
            if isinstance(exc, sqlite3.Error):
                raise store_error(db, exc) from None
            raise
        store = cls(conn, db, lock, retention)
        try:
            await store.apply_keep_days()
        except StoreError as exc:
            if exc.problem != "busy":  # another writer's long transaction: in an hour
                await store.close()
                raise
        store._start_flusher()
        return store

    @classmethod
    async def _open_readonly(cls, db: Path) -> Store:
        # A WAL database needs its -shm file even for reading; in a read-only directory
        # without one, a cleanly closed database (no -wal) can still be read as immutable.
        flags = ["mode=ro"]
        if not os.access(db.parent, os.W_OK) and not db.with_name(db.name + "-wal").exists():
            flags.append("immutable=1")
        conn: aiosqlite.Connection | None = None
        try:
            uri = f"file:{quote(str(db))}?{'&'.join(flags)}"
            conn = await connect(uri, uri=True)
            await conn.execute(busy_timeout_sql())
            version = int(await fetch_one(conn, "PRAGMA user_version"))
            await check_version(conn, db, upgradable=version >= READABLE_SINCE)  # as it is
        except BaseException as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise store_error(db, exc) from None
            raise
        return cls(conn, db, None)

    async def __aenter__(self) -> Store:
        """``async with await Store.open(p) as store``: closes on exit."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the store."""
        await self.close()

    # -- runs --------------------------------------------------------------------------

    async def start_run(
        self,
        session: SessionConfig,
        *,
        prompt: str,
        run_id: str | None = None,
        accumulator: RunAccumulator | None = None,
        conversation_id: str | None = None,
        turn: int = 1,
        lag_source: ClientLagSource | None = None,
        broadcast_id: str | None = None,
    ) -> str:
        """Record a new run of ``session`` (its config snapshot without secrets); its id.

        ``accumulator``: the caller's own accumulator of this run, into which it applies
        every event *before* handing it to :meth:`add_events` (``tui.session``'s controller
        does): the store then reads the run's state from it instead of folding every event
        a second time. Without it the store folds the events into its own.

        The run is turn ``turn`` (from 1) of the conversation ``conversation_id``
        (tokentop's id; None: a one-turn conversation of its own, whose id is the run's).
        Several runs may be one turn: a failed try sent again, an edited prompt (see
        :mod:`tui.store.conversations`). Raises ``ValueError`` for an empty or overlong id
        and a turn that is not a whole number from 1.

        ``broadcast_id``: the compare broadcast the run was sent in (tokentop's id; the
        runs of one send share it, which links their conversations as the columns of one
        compare, :mod:`tui.store.broadcasts`); None: sent on its own. ``ValueError`` for an
        empty or overlong one.

        ``lag_source`` (the session layer's run) measures tokentop's own loop lag over the
        run: its ``client_lag`` and ``client_bound`` are stored with the run's final row
        (without it they are NULL, unknown).

        Nothing waits for the database: the run's row is written by the next flush, within
        :data:`FLUSH_INTERVAL_S`, before its events. Its ``started_at`` is the wall time of
        its events' clock (``t`` = 0), as its first events tell it, and never before this
        call: a run whose request waited in the client started when it was sent. A run id that
        another writer has stored already is found then: the run is not stored, and
        ``on_error`` says so. When recording has stopped after a write error, the run is not
        stored but its id is still returned, so that the stream goes on.
        """
        self._check_writer()
        conversation_id, turn = checked_turn(conversation_id, turn)
        broadcast_id = checked_broadcast_id(broadcast_id)
        run_id = run_id or new_run_id()
        if run_id in self._active or run_id in self._ended or run_id in self._dropping:
            raise StoreError(f"run {run_id} was already started")
        if self.errors:
            self._dropping.add(run_id)
            return run_id
        secret = secret_of(session)
        if secret is not None:
            self._session_secrets[session.name] = secret
        config_text, config_hash = snapshot_json(config_snapshot(session))
        now = time.time()
        begun = NewRun(
            (session.name, config_text, config_hash, datetime.fromtimestamp(now, UTC).isoformat()),
            (
                run_id,
                config_hash,
                session.name,
                session.api,
                session.model,
                scrub(prompt, session),
                os.getpid(),
                self.owner,
                conversation_id,
                turn,
                broadcast_id,
            ),
        )
        shared = accumulator is not None
        if accumulator is None:
            accumulator = RunAccumulator(run_id, session.name, session.api, session.model, prompt)
        self._track(begun, accumulator, shared=shared, secret=secret, started=now, lag=lag_source)
        return run_id

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
        """Queue an alert for the next flush (synchronous, never blocks; see
        :meth:`tui.store.reading.RunQueries.list_alerts`).

        ``at`` is wall time (``time.time()``), stored as ISO 8601 UTC; the session's API key
        is blanked out of ``message``. The alert is linked to the stored run ``run_id`` (when
        it is stored) and pruned with it. Like events, it waits while another writer holds
        the database and is dropped only once recording has stopped after a write error.
        Raises :class:`StoreError` on a read-only or closed store.
        """
        self._check_writer()
        if not self.errors:
            secret = self._session_secrets.get(session)
            message = scrub(message, secret)
            self.queue.add_alert(run_id, session, metric, value, threshold, message, at)

    async def close(self) -> None:
        """Flush, mark runs and rounds that have not finished ``interrupted``, release the
        lock."""
        if self._closed:
            return
        await self._stop_flusher()
        if not self.readonly:
            if not await self._flush_retrying(closing=True):
                self._give_up_queued()
            with contextlib.suppress(Exception):  # keeps query plans good; optional
                await self._conn.execute("PRAGMA optimize")
            await self._close_rounds()
        self._closed = True
        self.queue.spill_file.close()
        with contextlib.suppress(Exception):
            await self._conn.close()
        if self._lock is not None:
            self._lock.release()
