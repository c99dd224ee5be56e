"""Files that are not ours: a refused open changes nothing, for a writer and for a reader.

Every case compares the bytes of the file (and the list of files beside it) before and
after the refused open: another program's SQLite file (rollback journal or WAL, with or
without an application id), a file that is not SQLite, an empty file (for a reader), a
directory, and a tokentop database of a newer schema version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tui.store import Store, StoreError
from tui.store.schema import APPLICATION_ID, SCHEMA_VERSION


def _snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every entry under ``directory``: file bytes (None for a directory)."""
    return {
        str(p.relative_to(directory)): None if p.is_dir() else p.read_bytes()
        for p in sorted(directory.rglob("*"))
    }


def _sqlite(path: Path, *pragmas: str) -> None:
    con = sqlite3.connect(path)
    for pragma in pragmas:
        con.execute(pragma)
    con.execute("CREATE TABLE notes (body TEXT)")
    con.execute("INSERT INTO notes VALUES ('keep me')")
    con.commit()
    con.close()


def foreign_rollback(path: Path) -> None:
    _sqlite(path)


def foreign_wal(path: Path) -> None:
    _sqlite(path, "PRAGMA journal_mode = WAL")


def foreign_app_id(path: Path) -> None:
    _sqlite(path, "PRAGMA application_id = 1234")


def foreign_user_version(path: Path) -> None:
    _sqlite(path, "PRAGMA user_version = 2")


def not_sqlite(path: Path) -> None:
    path.write_bytes(b"plain text, not a database\n" * 100)


def sqlite_garbage(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 2000)


def newer_tokentop(path: Path) -> None:
    """A tokentop database of a newer schema, in rollback-journal mode (whose header a WAL
    switch would rewrite)."""
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "foreign rollback": (foreign_rollback, "not one of tokentop's"),
    "foreign wal": (foreign_wal, "not one of tokentop's"),
    "foreign application id": (foreign_app_id, "not one of tokentop's"),
    "foreign user version": (foreign_user_version, "not one of tokentop's"),
    "not sqlite": (not_sqlite, "not a tokentop database"),
    "sqlite garbage": (sqlite_garbage, "not a tokentop database"),
    "newer tokentop": (newer_tokentop, "newer tokentop"),
}


@pytest.mark.parametrize("readonly", [False, True], ids=["writer", "reader"])
@pytest.mark.parametrize("case", list(CASES))
async def test_a_refused_file_is_left_exactly_as_it_was(
    tmp_path: Path, case: str, readonly: bool
) -> None:
    make, message = CASES[case]
    db = tmp_path / "other.db"
    make(db)
    before = _snapshot(tmp_path)
    with pytest.raises(StoreError, match=message):
        await Store.open(db, readonly=readonly)
    assert _snapshot(tmp_path) == before  # the file's bytes, and no file created beside it


async def test_a_reader_leaves_an_empty_file_empty(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    with pytest.raises(StoreError, match=r"no database at .* yet"):
        await Store.open(db, readonly=True)
    assert _snapshot(tmp_path) == {"empty.db": b""}


async def test_a_writer_takes_an_empty_file_as_a_new_database(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    async with await Store.open(db) as store:
        assert await store.schema_version() == SCHEMA_VERSION


@pytest.mark.parametrize("readonly", [False, True], ids=["writer", "reader"])
async def test_a_directory_is_left_alone(tmp_path: Path, readonly: bool) -> None:
    db = tmp_path / "runs.db"
    db.mkdir()
    (db / "inside").write_bytes(b"x")
    before = _snapshot(tmp_path)
    with pytest.raises(StoreError):
        await Store.open(db, readonly=readonly)
    assert _snapshot(tmp_path) == before


async def test_our_own_database_still_opens_both_ways(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    # while the writer is open, its pages may be in the WAL only
    async with await Store.open(db), await Store.open(db, readonly=True) as reader:
        assert await reader.schema_version() == SCHEMA_VERSION
    async with await Store.open(db, readonly=True) as reader:
        assert await reader.schema_version() == SCHEMA_VERSION
