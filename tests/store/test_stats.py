"""History over time from the store (``tui.store.stats``): real runs against the simulator,
and rows written straight into a real database for hours of runs."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import httpx
import pytest

from tests.store.conftest import make_session
from tui.config import SessionConfig
from tui.store import Store
from tui.store.stats import (
    OUTCOME_SQL,
    SessionStats,
    outcome,
    series,
    session_names,
    session_stats,
)
from tui.store.window import started_since
from tui.stream.runner import StreamRun
from tui.vocab import FINISH_REASONS, STORED_STATUSES

NOW = dt.datetime(2025, 6, 1, 12, 0, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Row:
    """One run written straight into the ``runs`` table."""

    session: str
    at: dt.datetime
    status: str = "completed"
    reason: str | None = "stop"
    ttft_ms: float | None = 200.0
    tokens_per_s: float | None = 50.0
    duration_ms: float | None = 1000.0
    error_kind: str | None = None
    error_status: int | None = None
    error_message: str | None = None


async def new_database(path: Path) -> Path:
    """An empty tokentop database (made by a real writer, closed again)."""
    await (await Store.open(path)).close()
    return path


def insert_runs(path: Path, rows: Sequence[Row]) -> None:
    """Write ``rows`` into the database at ``path`` in one transaction."""
    con = sqlite3.connect(path)
    try:
        (session_id,) = con.execute(
            "INSERT INTO sessions(name, config_json, config_hash, created_at) "
            "VALUES ('t', '{}', ?, '') RETURNING id",
            (f"h{random.random()}",),
        ).fetchone()
        start = con.execute("SELECT count(*) FROM runs").fetchone()[0]
        con.executemany(
            "INSERT INTO runs(run_id, session_id, session_name, api, model, prompt, started_at,"
            " status, finish_reason, ttft_ms, tokens_per_s, duration_ms, error_kind,"
            " error_status, error_message, output_text)"
            " VALUES (?, ?, ?, 'chat', 'm', 'p', ?, ?, ?, ?, ?, ?, ?, ?, ?, 'an answer')",
            [
                (
                    f"run{start + i:07d}",
                    session_id,
                    r.session,
                    r.at.isoformat(timespec="microseconds"),
                    r.status,
                    r.reason,
                    r.ttft_ms,
                    r.tokens_per_s,
                    r.duration_ms,
                    r.error_kind,
                    r.error_status,
                    r.error_message,
                )
                for i, r in enumerate(rows)
            ],
        )
        con.commit()
    finally:
        con.close()


def reference(values: list[float]) -> tuple[float, float]:
    """p50 and p95 by the documented definition (numpy's linear), from the stdlib."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94]


async def read_stats(
    path: Path, *, session: str | list[str] | None = None, since: str | dt.datetime | None = None
) -> list[SessionStats]:
    """``session_stats`` over a bare read-only connection to ``path`` (opening a store would
    mark the ownerless ``running`` rows of these tests ``interrupted``)."""
    async with aiosqlite.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return await session_stats(conn, session=session, since=since)


# -- real runs --------------------------------------------------------------------------------


def sim_session(name: str, key: str, fault: str | None = None, **timing: str) -> SessionConfig:
    headers = {"X-Sim-Key": f"{key}-{name}-{fault}", "X-Sim-Timing": "tokens=6,tps=0,ttft=0.01"}
    if fault:
        headers["X-Sim-Fault"] = fault
    return make_session(name, "sim-fast", api="chat", headers=headers)


async def stream_into(
    store: Store,
    client: httpx.AsyncClient,
    url: str,
    session: SessionConfig,
    *,
    cancel: bool = False,
) -> str:
    """One real run of ``session`` against the simulator, recorded through ``store``."""
    run_id = await store.start_run(session, prompt=session.prompt)
    run = StreamRun(session, client=client, base_url=url)
    async for batch in run.batches():
        store.add_events(run_id, batch)
        if cancel:
            run.cancel()
    await store.flush()
    return run_id


async def test_real_runs_count_and_rate(store: Store, sim_url: str, sim_key: str) -> None:
    ok = sim_session("probe", sim_key)
    cut = sim_session("probe", sim_key, "content_filter")
    bad = sim_session("probe", sim_key, "status=400")
    slow = make_session(
        "probe",
        "sim-fast",
        api="chat",
        headers={"X-Sim-Key": sim_key, "X-Sim-Timing": "tokens=400,tps=50,ttft=0.01"},
    )
    async with httpx.AsyncClient(timeout=30) as client:
        for session in (ok, ok, cut, bad, ok):
            await stream_into(store, client, sim_url, session)
        (failed,) = [r for r in await store.list_runs() if r.status == "failed"]
        await stream_into(store, client, sim_url, slow, cancel=True)
    (stats,) = await session_stats(store)
    assert stats.session == "probe"
    assert (stats.runs, stats.running) == (6, 0)
    assert (stats.completed, stats.incomplete, stats.failed, stats.cancelled) == (3, 1, 1, 1)
    # the cut answer is a success, the cancelled run is not rated
    assert (stats.successes, stats.failures) == (4, 1)
    assert stats.success_rate == pytest.approx(0.8)
    assert stats.last_failure is not None and stats.last_failure.run_id == failed.run_id
    assert stats.last_failure.error_kind == "http" and stats.last_failure.error_status == 400
    # percentiles over the successful runs' stored values
    runs = [r for r in await store.list_runs() if r.status in ("completed", "incomplete")]
    ttfts = sorted(r.ttft_ms for r in runs if r.ttft_ms is not None)
    assert stats.ttft_ms.count == len(ttfts) == 4
    assert (stats.ttft_ms.p50, stats.ttft_ms.p95) == pytest.approx(reference(ttfts))
    durations = [r.duration_ms for r in runs if r.duration_ms is not None]
    assert stats.duration_ms.count == 4
    assert stats.duration_ms.p50 == pytest.approx(statistics.median(durations))
    assert stats.first_run_at is not None and stats.last_run_at is not None
    assert stats.first_run_at <= stats.last_run_at
    points = await series(store, "probe", buckets=5)
    assert len(points) == 5 and sum(p.runs for p in points) == 6
    assert sum(p.failures for p in points) == 1


async def test_a_running_run_counts_apart(store: Store) -> None:
    session = make_session("live")
    await store.start_run(session, prompt=session.prompt)  # never finished
    (stats,) = await session_stats(store)  # a writer's queued rows are flushed first
    assert (stats.runs, stats.running, stats.success_rate) == (0, 1, None)
    assert stats.ttft_ms.count == 0 and stats.ttft_ms.p50 is None
    assert stats.last_run_at is not None


# -- rows written straight in -----------------------------------------------------------------


async def test_percentiles_over_hours_match_the_reference(tmp_path: Path) -> None:
    db = await new_database(tmp_path / "t.db")
    rng = random.Random(7)
    rows = [
        Row(
            f"s{i % 3}",
            NOW - dt.timedelta(seconds=6 * 3600 * rng.random()),
            ttft_ms=rng.lognormvariate(5, 0.5),
            tokens_per_s=rng.gauss(60, 10),
            duration_ms=rng.uniform(500, 5000),
        )
        for i in range(3000)
    ]
    rows += [Row("s0", NOW, "failed", "error", 9e9, 9e9, 9e9, "http", 503, "down")]
    insert_runs(db, rows)
    stats = await read_stats(db)
    assert [s.session for s in stats] == ["s0", "s1", "s2"]
    for s in stats:
        mine = [r for r in rows if r.session == s.session and r.status == "completed"]
        for metric in ("ttft_ms", "tokens_per_s", "duration_ms"):
            values = [getattr(r, metric) for r in mine]
            got = getattr(s, metric)
            assert got.count == len(values) == 1000
            assert (got.p50, got.p95) == pytest.approx(reference(values), rel=1e-12)


async def test_windows_cut_at_since(tmp_path: Path) -> None:
    db = await new_database(tmp_path / "t.db")
    since = started_since(3600, now=NOW)
    insert_runs(
        db,
        [
            Row("a", NOW - dt.timedelta(hours=3), ttft_ms=1000.0),
            Row("a", NOW - dt.timedelta(hours=1, microseconds=1), ttft_ms=900.0),
            Row("a", NOW - dt.timedelta(hours=1), ttft_ms=100.0),  # exactly at the edge: in
            Row("a", NOW - dt.timedelta(minutes=5), ttft_ms=300.0),
            Row("b", NOW - dt.timedelta(hours=2)),
        ],
    )
    (a,) = await read_stats(db, since=since)
    assert a.session == "a" and a.runs == 2
    assert a.ttft_ms.p50 == pytest.approx(200.0)
    assert a.first_run_at == NOW - dt.timedelta(hours=1)
    # a datetime works too, and so does any ISO 8601 offset
    assert len(await read_stats(db, since=NOW - dt.timedelta(hours=2, minutes=1))) == 2
    local = (NOW - dt.timedelta(hours=1)).astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert [s.runs for s in await read_stats(db, since=local.isoformat())] == [2]
    # a named session without runs in the window still gets its (empty) entry
    (b,) = await read_stats(db, session="b", since=since)
    assert (b.session, b.runs, b.success_rate) == ("b", 0, None)
    both = await read_stats(db, session=["b", "a"])
    assert [(s.session, s.runs) for s in both] == [("a", 4), ("b", 1)]
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        await read_stats(db, since="1h")


async def test_outcomes_rate_and_last_failure(tmp_path: Path) -> None:
    db = await new_database(tmp_path / "t.db")
    t = NOW - dt.timedelta(hours=1)
    minute = dt.timedelta(minutes=1)
    insert_runs(
        db,
        [
            Row("x", t, "completed", "stop"),
            Row("x", t + minute, "incomplete", "length"),
            Row("x", t + 2 * minute, "incomplete", "content_filter"),
            Row("x", t + 3 * minute, "cancelled", "cancelled", duration_ms=1.0),
            Row("x", t + 4 * minute, "interrupted", None),
            # the newest failure is written before an older one (rowid order is not time)
            Row(
                "x", t + 9 * minute, "failed", "error", error_kind="stalled", error_message="a\n  b"
            ),
            Row("x", t + 5 * minute, "failed", "truncated", error_kind="truncated"),
            Row("x", t + 6 * minute, "running", None),
        ],
    )
    (x,) = await read_stats(db)
    assert (x.runs, x.running, x.cancelled, x.interrupted, x.failed) == (7, 1, 1, 1, 2)
    assert (x.successes, x.failures) == (3, 3)
    assert x.success_rate == pytest.approx(0.5)
    f = x.last_failure
    assert f is not None
    assert (f.at, f.kind, f.message) == (t + 9 * minute, "stalled", "a b")
    assert x.duration_ms.count == 3 and x.duration_ms.p50 == 1000.0
    assert x.last_run_at == t + 9 * minute
    as_json = x.as_dict()
    assert as_json["last_failure"]["at"] == (t + 9 * minute).isoformat()
    assert as_json["ttft_ms"] == {"count": 3, "p50": 200.0, "p95": 200.0}


def test_the_sql_outcome_is_outcome() -> None:
    con = sqlite3.connect(":memory:")
    for status in (*STORED_STATUSES, "odd"):
        for reason in (*FINISH_REASONS, None, "odd"):
            (got,) = con.execute(
                f"SELECT {OUTCOME_SQL} FROM (SELECT ? AS status, ? AS finish_reason)",
                (status, reason),
            ).fetchone()
            assert got == outcome(status, reason), (status, reason)


async def test_series_buckets(tmp_path: Path) -> None:
    db = await new_database(tmp_path / "t.db")
    start = NOW - dt.timedelta(hours=2)

    def at(minutes: float) -> dt.datetime:
        return start + dt.timedelta(minutes=minutes)

    insert_runs(
        db,
        [
            Row("s", at(5), ttft_ms=100.0, tokens_per_s=10.0),
            Row("s", at(10), ttft_ms=300.0, tokens_per_s=30.0),
            Row("s", at(20), "failed", "error", ttft_ms=9999.0),
            Row("s", at(70), ttft_ms=50.0),
            Row("s", at(119), "running", None),
            Row("s", at(130)),  # after now: left out
            Row("other", at(40)),
        ],
    )
    async with aiosqlite.connect(f"file:{db}?mode=ro", uri=True) as store:
        points = await series(store, "s", since=start, buckets=4, now=NOW)
        assert [p.runs for p in points] == [3, 0, 1, 0]
        assert [p.failures for p in points] == [1, 0, 0, 0]
        assert [p.ttft_p50_ms for p in points] == [200.0, None, 50.0, None]
        assert points[0].tokens_per_s_p50 == 20.0
        assert points[0].start == start and points[-1].end == NOW
        assert points[1].start == points[0].end == start + dt.timedelta(minutes=30)
        # without since the window starts at the session's first run
        points = await series(store, "s", buckets=7, now=NOW)
        assert len(points) == 7 and points[0].start == at(5)
        assert [p.runs for p in points] == [3, 0, 0, 1, 0, 0, 0]
        assert await series(store, "nobody", now=NOW) == []
        assert [p.runs for p in await series(store, "nobody", since=start, now=NOW)] == [0] * 120
        with pytest.raises(ValueError):
            await series(store, "s", buckets=0)


async def test_many_runs_over_hours_from_a_bare_connection(tmp_path: Path) -> None:
    db = await new_database(tmp_path / "t.db")
    rng = random.Random(1)
    insert_runs(
        db,
        [
            Row(
                f"s{i % 4}",
                NOW - dt.timedelta(seconds=12 * 3600 * i / 8_000),
                *(("failed", "error") if rng.random() < 0.1 else ("completed", "stop")),
                ttft_ms=rng.uniform(50, 500),
            )
            for i in range(8_000)
        ],
    )
    async with aiosqlite.connect(db) as conn:
        stats = await session_stats(conn)
        assert sum(s.runs for s in stats) == 8_000
        assert all(0.85 < (s.success_rate or 0) < 0.95 for s in stats)
        hour = await session_stats(conn, since=started_since(3600, now=NOW))
        assert sum(s.runs for s in hour) == pytest.approx(8_000 / 12, abs=2)
        points = await series(conn, "s1", now=NOW)
        assert len(points) == 120 and sum(p.runs for p in points) == 2000
        assert await session_names(conn) == ["s0", "s1", "s2", "s3"]
