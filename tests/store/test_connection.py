"""What the store reads from aiosqlite and sqlite3: the worker thread it makes a daemon (no
public API: this fails when aiosqlite changes under ``connection._daemon_worker``) and the
SQLite result codes that tell its problems apart."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from tui.store.connection import connect, sqlite_problem, store_error


async def test_the_connections_worker_thread_is_a_daemon(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    conn = await connect(str(tmp_path / "t.db"))
    try:
        (worker,) = set(threading.enumerate()) - before
        assert worker.daemon
    finally:
        await conn.close()


def _error_of(db: Path, sql: str) -> sqlite3.Error:
    con = sqlite3.connect(db)
    try:
        con.execute(sql)
    except sqlite3.Error as exc:
        return exc
    finally:
        con.close()
    raise AssertionError(f"{sql!r} did not fail")


def test_problems_come_from_result_codes(tmp_path: Path) -> None:
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_bytes(b"plain text, not a database" * 100)
    assert sqlite_problem(_error_of(not_sqlite, "SELECT * FROM sqlite_master")) == "corrupt"
    missing_dir = tmp_path / "nope" / "t.db"
    with pytest.raises(sqlite3.Error) as err:
        sqlite3.connect(missing_dir)
    assert sqlite_problem(err.value) == "cantopen"
    assert sqlite_problem(sqlite3.OperationalError("readonly, by its text only")) is None
    assert sqlite_problem(ValueError("attempt to write a readonly database")) is None
    error = store_error(tmp_path / "t.db", err.value)
    assert error.problem == "cantopen" and str(error).startswith("cannot open database ")
