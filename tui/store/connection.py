"""Opening the database file: locking, connecting, refusing what is not ours, migrating.

Each failure becomes a :class:`StoreError` with one sentence naming the file and the cause.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiosqlite

from .errors import StoreError, StoreProblem
from .lock import DbLock
from .schema import APPLICATION_ID, SCHEMA_VERSION, migration_script

BUSY_TIMEOUT_MS = 5000
"""How long a statement waits for another connection's write transaction before failing:
writers take turns for their short flush transactions; only a longer hold is an error."""


def busy_timeout_sql() -> str:
    """The PRAGMA that sets a connection's :data:`BUSY_TIMEOUT_MS`."""
    return f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"


BUSY_BACKOFF_S = (0.05, 2.0)
"""First and longest pause before a write that found the database busy is tried again
(doubling, with jitter): another writer held its write transaction past the busy timeout."""


def backoff(retry: int) -> float:
    """The pause before busy retry number ``retry`` (1-based), see :data:`BUSY_BACKOFF_S`."""
    first, longest = BUSY_BACKOFF_S
    return min(first * 2.0 ** (retry - 1), longest) * (0.5 + random.random() / 2)


_PROBLEMS: dict[int, StoreProblem] = {
    sqlite3.SQLITE_READONLY: "readonly",
    sqlite3.SQLITE_BUSY: "busy",
    sqlite3.SQLITE_LOCKED: "busy",
    sqlite3.SQLITE_CANTOPEN: "cantopen",
    sqlite3.SQLITE_NOTADB: "corrupt",
    sqlite3.SQLITE_CORRUPT: "corrupt",
    sqlite3.SQLITE_FULL: "full",
}
"""SQLite primary result codes -> the store's problem kinds."""


def sqlite_problem(exc: BaseException) -> StoreProblem | None:
    """The kind of problem an exception from SQLite reports, by its result code
    (``sqlite3.Error.sqlite_errorcode``; extended codes count as their primary one)."""
    code = getattr(exc, "sqlite_errorcode", None)  # only errors raised by SQLite carry one
    if not isinstance(exc, sqlite3.Error) or not isinstance(code, int):
        return None
    return _PROBLEMS.get(code & 0xFF)


def readonly_error(path: Path, detail: str) -> StoreError:
    """The error for a database that tokentop may not write (``detail`` says why)."""
    return StoreError(
        f"database {path} is read-only ({detail}); tokentop needs write access to record "
        "runs: fix the permissions of the file and its directory, or use --db",
        problem="readonly",
    )


def store_error(path: Path, exc: BaseException) -> StoreError:
    """A :class:`StoreError` with one sentence explaining why ``path`` could not be opened,
    read or written (``exc``: an ``sqlite3.Error``, told apart by its result code)."""
    text = str(exc)
    problem = sqlite_problem(exc)
    if problem == "readonly":
        return readonly_error(path, text)
    if problem == "corrupt":
        message = f"{path} is not a tokentop database: the file is corrupt or not SQLite ({text})"
    elif problem == "cantopen":
        message = (
            f"cannot open database {path} ({text}): check that its directory exists and is "
            "writable, or use --db"
        )
    elif problem == "full":
        message = f"cannot write to {path}: {text}"
    elif problem == "busy":
        message = (
            f"database {path} is locked by another process (another tokentop, or a program "
            f"such as the sqlite3 shell) that has held a write transaction for more than "
            f"{BUSY_TIMEOUT_MS / 1000:g} s ({text}); close that program, or use --db"
        )
    else:
        message = f"database {path}: {text}"
    return StoreError(message, problem=problem)


def _daemon_worker(conn: aiosqlite.Connection) -> None:
    """Make the worker thread of the not yet started ``conn`` a daemon.

    aiosqlite offers no public way to choose: its ``Connection`` keeps a plain
    ``threading.Thread`` in the private ``_thread``. This is the one place that touches it;
    ``tests/store/test_connection.py`` fails when aiosqlite changes it.
    """
    thread = getattr(conn, "_thread", None)
    if isinstance(thread, threading.Thread) and not thread.is_alive():
        thread.daemon = True


async def connect(database: str, *, uri: bool = False) -> aiosqlite.Connection:
    """An autocommit aiosqlite connection whose worker thread is a daemon.

    aiosqlite's thread is not a daemon: a store that was never closed (a crash screen, a
    forgotten ``close``) would keep the process from exiting. As a daemon, it dies with the
    process, which is safe: SQLite rolls back an unfinished transaction on the next open,
    exactly as after ``kill -9``.
    """
    conn = aiosqlite.connect(database, uri=uri, isolation_level=None)
    _daemon_worker(conn)
    return await conn


def claim(path: Path, *, readonly: bool) -> tuple[Path, DbLock | None]:
    """The absolute database path and a writer lock (None: read without upkeep)."""
    db = path.expanduser().absolute()
    if readonly:
        if not db.is_file():
            raise StoreError(f"no database at {db} yet (nothing has been recorded)")
        if not (os.access(db, os.W_OK) and os.access(db.parent, os.W_OK)):
            return db, None
        try:
            return db, DbLock.acquire(db)
        except StoreError:  # an older tokentop writes it, or the directory is read-only
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
            "(fix its permissions, or use --db)",
            problem="readonly",
        )
    if not os.access(db.parent, os.W_OK | os.X_OK):
        raise StoreError(
            f"the directory {db.parent} is read-only: tokentop needs to create files next to "
            f"{db.name} (its journal and lock); fix the permissions, or use --db",
            problem="readonly",
        )
    return db, DbLock.acquire(db)


_MAGIC = b"SQLite format 3\x00"


def _corrupt(db: Path, detail: str) -> StoreError:
    return StoreError(
        f"{db} is not a tokentop database: the file is corrupt or not SQLite ({detail})",
        problem="corrupt",
    )


def _foreign(db: Path) -> StoreError:
    return StoreError(f"{db} is an SQLite database, but not one of tokentop's; use --db")


def _newer(db: Path, version: int) -> StoreError:
    return StoreError(
        f"database {db} was written by a newer tokentop (schema version {version}; this "
        f"one understands up to {SCHEMA_VERSION}): upgrade tokentop, or use --db"
    )


def _check_identity(db: Path, version: int, app_id: int, objects: int) -> None:
    """Ours: our application id (the first migration sets it), or a blank SQLite file (no
    id, no version, no tables)."""
    if app_id != APPLICATION_ID and (app_id != 0 or version != 0 or objects > 0):
        raise _foreign(db)
    if version > SCHEMA_VERSION:
        raise _newer(db, version)


def identify(db: Path) -> int | None:
    """Check, changing nothing, that ``db`` is a tokentop database this tokentop may open,
    before anything writes to it (``PRAGMA journal_mode`` rewrites a file's header).

    Returns its schema version (0: an SQLite file without tables), or None when there is no
    database yet (no file, or an empty one without a write-ahead log). Raises
    :class:`StoreError` for a directory, a file that is not SQLite, another program's SQLite
    file, and a newer schema. It reads the file's header itself; only a header that leaves
    the question open (no application id, or a write-ahead log with newer pages) is asked
    of SQLite, on a read-only connection (``immutable`` when there is no log, so that not
    even a ``-shm`` file appears next to someone else's database).
    """
    if db.is_dir():
        raise StoreError(f"{db} is a directory, not a database file")
    try:
        with open(db, "rb") as f:
            head = f.read(100)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {db}: {exc.strerror or exc}", problem="cantopen") from None
    wal = db.with_name(db.name + "-wal")
    has_wal = wal.is_file() and wal.stat().st_size > 0
    if not head and not has_wal:
        return None
    if head:
        if len(head) < 100 or not head.startswith(_MAGIC):
            raise _corrupt(db, "no SQLite header")
        page = int.from_bytes(head[16:18], "big")
        if not (page == 1 or (512 <= page <= 32768 and page & (page - 1) == 0)) or head[
            21:24
        ] != bytes((64, 32, 32)):
            raise _corrupt(db, "a damaged SQLite header")
        version = int.from_bytes(head[60:64], "big")
        app_id = int.from_bytes(head[68:72], "big")
        if app_id not in (0, APPLICATION_ID) or (app_id == 0 and version != 0):
            raise _foreign(db)
        if version > SCHEMA_VERSION:
            raise _newer(db, version)
        if app_id == APPLICATION_ID and not has_wal:
            return version
    flags = "mode=ro" if has_wal else "mode=ro&immutable=1"
    try:
        con = sqlite3.connect(f"file:{quote(str(db))}?{flags}", uri=True)
    except sqlite3.Error as exc:
        raise store_error(db, exc) from None
    try:
        version = int(con.execute("PRAGMA user_version").fetchone()[0])
        app_id = int(con.execute("PRAGMA application_id").fetchone()[0])
        objects = int(con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
    except sqlite3.Error as exc:
        raise store_error(db, exc) from None
    finally:
        con.close()
    _check_identity(db, version, app_id, objects)
    return version


def identified(path: Path, *, readonly: bool) -> Path:
    """The absolute path of a database that :func:`identify` accepts (for ``readonly``,
    one that holds a database already: an empty file is refused, and left empty)."""
    db = path.expanduser().absolute()
    if identify(db) is None and readonly and db.is_file():
        raise StoreError(f"no database at {db} yet (the file is empty)")
    return db


async def fetch_one(conn: aiosqlite.Connection, sql: str, params: Any = ()) -> Any:
    async with conn.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    return None if row is None else row[0]


async def check_version(conn: aiosqlite.Connection, db: Path, *, upgradable: bool) -> int:
    """The database's schema version, after refusing foreign and newer databases."""
    version = int(await fetch_one(conn, "PRAGMA user_version"))
    app_id = int(await fetch_one(conn, "PRAGMA application_id"))
    objects = 0
    if app_id != APPLICATION_ID:
        objects = int(await fetch_one(conn, "SELECT count(*) FROM sqlite_master"))
    _check_identity(db, version, app_id, objects)
    if version < SCHEMA_VERSION and not upgradable:
        raise StoreError(
            f"database {db} has schema version {version} and needs an upgrade to "
            f"{SCHEMA_VERSION}, which another tokentop holding it must do first"
        )
    return version


async def migrate(conn: aiosqlite.Connection, db: Path) -> None:
    """Apply every migration step after the database's version, one transaction each."""
    version = await check_version(conn, db, upgradable=True)
    for target in range(version + 1, SCHEMA_VERSION + 1):
        try:
            await conn.executescript(migration_script(target))
        except sqlite3.Error:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            # another writer opening at the same time may have applied this step first
            if int(await fetch_one(conn, "PRAGMA user_version")) >= target:
                continue
            raise
