"""Schema creation and upgrades keyed on PRAGMA user_version; refusing what is not ours."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import gzip
import json
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.conftest import (
    as_older_jsonl,
    as_older_markdown,
    as_older_records,
    completed_events,
    make_session,
    record,
)
from tui.store import RoundRun, Store, StoreError, export
from tui.store.codec import encode_event
from tui.store.lock import legacy_lock_path
from tui.store.replay import ReplayClock
from tui.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, migration_script
from tui.stream.events import TextDelta

DATA = Path(__file__).with_name("data")


def build_old(path: Path, version: int) -> None:
    """A database as an older tokentop left it: schema ``version`` (0 = an empty file) with
    a completed run, and a run still marked running by a process that is gone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, isolation_level=None)
    for target in range(1, version + 1):
        con.executescript(migration_script(target))
    if version >= 1:
        con.execute(
            "INSERT INTO sessions(id, name, config_json, config_hash, created_at) "
            "VALUES (1, 'old', '{\"name\": \"old\"}', 'h1', '2025-01-01T00:00:00+00:00')"
        )
        for rowid, run_id, status, text in (
            (1, "0000000000aa00000001", "completed", "an old answer about 바다"),
            (2, "0000000000bb00000002", "running", "half an ans"),
        ):
            con.execute(
                "INSERT INTO runs(id, run_id, session_id, session_name, api, model, prompt, "
                "started_at, status, output_text, finish_reason, writer_pid) "
                "VALUES (?, ?, 1, 'old', 'chat', 'm-old', 'old prompt', ?, ?, ?, ?, 999999)",
                (
                    rowid,
                    run_id,
                    f"2025-01-0{rowid}T00:00:00+00:00",
                    status,
                    text,
                    "stop" if status == "completed" else None,
                ),
            )
            con.execute(
                "INSERT INTO attempts(run, number, at_s, http_status) VALUES (?, 1, 0.0, 200)",
                (rowid,),
            )
            # the events spell the row's text exactly, as a real writer leaves them
            for seq, piece in enumerate(re.findall(r"\S+\s*", text)):
                event = TextDelta(0.1 * (seq + 1), piece)
                con.execute(
                    "INSERT INTO events(run, seq, t, kind, payload) VALUES (?, ?, ?, ?, ?)",
                    (rowid, seq, event.t, "TextDelta", encode_event(event)),
                )
    con.close()


def user_version(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()


def test_there_is_a_real_upgrade_path() -> None:
    assert SCHEMA_VERSION >= 2 and len(MIGRATIONS) == SCHEMA_VERSION


async def test_a_new_file_gets_the_current_schema(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        assert await store.schema_version() == SCHEMA_VERSION
    con = sqlite3.connect(db_path)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    assert {"sessions", "runs", "attempts", "events", "runs_fts"} <= tables
    con.close()


@pytest.mark.parametrize("version", range(SCHEMA_VERSION))
async def test_upgrade_from_each_earlier_version(db_path: Path, version: int) -> None:
    build_old(db_path, version)
    assert user_version(db_path) == version
    async with await Store.open(db_path) as store:
        assert await store.schema_version() == SCHEMA_VERSION
        runs = await store.list_runs()
        if version == 0:
            assert runs == []
        else:
            old, stale = sorted(runs, key=lambda r: r.run_id)
            assert (old.status, old.output_text, old.model) == (
                "completed",
                "an old answer about 바다",
                "m-old",
            )
            assert [e.text for e in await store.run_events(old.run_id)] == [  # type: ignore[union-attr]
                "an ",
                "old ",
                "answer ",
                "about ",
                "바다",
            ]
            # the run a dead process left running is interrupted, its partial text kept
            assert stale.status == "interrupted" and stale.output_text == "half an ans"
            assert stale.ended_s == pytest.approx(0.3)
            # rows written before the FTS table existed are searchable after the upgrade
            assert [r.run_id for r in await store.list_runs(search="old answer")] == [old.run_id]
            assert [r.run_id for r in await store.list_runs(search="half")] == [stale.run_id]
            assert (await store.get_run("0000000000aa")).attempt_records[0].http_status == 200
        # and new runs go in next to the old ones
        new_id = await record(store, completed_events("fresh words"))
        assert (await store.list_runs())[0].run_id == new_id
    assert user_version(db_path) == SCHEMA_VERSION
    con = sqlite3.connect(db_path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    con.close()


async def test_reopening_applies_nothing_twice(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        run_id = await record(store, completed_events("only once"))
    async with await Store.open(db_path) as store:
        assert [r.run_id for r in await store.list_runs(search="only once")] == [run_id]
        assert await store.schema_version() == SCHEMA_VERSION


@pytest.mark.parametrize("readonly", [False, True])
async def test_a_newer_schema_is_refused_clearly(db_path: Path, readonly: bool) -> None:
    async with await Store.open(db_path):
        pass
    con = sqlite3.connect(db_path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    con.close()
    with pytest.raises(StoreError) as err:
        await Store.open(db_path, readonly=readonly)
    message = str(err.value)
    assert "newer tokentop" in message and f"schema version {SCHEMA_VERSION + 5}" in message
    # nothing was changed, and the lock was given back
    assert user_version(db_path) == SCHEMA_VERSION + 5
    con = sqlite3.connect(db_path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    con.close()
    async with await Store.open(db_path):
        pass


@pytest.mark.parametrize(
    "content", [b"this is not a database at all\n" * 40, b"SQLite format 3\x00" + b"\xff" * 2000]
)
@pytest.mark.parametrize("readonly", [False, True])
async def test_a_corrupt_file_is_refused_clearly(
    db_path: Path, content: bytes, readonly: bool
) -> None:
    db_path.parent.mkdir(parents=True)
    await asyncio.to_thread(db_path.write_bytes, content)
    with pytest.raises(StoreError, match="not a tokentop database: the file is corrupt"):
        await Store.open(db_path, readonly=readonly)
    assert await asyncio.to_thread(db_path.read_bytes) == content  # untouched


async def test_another_programs_sqlite_file_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    con = sqlite3.connect(db_path)
    con.execute("CREATE TABLE notes (body TEXT)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="not one of tokentop's"):
        await Store.open(db_path)
    con = sqlite3.connect(db_path)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["notes"]
    con.close()


async def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        await Store.open(tmp_path)


async def test_readonly_open_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no database at"):
        await Store.open(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()


async def test_a_reader_upgrades_an_old_database_when_nobody_writes(db_path: Path) -> None:
    build_old(db_path, 1)
    async with await Store.open(db_path, readonly=True) as reader:
        assert reader.readonly
        assert await reader.schema_version() == SCHEMA_VERSION
        assert [r.run_id for r in await reader.list_runs(search="old answer")] == [
            "0000000000aa00000001"
        ]


# -- schema 4 databases (before compare rounds) ----------------------------------------------


@pytest.fixture
def v4_db(tmp_path: Path) -> Path:
    """The schema-4 database the V4 store wrote (``tests/store/data/make_v4.py``)."""
    db = tmp_path / "v4" / "tokentop.db"
    db.parent.mkdir()
    with gzip.open(DATA / "v4.db.gz") as src, db.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return db


def one_turn(run_json: str, run_id: str) -> dict[str, object]:
    """A run's JSON export from before conversations, as it reads now: a one-turn
    conversation of its own."""
    return {**json.loads(run_json), "conversation_id": run_id, "turn": 1}


@contextlib.contextmanager
def older_tokentop_holding(db: Path) -> Iterator[None]:
    """An older tokentop's exclusive legacy lock on ``db``: no writer (nor a reader's
    upkeep) may open it, so a reader reads the file as it is."""
    fd = os.open(legacy_lock_path(db), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


async def test_a_v4_database_reads_exactly_as_the_v4_code_read_it(v4_db: Path) -> None:
    expected = json.loads((DATA / "v4_expected.json").read_text())
    assert user_version(v4_db) == 4
    async with await Store.open(v4_db) as store:  # upgrades, re-folds the dead writer's run
        assert await store.schema_version() == SCHEMA_VERSION
        runs = await store.list_runs()
        assert {r.run_id for r in runs} == set(expected["runs"])
        for run in runs:
            want = expected["runs"][run.run_id]
            detail = await store.get_run(run.run_id)
            events = await store.run_events(run.run_id)
            assert detail.status == want["status"]
            assert as_older_jsonl("".join(export.to_jsonl(events))) == want["jsonl"]
            # the same object, with the run's conversation (its own) and turn added
            got = as_older_records(json.loads(export.to_json(detail)))
            assert got == one_turn(want["json"], run.run_id)
            assert as_older_markdown(export.to_markdown(detail)) == want["md"]
            assert [e async for e in store.replay(run.run_id, ReplayClock(1000.0))] == events
        alerts = [
            dataclasses.asdict(a) | {"at": a.at.isoformat()} for a in await store.list_alerts()
        ]
        assert alerts == expected["alerts"]
        assert await store.list_rounds() == []
        # rounds go in next to the old runs
        await store.start_round("after-v4", prompt="p", count=1, order="o", sessions=["new"])
        new_id = await record(store, completed_events("fresh words"), make_session("new"))
        with pytest.raises(StoreError, match=r"was not started with Store\.start_run"):
            store.add_round_run("after-v4", session="new", index=1, run_id="01a2338a06157cc7d334")
        in_round = await store.start_run(make_session("new"), prompt="p")
        store.add_round_run("after-v4", session="new", index=1, run_id=in_round)
        await store.end_round("after-v4", status="done")
        found = await store.get_round("after")
        assert found is not None and found.runs == (RoundRun("new", 1, in_round),)
        assert (await store.list_runs())[1].run_id == new_id
        assert (await store.prune(1e9)).runs == 0  # nothing is that old
    con = sqlite3.connect(v4_db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        con.close()


async def test_a_v4_database_read_as_it_is_has_no_rounds(v4_db: Path) -> None:
    expected = json.loads((DATA / "v4_expected.json").read_text())
    with older_tokentop_holding(v4_db):
        async with await Store.open(v4_db, readonly=True) as reader:
            assert await reader.schema_version() == 4  # not upgraded: it could not be
            assert {r.run_id for r in await reader.list_runs()} == set(expected["runs"])
            done = next(k for k, v in expected["runs"].items() if v["status"] == "completed")
            detail = await reader.get_run(done)
            assert as_older_records(json.loads(export.to_json(detail))) == one_turn(
                expected["runs"][done]["json"], done
            )
            assert await reader.list_rounds() == []
            assert await reader.list_rounds(since=0.0, limit=5) == []
            assert await reader.get_round("anything") is None
        assert user_version(v4_db) == 4
    async with await Store.open(v4_db, readonly=True) as reader:  # free now: upgraded
        assert await reader.schema_version() == SCHEMA_VERSION
        assert await reader.list_rounds() == []


async def test_an_older_database_read_as_it_is_is_refused(db_path: Path) -> None:
    """Schema 3 lacks what reading runs needs (the compact deltas): only an upgrade helps."""
    build_old(db_path, 3)
    with (
        older_tokentop_holding(db_path),
        pytest.raises(StoreError, match="has schema version 3 and needs an upgrade to"),
    ):
        await Store.open(db_path, readonly=True)
    assert user_version(db_path) == 3
