"""History over time: ``session_stats`` and ``series`` (``tui.store.stats``) over a database
of hours of runs.

The database holds ``RUNS`` runs of eight sessions spread over twelve hours, each with a
400-token answer (about 2 KB of text in its row, as a real run has: the queries must not
read it), in the schema a tokentop writer creates. Figures: the whole-history
``session_stats`` (bar: well under 0.5 s), the last hour, one session's 120-point ``series``
over the whole history, and as the same-run reference a bare ``sqlite3`` ``SELECT count(*)``
grouped by session over the same rows (the least any per-session query over them costs).
Each time is the best of N, wall clock and the process's CPU time (the machine is shared).

The numeric columns sit in the table's pages next to the answers, so reading them would read
the answers' pages too: the schema's covering index ``runs_stats`` answers the queries alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.common import Figure, PartResult, part_main

RUNS = 50_000
SESSIONS = 8
SPREAD_S = 12 * 3600.0
BAR_S = 0.5
ANSWER = ("lorem ipsum dolor sit amet " * 80)[:2000]


async def create_database(path: Path) -> None:
    """An empty tokentop database at ``path`` (made by a real writer, then closed)."""
    from tui.store import Store

    await (await Store.open(path)).close()


def fill(path: Path, runs: int = RUNS, *, seed: int = 0, end: dt.datetime | None = None) -> None:
    """``runs`` finished runs of ``SESSIONS`` sessions over the ``SPREAD_S`` before ``end``:
    mostly completed, some failed, incomplete and cancelled, with plausible metrics."""
    rng = random.Random(seed)
    end = end or dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(seconds=SPREAD_S)
    con = sqlite3.connect(path)
    try:
        con.execute(
            "INSERT INTO sessions(name, config_json, config_hash, created_at) "
            "VALUES ('bench', '{}', 'bench', ?)",
            (start.isoformat(),),
        )
        rows: list[tuple[Any, ...]] = []
        for i in range(runs):
            at = start + dt.timedelta(seconds=SPREAD_S * i / runs)
            roll = rng.random()
            status, reason, kind = (
                ("failed", "error", "http")
                if roll < 0.05
                else ("incomplete", "length", None)
                if roll < 0.08
                else ("cancelled", "cancelled", None)
                if roll < 0.09
                else ("completed", "stop", None)
            )
            ttft = rng.lognormvariate(5.5, 0.4)
            rate = rng.gauss(60.0, 8.0)
            rows.append(
                (
                    f"run{i:08d}",
                    f"s{i % SESSIONS}",
                    at.isoformat(timespec="microseconds"),
                    status,
                    reason,
                    ttft,
                    ttft + 400 / rate * 1000.0,
                    rate,
                    kind,
                    "503 Service Unavailable" if kind else None,
                    ANSWER,
                )
            )
        con.executemany(
            "INSERT INTO runs(run_id, session_id, session_name, api, model, prompt, started_at,"
            " status, finish_reason, ttft_ms, duration_ms, tokens_per_s, error_kind,"
            " error_message, output_text) VALUES (?, 1, ?, 'chat', 'm', 'Write a poem.', ?, ?,"
            " ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        con.commit()
    finally:
        con.close()


def count_reference(path: Path) -> float:
    """Seconds for a bare ``SELECT session_name, count(*) ... GROUP BY`` over every run."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        started = time.perf_counter()
        con.execute(
            "SELECT session_name, count(*), sum(ttft_ms) FROM runs GROUP BY session_name"
        ).fetchall()
        return time.perf_counter() - started
    finally:
        con.close()


async def _best(repeat: int, call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of ``repeat`` calls."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        await call()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


async def _timings(path: Path, repeat: int) -> dict[str, tuple[float, float]]:
    from tui.store import Store
    from tui.store.stats import series, session_stats
    from tui.store.window import started_since

    store = await Store.open(path, readonly=True)
    try:
        stats = await session_stats(store)
        assert sum(s.runs for s in stats) == RUNS
        return {
            "all": await _best(repeat, lambda: session_stats(store)),
            "hour": await _best(repeat, lambda: session_stats(store, since=started_since(3600))),
            "session": await _best(repeat, lambda: session_stats(store, session="s0")),
            "series": await _best(repeat, lambda: series(store, "s0")),
        }
    finally:
        await store.close()


def _ms(pair: tuple[float, float]) -> str:
    return f"{pair[0] * 1000:.0f} ms (CPU {pair[1] * 1000:.0f})"


async def _measure(repeat: int) -> PartResult:
    result = PartResult("stats")
    with tempfile.TemporaryDirectory(prefix="tokentop-bench-") as tmp:
        path = Path(tmp) / "stats.db"
        await create_database(path)
        fill(path)
        size_mb = path.stat().st_size / 1e6
        now = await _timings(path, repeat)
        reference = min(count_reference(path) for _ in range(repeat))
    whole = now["all"][0]
    detail = f"{RUNS:,} runs of {SESSIONS} sessions over 12 h, {size_mb:.0f} MB; best of {repeat}"
    result.figures = [
        Figure("stats", "session_stats, all runs", f"< {BAR_S:g} s", _ms(now["all"]),
               whole < BAR_S, detail),
        Figure("stats", "session_stats, last hour", "-", _ms(now["hour"]), None),
        Figure("stats", "session_stats, one session", "-", _ms(now["session"]), None),
        Figure("stats", "series, one session, 120 buckets", "-", _ms(now["series"]), None,
               f"{RUNS // SESSIONS:,} runs"),
        Figure("stats", "session_stats / bare sqlite3 GROUP BY", "-",
               f"{whole / reference:.1f}x", None, f"bare GROUP BY {reference * 1000:.0f} ms"),
    ]  # fmt: skip
    result.notes = [
        f"{detail}: "
        + "; ".join(f"{k} {_ms(v)}" for k, v in now.items())
        + f"; a bare sqlite3 GROUP BY over the same rows {reference * 1000:.0f} ms"
    ]
    return result


def measure(repeat: int = 3) -> PartResult:
    """Run the stats part, best of ``repeat``."""
    return asyncio.run(_measure(repeat))


if __name__ == "__main__":
    part_main("stats", measure)
