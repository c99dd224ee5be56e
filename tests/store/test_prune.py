"""Pruning: a pruned run is gone from every table and from search, a running run is never
pruned, keep_days applies on open and from time to time, alerts go with their run; the
alerts round trip; ``tokentop prune`` and ``history --since``."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.store.conftest import completed_events, make_session, record
from tests.store.test_retention import sim_session, stream_run
from tui.cli_store import history_command, prune_command
from tui.config import StoreConfig
from tui.store import Store
from tui.stream.events import Finished as FinishedEvent
from tui.stream.events import RawEvent, TextDelta

TABLES_BY_RUN = {
    "runs": "SELECT count(*) FROM runs WHERE id = ?",
    "attempts": "SELECT count(*) FROM attempts WHERE run = ?",
    "events": "SELECT count(*) FROM events WHERE run = ?",
    "deltas": "SELECT count(*) FROM deltas WHERE run = ?",
    "alerts": "SELECT count(*) FROM alerts WHERE run = ?",
    "runs_fts": "SELECT count(*) FROM runs_fts WHERE rowid = ?",
    "runs_fts_docsize": "SELECT count(*) FROM runs_fts_docsize WHERE id = ?",
}
"""Every table that holds something of a run, keyed by the run's rowid."""


def rowid_of(db: Path, run_id: str) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT id FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0])
    finally:
        con.close()


def rows_of(db: Path, rowid: int) -> dict[str, int]:
    """How many rows of each table belong to the run ``rowid``."""
    con = sqlite3.connect(db)
    try:
        return {
            name: con.execute(sql, (rowid,)).fetchone()[0] for name, sql in TABLES_BY_RUN.items()
        }
    finally:
        con.close()


def backdate(db: Path, run_id: str, days: float) -> None:
    """Make ``run_id`` look as if it started ``days`` ago (another connection, as a clock
    that moved on would)."""
    when = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="microseconds")
    con = sqlite3.connect(db, isolation_level=None, timeout=10)
    try:
        con.execute("UPDATE runs SET started_at = ? WHERE run_id = ?", (when, run_id))
    finally:
        con.close()


def fts_hits(db: Path, term: str) -> int:
    con = sqlite3.connect(db)
    try:
        return int(
            con.execute(
                "SELECT count(*) FROM runs_fts WHERE runs_fts MATCH ?", (f'"{term}"',)
            ).fetchone()[0]
        )
    finally:
        con.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as c:
        yield c


async def test_a_pruned_run_is_gone_from_every_table_and_from_search(
    db_path: Path, client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    keep_all = StoreConfig(keep_raw_events="all")  # rows in every table, raw events too
    async with await Store.open(db_path, retention=keep_all) as store:
        old_session = sim_session("old", sim_url, api="responses", fault="drop=30", key=sim_key)
        old_id, _ = await stream_run(store, client, sim_url, old_session)  # resumed: 2 attempts
        kept_id, _ = await stream_run(store, client, sim_url, sim_session("kept", sim_url))
        store.record_alert(
            session="old",
            run_id=old_id,
            metric="ttft_ms",
            value=900.0,
            threshold=500.0,
            message="old: ttft 900 ms > 500 ms",
            at=time.time(),
        )
        await store.flush()
        old_rowid, kept_rowid = rowid_of(db_path, old_id), rowid_of(db_path, kept_id)
        before = rows_of(db_path, old_rowid)
        assert all(before.values()), before  # the old run has rows everywhere
        assert before["attempts"] == 2
        assert old_id in {r.run_id for r in await store.list_runs(search="Write for old")}
        backdate(db_path, old_id, days=10)

        result = await store.prune(7 * 86400)

        assert result.runs == 1
        assert rows_of(db_path, old_rowid) == dict.fromkeys(TABLES_BY_RUN, 0)
        assert all(rows_of(db_path, kept_rowid)[t] for t in ("runs", "deltas", "runs_fts"))
        assert await store.list_runs(search="Write for old") == []
        assert fts_hits(db_path, "Write for old") == 0
        assert fts_hits(db_path, "Write for kept") == 1  # the kept run still matches
        assert await store.list_alerts() == []
        with pytest.raises(Exception, match="no run"):
            await store.get_run(old_id)
        assert [r.run_id for r in await store.list_runs()] == [kept_id]
    con = sqlite3.connect(db_path)
    try:
        # the old run's config snapshot went with it; the kept run's stays
        assert [r[0] for r in con.execute("SELECT name FROM sessions")] == ["kept"]
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        con.execute("INSERT INTO runs_fts(runs_fts) VALUES ('integrity-check')")
    finally:
        con.close()


async def test_vacuum_gives_the_space_back(db_path: Path) -> None:
    async with await Store.open(db_path, retention=StoreConfig(keep_raw_events="all")) as store:
        ids = []
        for i in range(30):
            events = completed_events(" ".join(f"word{i}x{j}" for j in range(300)))
            raw = [RawEvent(e.t, 1, "delta", '{"pad":"' + "p" * 200 + '"}') for e in events[2:-1]]
            ids.append(await record(store, [*events[:-1], *raw, events[-1]]))
        for run_id in ids[:25]:
            backdate(db_path, run_id, days=3)
        plain = await store.prune(86400)
        assert plain.runs == 25
        assert plain.bytes_after >= plain.bytes_before * 0.9  # the file keeps its size...
        assert plain.free_after > plain.free_before  # ...but holds free pages for new runs
        for run_id in ids[25:]:
            backdate(db_path, run_id, days=3)
        vacuumed = await store.prune(86400, vacuum=True)
        assert vacuumed.runs == 5
        assert vacuumed.bytes_after < vacuumed.bytes_before / 2
        assert vacuumed.free_after == 0
        assert vacuumed.freed_bytes == vacuumed.bytes_before - vacuumed.bytes_after
        assert await store.list_runs() == []


async def test_a_running_run_of_a_live_writer_is_never_pruned(db_path: Path) -> None:
    async with await Store.open(db_path) as live, await Store.open(db_path) as pruner:
        running = await live.start_run(make_session("live"), prompt="still going")
        live.add_event(running, TextDelta(0.1, "half "))
        await live.flush()
        done = await record(live, completed_events("finished long ago"))
        backdate(db_path, running, days=30)
        backdate(db_path, done, days=30)
        result = await pruner.prune(1.0)
        assert result.runs == 1
        assert [r.run_id for r in await pruner.list_runs()] == [running]
        # the live writer goes on with its run
        live.add_event(running, FinishedEvent(0.2, "completed", "stop", "stop"))
        await live.flush()
        assert (await pruner.get_run(running)).output_text == "half "


async def test_keep_days_deletes_old_runs_when_a_writer_opens(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        old = await record(store, completed_events("from last month"))
        recent = await record(store, completed_events("from yesterday"))
    backdate(db_path, old, days=31)
    backdate(db_path, recent, days=1)
    async with await Store.open(db_path, readonly=True) as reader:  # readers never prune
        assert len(await reader.list_runs()) == 2
    async with await Store.open(db_path):  # no retention given: the default keeps all
        pass
    async with await Store.open(db_path, retention=StoreConfig(keep_days=30)) as store:
        assert [r.run_id for r in await store.list_runs()] == [recent]
        assert await store.list_runs(search="last month") == []


async def test_keep_days_is_applied_again_while_the_writer_stays_open(db_path: Path) -> None:
    async with await Store.open(db_path, retention=StoreConfig(keep_days=7)) as store:
        store.upkeep_period = 0.05  # an hour in real life (tui.store.writer.UPKEEP_S)
        run_id = await record(store, completed_events("ages ago"))
        backdate(db_path, run_id, days=8)  # as if the process had run for a week
        for _ in range(200):  # the flusher's next upkeep deletes it
            if not await store.list_runs():
                break
            await asyncio.sleep(0.05)
        assert await store.list_runs() == []
        # the store goes on recording
        again = await record(store, completed_events("still recording"))
        assert [r.run_id for r in await store.list_runs()] == [again]


# -- alerts -----------------------------------------------------------------------------------


async def test_record_alert_and_list_alerts_round_trip(store: Store, db_path: Path) -> None:
    run_id = await record(store, completed_events("slow answer"))
    t0 = time.time()
    store.record_alert(
        session="poem",
        run_id=run_id,
        metric="ttft_ms",
        value=812.5,
        threshold=500.0,
        message="poem: TTFT 812 ms is over 500 ms",
        at=t0 - 7200,
    )
    store.record_alert(
        session="poem",
        run_id=run_id,
        metric="on_failure",
        value=None,
        threshold=None,
        message="poem: the run failed",
        at=t0,
    )
    store.record_alert(
        session="other",
        run_id="0123456789abcdef0123",
        metric="max_duration_s",
        value=float("inf"),
        threshold=30.0,
        message="other: too long",
        at=t0 - 60,
    )
    alerts = await store.list_alerts()
    assert [(a.session, a.metric) for a in alerts] == [
        ("poem", "ttft_ms"),
        ("other", "max_duration_s"),
        ("poem", "on_failure"),
    ]  # oldest first
    first = alerts[0]
    assert (first.run_id, first.value, first.threshold, first.message) == (
        run_id,
        812.5,
        500.0,
        "poem: TTFT 812 ms is over 500 ms",
    )
    assert first.at == datetime.fromtimestamp(t0 - 7200, UTC) and first.at.tzinfo is not None
    assert alerts[1].value is None and alerts[2].value is None and alerts[2].threshold is None
    assert [a.metric for a in await store.list_alerts(session="poem")] == ["ttft_ms", "on_failure"]
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="microseconds")
    assert [a.metric for a in await store.list_alerts(since=since)] == [
        "max_duration_s",
        "on_failure",
    ]
    assert [a.metric for a in await store.list_alerts("poem", since)] == ["on_failure"]
    async with await Store.open(db_path, readonly=True) as reader:  # and from another reader
        assert len(await reader.list_alerts()) == 3


async def test_an_alert_waits_while_another_writer_holds_the_database(
    store: Store, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tui.store.connection as connection_module

    monkeypatch.setattr(connection_module, "BUSY_TIMEOUT_MS", 50)
    await store._conn.execute(connection_module.busy_timeout_sql())
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        started = time.perf_counter()
        store.record_alert(
            session="s",
            run_id="r" * 20,
            metric="on_failure",
            value=None,
            threshold=None,
            message="failed",
            at=time.time(),
        )
        assert time.perf_counter() - started < 0.01  # never blocks the caller
        await asyncio.sleep(0.5)  # the flusher finds the database busy, and keeps it
        assert store.busy_retries > 0
    finally:
        other.execute("COMMIT")
        other.close()
    assert [a.message for a in await store.list_alerts()] == ["failed"]
    assert store.errors == []


async def test_an_alert_on_a_readonly_store_is_refused(store: Store, db_path: Path) -> None:
    async with await Store.open(db_path, readonly=True) as reader:
        with pytest.raises(Exception, match="read-only"):
            reader.record_alert(
                session="s",
                run_id="r",
                metric="ttft_ms",
                value=1.0,
                threshold=0.5,
                message="m",
                at=time.time(),
            )


async def test_the_api_key_is_blanked_out_of_an_alert(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TT_ALERT_KEY", "sk-alert-secret-0123456789")
    session = make_session("keyed", api_key_env="TT_ALERT_KEY")
    async with await Store.open(db_path) as store:
        run_id = await record(store, completed_events("x"), session)
        store.record_alert(
            session="keyed",
            run_id=run_id,
            metric="on_failure",
            value=None,
            threshold=None,
            message="keyed: rejected sk-alert-secret-0123456789",
            at=time.time(),
        )
        (alert,) = await store.list_alerts()
    assert alert.message == "keyed: rejected [redacted]"


# -- the command line -------------------------------------------------------------------------


async def test_prune_and_history_since_from_the_command_line(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        old = await record(store, completed_events("an old answer"))
        middle = await record(store, completed_events("a middle answer"))
        new = await record(store, completed_events("a new answer"))
    backdate(db_path, old, days=8)
    backdate(db_path, middle, days=3)
    runner = CliRunner()

    def invoke(command: object, *args: str) -> tuple[int, str, str]:
        result = runner.invoke(command, [*args, "--db", str(db_path)])  # type: ignore[arg-type]
        return result.exit_code, result.stdout, result.stderr

    code, out, _ = await asyncio.to_thread(invoke, history_command, "--since", "1h")
    assert code == 0 and new[:14] in out and old[:14] not in out
    code, out, _ = await asyncio.to_thread(invoke, history_command, "--since", "2w")
    assert code == 0 and new[:14] in out and old[:14] in out
    code, _, err = await asyncio.to_thread(invoke, history_command, "--since", "soon")
    assert code == 2 and "'soon' is not a time span" in err and "7d" in err

    code, out, err = await asyncio.to_thread(invoke, prune_command, "--older-than", "7d")
    assert code == 0, err
    (line,) = out.splitlines()
    assert line.startswith(f"pruned 1 run older than 7d from {db_path}: ") and " on disk, " in line
    code, out, _ = await asyncio.to_thread(invoke, prune_command, "--older-than", "2d", "--vacuum")
    assert code == 0 and out.startswith(f"pruned 1 run older than 2d from {db_path}: ")
    assert " KB -> " in out and " freed)" in out and len(out.splitlines()) == 1
    code, out, _ = await asyncio.to_thread(invoke, prune_command, "--older-than", "48h")
    assert code == 0 and out.startswith("no runs older than 2d in ")
    code, _, err = await asyncio.to_thread(invoke, prune_command, "--older-than", "0d")
    assert code == 2 and "longer than zero" in err
    code, _, err = await asyncio.to_thread(invoke, prune_command)
    assert code == 2 and "--older-than" in err
    async with await Store.open(db_path, readonly=True) as reader:
        assert [r.run_id for r in await reader.list_runs()] == [new]


async def test_prune_of_a_missing_database_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    result = await asyncio.to_thread(
        CliRunner().invoke, prune_command, ["--older-than", "1d", "--db", str(missing)]
    )
    assert result.exit_code == 1 and "no database at" in result.stderr
    assert not missing.exists()
