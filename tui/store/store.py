"""The transcript store: one long-lived aiosqlite connection and a batched event writer.

``add_event`` only appends to an in-memory list and folds the event into the run's state
(O(1), never awaits). A background task flushes the list every ``flush_interval`` (200 ms) and
at once after every :class:`~tui.stream.events.Finished`: one transaction per flush with the
events (``executemany``; the JSON encoding runs lazily inside SQLite's worker thread), a
checkpoint of every changed run row (its partial text too, so a ``kill -9`` loses at most one
flush interval) and the changed attempts. A failed flush (disk full, file made read-only) is
rolled back, nothing already committed is touched, recording stops, and the error is
surfaced in :attr:`Store.errors` / :attr:`Store.last_error` / :attr:`Store.on_error`, while
``add_event`` keeps accepting (and dropping) events so that streams go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiosqlite

from tui.config import SessionConfig
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import Finished, RunEvent, new_run_id

from . import queries
from .codec import (
    REDACTED,
    config_snapshot,
    decode_event,
    encode_event,
    scrub,
    secret_of,
    snapshot_json,
)
from .errors import StoreError
from .fold import RunFold
from .lock import DbLock
from .records import (
    AttemptRecord,
    ErrorRecord,
    RunDetail,
    RunSummary,
    summary_fields,
)
from .replay import paced
from .schema import APPLICATION_ID, SCHEMA_VERSION, migration_script

REDACTED_BYTES = REDACTED.encode()

FLUSH_INTERVAL_S = 0.2
"""The longest time an event should wait in memory before it is committed (the crash bound)."""

FLUSH_PERIOD_S = 0.15
"""How often the flusher runs: shorter than :data:`FLUSH_INTERVAL_S`, leaving room for the
commit itself and for event-loop jitter within the bound."""


def describe_sqlite_error(path: Path, exc: BaseException) -> str:
    """A one-sentence explanation of why ``path`` could not be opened or written."""
    text = str(exc)
    low = text.lower()
    if "not a database" in low or "malformed" in low:
        return f"{path} is not a tokentop database: the file is corrupt or not SQLite ({text})"
    if "readonly" in low or "read-only" in low:
        return (
            f"database {path} is read-only ({text}); tokentop needs write access to record "
            "runs: fix the permissions of the file and its directory, or use --db"
        )
    if "unable to open" in low:
        return (
            f"cannot open database {path} ({text}): check that its directory exists and is "
            "writable, or use --db"
        )
    if "full" in low:
        return f"cannot write to {path}: {text}"
    if "locked" in low or "busy" in low:
        return f"database {path} is in use by another program ({text})"
    return f"database {path}: {text}"


SEQ_BITS = 32
"""Queued events are keyed ``rowid << SEQ_BITS | seq``: a plain int, which (unlike a tuple)
the garbage collector never has to visit, keeping GC pauses short at high event rates."""
SEQ_MASK = (1 << SEQ_BITS) - 1


def _encoded(
    keys: list[int], events: list[RunEvent], secrets: dict[int, bytes]
) -> Iterator[tuple[Any, ...]]:
    """Event rows, encoded lazily: ``executemany`` consumes this in SQLite's thread.

    ``secrets`` (run rowid -> the API key of its session) are blanked out of payloads,
    should a server or a URL ever echo one.
    """
    for key, event in zip(keys, events, strict=True):
        rowid = key >> SEQ_BITS
        payload = encode_event(event)
        if secrets:
            secret = secrets.get(rowid)
            if secret is not None and secret in payload:
                payload = payload.replace(secret, REDACTED_BYTES)
        yield rowid, key & SEQ_MASK, event.t, type(event).__name__, payload


class Store:
    """Every run and every event, in one SQLite file. Open with :meth:`open`."""

    def __init__(self, conn: aiosqlite.Connection, path: Path, lock: DbLock | None) -> None:
        """Use :meth:`Store.open`."""
        self._conn = conn
        self.path = path
        """The database file."""
        self._lock = lock
        self.readonly = lock is None
        """True when opened for reading only (another tokentop holds the writer lock)."""
        self.flush_period = FLUSH_PERIOD_S
        """Seconds between background flushes (tests and benchmarks may change it)."""
        self.errors: list[str] = []
        """Write errors so far (recording stops at the first)."""
        self.on_error: Callable[[str], None] | None = None
        """Called with the message when writing fails (the UI shows it)."""
        self.on_flush: Callable[[int], None] | None = None
        """Called after each committed flush with the total number of events written."""
        self.events_written = 0
        self.events_dropped = 0
        self._active: dict[str, RunFold] = {}
        self._ended: set[str] = set()
        self._dropping: set[str] = set()
        self._pending_keys: list[int] = []
        self._pending: list[RunEvent] = []
        self._secrets: dict[int, bytes] = {}
        self._write_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    # -- opening -----------------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, readonly: bool = False) -> Store:
        """Open (creating, upgrading and repairing as needed) the database at ``path``.

        A writer takes the exclusive lock ``<path>.lock`` (another tokentop holding it ->
        :class:`StoreError` naming its pid), applies pending migrations and marks runs left
        ``running`` by a dead process ``interrupted``. ``readonly=True`` (history, export)
        never fails because of the lock: when the lock is free it does that upkeep and gives
        the lock back at once, then reads through a read-only connection, so that a
        dashboard starting meanwhile is not refused. Every expected problem raises
        :class:`StoreError`.
        """
        db, lock = _claim(Path(path), readonly=readonly)
        if not readonly:
            assert lock is not None  # _claim raises when a writer cannot lock
            return await cls._open_locked(db, lock)
        if lock is not None:
            try:
                await (await cls._open_locked(db, lock)).close()
            except StoreError as exc:
                if "read-only" not in str(exc):
                    raise
        return await cls._open_readonly(db)

    @classmethod
    async def _open_locked(cls, db: Path, lock: DbLock) -> Store:
        conn: aiosqlite.Connection | None = None
        try:
            conn = await _connect(str(db))
            await conn.execute("PRAGMA busy_timeout = 5000")
            mode = await _fetch_one(conn, "PRAGMA journal_mode = WAL")
            if str(mode).lower() != "wal":
                # SQLite answers with the old mode when it cannot create the -wal file.
                raise StoreError(
                    describe_sqlite_error(db, sqlite3.OperationalError("read-only directory"))
                )
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await _migrate(conn, db)
            await conn.execute("BEGIN IMMEDIATE")
            await conn.execute(queries.MARK_INTERRUPTED)
            await conn.execute("COMMIT")
        except BaseException as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            lock.release()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(describe_sqlite_error(db, exc)) from None
            raise
        store = cls(conn, db, lock)
        store._flusher = asyncio.create_task(store._flush_loop(), name="tokentop-store-flusher")
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
            conn = await _connect(uri, uri=True)
            await conn.execute("PRAGMA busy_timeout = 5000")
            await _check_version(conn, db, upgradable=False)
        except BaseException as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(describe_sqlite_error(db, exc)) from None
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

    @property
    def last_error(self) -> str | None:
        """The write error that stopped recording, if any."""
        return self.errors[-1] if self.errors else None

    # -- writing -----------------------------------------------------------------------

    def _check_writer(self) -> None:
        if self.readonly:
            raise StoreError(f"database {self.path} is open read-only (another tokentop writes it)")
        if self._closed:
            raise StoreError("the store is closed")

    async def start_run(
        self, session: SessionConfig, *, prompt: str, run_id: str | None = None
    ) -> str:
        """Record a new run of ``session`` (its config snapshot without secrets); its id.

        When recording has stopped after a write error, the run is not stored but its id is
        still returned, so that the stream goes on.
        """
        self._check_writer()
        run_id = run_id or new_run_id()
        if run_id in self._active or run_id in self._ended or run_id in self._dropping:
            raise StoreError(f"run {run_id} was already started")
        if self.errors:
            self._dropping.add(run_id)
            return run_id
        config_text, config_hash = snapshot_json(config_snapshot(session))
        now = datetime.now(UTC)
        async with self._write_lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                session_id = await _fetch_one(
                    self._conn,
                    queries.INSERT_SESSION,
                    (session.name, config_text, config_hash, now.isoformat()),
                )
                rowid = await _fetch_one(
                    self._conn,
                    queries.INSERT_RUN,
                    (
                        run_id,
                        session_id,
                        session.name,
                        session.api,
                        session.model,
                        scrub(prompt, session),
                        now.isoformat(timespec="microseconds"),
                        os.getpid(),
                    ),
                )
                await self._conn.execute("COMMIT")
            except sqlite3.IntegrityError:
                await self._rollback()
                raise StoreError(f"run id {run_id} is already in {self.path}") from None
            except sqlite3.Error as exc:
                await self._rollback()
                self._fail(exc)
                self._dropping.add(run_id)
                return run_id
        accumulator = RunAccumulator(run_id, session.name, session.api, session.model, prompt)
        secret = secret_of(session)
        self._active[run_id] = RunFold(
            int(rowid), accumulator, key=int(rowid) << SEQ_BITS, secret=secret
        )
        if secret is not None:
            self._secrets[int(rowid)] = secret.encode()
        return run_id

    def add_event(self, run_id: str, event: RunEvent) -> None:
        """Queue ``event`` of ``run_id`` for the next flush (synchronous, O(1), never blocks).

        Events after a write error, or after the run's :class:`Finished`, are dropped.
        """
        fold = self._active.get(run_id)
        if fold is None or fold.finished is not None:
            if fold is not None or run_id in self._ended or run_id in self._dropping:
                self.events_dropped += 1
                return
            raise StoreError(f"run {run_id} was not started with Store.start_run")
        if self.errors:
            self.events_dropped += 1
            return
        seq = fold.next_seq
        fold.next_seq = seq + 1
        fold.apply(event)
        self._pending_keys.append(fold.key | seq)
        self._pending.append(event)
        if type(event) is Finished:
            self._wake.set()

    async def flush(self) -> None:
        """Commit everything queued so far."""
        if not self.readonly and not self._closed:
            await self._flush_batch()

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.flush_period
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_at - loop.time()))
            self._wake.clear()
            next_at = loop.time() + self.flush_period
            await self._flush_batch()

    async def _flush_batch(self, *, closing: bool = False) -> None:
        async with self._write_lock:
            keys, batch = self._pending_keys, self._pending
            self._pending_keys, self._pending = [], []
            if self.errors:
                self.events_dropped += len(batch)
                return
            # Snapshot run rows now, on the loop: they match exactly the events in `batch`.
            changed = [
                (run_id, fold, fold.next_seq, fold.finished is not None or closing)
                for run_id, fold in self._active.items()
                if fold.next_seq != fold.flushed_seq or closing
            ]
            if not batch and not changed:
                return
            run_rows = [(*fold.row(final=final), fold.rowid) for _, fold, _, final in changed]
            attempt_rows = [row for _, fold, _, _ in changed for row in fold.take_dirty_attempts()]
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                if batch:
                    await self._conn.executemany(
                        queries.INSERT_EVENT, _encoded(keys, batch, self._secrets)
                    )
                if run_rows:
                    await self._conn.executemany(queries.UPDATE_RUN, run_rows)
                if attempt_rows:
                    await self._conn.executemany(queries.UPSERT_ATTEMPT, attempt_rows)
                await self._conn.execute("COMMIT")
            except (sqlite3.Error, ValueError) as exc:  # ValueError: connection closed
                await self._rollback()
                self.events_dropped += len(batch)
                self._fail(exc)
                return
            self.events_written += len(batch)
            for run_id, fold, seq, final in changed:
                fold.flushed_seq = seq
                if final:
                    del self._active[run_id]
                    self._ended.add(run_id)
                    self._secrets.pop(fold.rowid, None)
        if self.on_flush is not None:
            self.on_flush(self.events_written)

    async def _rollback(self) -> None:
        with contextlib.suppress(Exception):
            await self._conn.execute("ROLLBACK")

    def _fail(self, exc: BaseException) -> None:
        message = (
            describe_sqlite_error(self.path, exc)
            + "; recording stopped (the streams go on, but are not saved)"
        )
        self.errors.append(message)
        if self.on_error is not None:
            with contextlib.suppress(Exception):
                self.on_error(message)

    async def close(self) -> None:
        """Flush, mark runs that have not finished ``interrupted``, release the lock."""
        if self._closed:
            return
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if not self.readonly:
            await self._flush_batch(closing=True)
            with contextlib.suppress(Exception):  # keeps query plans good; optional
                await self._conn.execute("PRAGMA optimize")
        self._closed = True
        with contextlib.suppress(Exception):
            await self._conn.close()
        if self._lock is not None:
            self._lock.release()

    # -- reading -----------------------------------------------------------------------

    async def _query(self, sql: str, params: Any = ()) -> list[Any]:
        if self._closed:
            raise StoreError("the store is closed")
        try:
            return list(await self._conn.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise StoreError(describe_sqlite_error(self.path, exc)) from None

    async def list_runs(
        self,
        *,
        search: str | None = None,
        session: str | None = None,
        model: str | None = None,
        finish: str | None = None,
        limit: int = 50,
    ) -> list[RunSummary]:
        """Runs matching every given filter, newest first (see :func:`queries.list_runs_sql`)."""
        await self.flush()
        sql, params = queries.list_runs_sql(
            search=search, session=session, model=model, finish=finish, limit=limit
        )
        rows = await self._query(sql, params)
        attempts = await self._attempts([int(row[-1]) for row in rows])
        return [
            RunSummary(**summary_fields(tuple(row[:-1])), attempt_records=attempts.get(row[-1], ()))
            for row in rows
        ]

    async def _attempts(self, rowids: list[int]) -> dict[int, tuple[AttemptRecord, ...]]:
        """The attempts of the given runs, by run rowid."""
        found: dict[int, list[AttemptRecord]] = {}
        for start in range(0, len(rowids), 500):
            chunk = rowids[start : start + 500]
            sql = queries.SELECT_ATTEMPTS.format(marks=", ".join("?" for _ in chunk))
            for a in await self._query(sql, chunk):
                found.setdefault(a[0], []).append(
                    AttemptRecord(
                        number=a[1],
                        at_s=a[2],
                        mode=a[3],
                        http_status=a[4],
                        request_id=a[5],
                        cause=ErrorRecord(a[6], a[8] or "", a[7]) if a[6] else None,
                        resumed_after=a[9],
                        last_event_id=a[10],
                        output_text=a[11],
                        reasoning_text=a[12],
                    )
                )
        return {k: tuple(v) for k, v in found.items()}

    async def _resolve(self, run_id_or_prefix: str) -> tuple[int, str]:
        prefix = run_id_or_prefix.strip()
        if not prefix:
            raise StoreError("no run id given")
        rows = await self._query(*queries.prefix_sql(prefix))
        if not rows:
            raise StoreError(f"no run {prefix!r} in {self.path}")
        if rows[0][1] != prefix and len(rows) > 1:
            shown = ", ".join(r[1] for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise StoreError(
                f"run id prefix {prefix!r} is ambiguous: it matches {shown}; give more characters"
            )
        return int(rows[0][0]), str(rows[0][1])

    async def get_run(self, run_id_or_prefix: str) -> RunDetail:
        """The run whose id is or uniquely starts with the argument, with its attempts."""
        await self.flush()
        rowid, _ = await self._resolve(run_id_or_prefix)
        (row,) = await self._query(queries.DETAIL_SQL, (rowid,))
        fields = summary_fields(tuple(row[:-2]))
        attempts = (await self._attempts([rowid])).get(rowid, ())
        return RunDetail(
            **fields, attempt_records=attempts, config=json.loads(row[-2]), event_count=row[-1]
        )

    async def run_events(self, run_id_or_prefix: str) -> list[RunEvent]:
        """Every recorded event of the run, in arrival order, as the original dataclasses."""
        await self.flush()
        rowid, _ = await self._resolve(run_id_or_prefix)
        rows = await self._query(queries.SELECT_EVENTS, (rowid,))
        return [decode_event(kind, payload) for kind, payload in rows]

    async def replay(
        self,
        run_id_or_prefix: str,
        speed: float | None = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> AsyncIterator[RunEvent]:
        """The run's events again, each at its original offset divided by ``speed``.

        ``speed=None`` yields them all at once. The events are loaded before the first one is
        yielded; pacing uses ``clock`` and ``sleep`` (injectable for tests).
        """
        events = await self.run_events(run_id_or_prefix)
        async for event in paced(events, speed, clock=clock, sleep=sleep):
            yield event

    async def schema_version(self) -> int:
        """``PRAGMA user_version`` of the open database."""
        return int(await _fetch_one(self._conn, "PRAGMA user_version"))


async def _connect(database: str, *, uri: bool = False) -> aiosqlite.Connection:
    """An autocommit aiosqlite connection whose worker thread is a daemon.

    aiosqlite's thread is not a daemon: a store that was never closed (a crash screen, a
    forgotten ``close``) would keep the process from exiting. As a daemon, it dies with the
    process, which is safe: SQLite rolls back an unfinished transaction on the next open,
    exactly as after ``kill -9``.
    """
    conn = aiosqlite.connect(database, uri=uri, isolation_level=None)
    thread = getattr(conn, "_thread", None)
    if isinstance(thread, threading.Thread) and not thread.is_alive():
        thread.daemon = True
    return await conn


def _claim(path: Path, *, readonly: bool) -> tuple[Path, DbLock | None]:
    """The absolute database path and its writer lock (None: read without upkeep)."""
    db = path.expanduser().absolute()
    if readonly:
        if not db.is_file():
            raise StoreError(f"no database at {db} yet (nothing has been recorded)")
        if not (os.access(db, os.W_OK) and os.access(db.parent, os.W_OK)):
            return db, None
        try:
            return db, DbLock.acquire(db)
        except StoreError:  # another tokentop writes it, or the directory is read-only
            return db, None
    if db.is_dir():
        raise StoreError(f"{db} is a directory, not a database file")
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the directory {db.parent}: {exc.strerror}") from None
    # Ask first, so that the message names the cause rather than a failed lock file.
    if db.exists() and not os.access(db, os.W_OK):
        raise StoreError(
            f"database {db} is read-only: tokentop needs write access to record runs "
            "(fix its permissions, or use --db)"
        )
    if not os.access(db.parent, os.W_OK | os.X_OK):
        raise StoreError(
            f"the directory {db.parent} is read-only: tokentop needs to create files next to "
            f"{db.name} (its journal and lock); fix the permissions, or use --db"
        )
    return db, DbLock.acquire(db)


async def _fetch_one(conn: aiosqlite.Connection, sql: str, params: Any = ()) -> Any:
    async with conn.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    return None if row is None else row[0]


async def _check_version(conn: aiosqlite.Connection, db: Path, *, upgradable: bool) -> int:
    """The database's schema version, after refusing foreign and newer databases."""
    version = int(await _fetch_one(conn, "PRAGMA user_version"))
    app_id = int(await _fetch_one(conn, "PRAGMA application_id"))
    if app_id not in (0, APPLICATION_ID) or (
        version == 0 and await _fetch_one(conn, "SELECT count(*) FROM sqlite_master") > 0
    ):
        raise StoreError(f"{db} is an SQLite database, but not one of tokentop's; use --db")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"database {db} was written by a newer tokentop (schema version {version}; this "
            f"one understands up to {SCHEMA_VERSION}): upgrade tokentop, or use --db"
        )
    if version < SCHEMA_VERSION and not upgradable:
        raise StoreError(
            f"database {db} has schema version {version} and needs an upgrade to "
            f"{SCHEMA_VERSION}, which another tokentop holding it must do first"
        )
    return version


async def _migrate(conn: aiosqlite.Connection, db: Path) -> None:
    """Apply every migration step after the database's version, one transaction each."""
    version = await _check_version(conn, db, upgradable=True)
    for target in range(version + 1, SCHEMA_VERSION + 1):
        try:
            await conn.executescript(migration_script(target))
        except sqlite3.Error:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            raise
