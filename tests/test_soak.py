"""Soak: eight sessions repeating every 0.5 s on the simulator, healthy ones among failing and
slow ones, as a monitoring probe runs for hours.

One runtime with a real store file, the alert engine and the Prometheus endpoint runs for
``TOKENTOP_SOAK_S`` seconds (25 in the suite; set it to 600 for a long soak). Then:

- the process's memory is flat after warm-up (RSS, and every in-memory history bounded);
- the database grew by at most 25 KB per run (the retention bar, with the default
  ``keep_raw_events = "failed"``);
- every alert fired exactly when its threshold was crossed, and only then: the stored alerts
  equal the ones computed here from the stored runs;
- ``/metrics`` parses (prometheus-client's parser) and agrees with ``tokentop stats --json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tui.config import AlertRules, ReconnectPolicy, Repeat, SessionConfig
from tui.session import SessionRuntime
from tui.session.run import HISTORY_LIMIT, RAW_EVENT_LIMIT
from tui.store import Store

SOAK_S = float(os.environ.get("TOKENTOP_SOAK_S", "25"))
WARM_UP_S = min(12.0, SOAK_S / 2) if SOAK_S < 120 else 60.0
EVERY_S = 0.5
RSS_SLACK_MB = 12.0
"""RSS may still move this much after warm-up (allocator arenas, SQLite's page cache)."""

pytestmark = [
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc"),
    pytest.mark.timeout(SOAK_S + 120),
]


def _session(
    name: str, key: str, *, timing: str, fault: str | None = None, **rules: Any
) -> SessionConfig:
    headers = {"X-Sim-Key": key, "X-Sim-Timing": timing}
    if fault is not None:
        headers["X-Sim-Fault"] = fault
    return SessionConfig(
        name=name,
        model="sim",
        prompt=f"soak {name}",
        headers=headers,
        repeat=Repeat(every_s=EVERY_S),
        reconnect=ReconnectPolicy(max_retries=0, idle_timeout_s=10),
        alerts=AlertRules(**rules),
    )


def sessions(key: str) -> list[SessionConfig]:
    """Four healthy probes, one with a slow first token, one slow stream, one that fails its
    first five runs and then recovers, one that always fails."""
    healthy = "ttft=0.02,tps=4000,tokens=400"
    return [
        *(
            _session(f"ok-{i}", f"{key}-ok{i}", timing=healthy, ttft_ms=5000, on_failure=True)
            for i in range(4)
        ),
        _session("late", f"{key}-late", timing="ttft=0.3,tps=0,tokens=50", ttft_ms=150),
        _session("crawl", f"{key}-crawl", timing="ttft=0,tps=60,tokens=12", min_tokens_per_s=100),
        _session(
            "flaky",
            f"{key}-flaky",
            timing="ttft=0,tps=0,tokens=30",
            fault="status=500*5",
            consecutive_failures=3,
            on_failure=True,
        ),
        _session(
            "down",
            f"{key}-down",
            timing="ttft=0,tps=0,tokens=30",
            fault="status=503*100000",
            consecutive_failures=4,
        ),
    ]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _db_bytes(path: Path) -> int:
    """The database's logical size (pages, whether still in the WAL or checkpointed)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
        (pages,) = con.execute("PRAGMA page_count").fetchone()
        (size,) = con.execute("PRAGMA page_size").fetchone()
    return int(pages) * int(size)


def expected_alerts(rules: AlertRules, runs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(run id, metric) of every alert the rules call for, from the stored runs in start
    order: the definitions of tui.session.alerts, written out again independently."""
    out: list[tuple[str, str]] = []
    streak = 0
    for run in runs:
        status, rid = run["status"], run["run_id"]
        ttft = run["ttft_ms"]
        if rules.ttft_ms is not None and ttft is not None and ttft > rules.ttft_ms:
            out.append((rid, "ttft_ms"))
        if rules.min_tokens_per_s is not None and status == "completed":
            rate = run["tokens_per_s"]
            if rate is not None and rate < rules.min_tokens_per_s:
                out.append((rid, "min_tokens_per_s"))
        if status == "failed":
            if rules.on_failure:
                out.append((rid, "on_failure"))
            streak += 1
            if rules.consecutive_failures is not None and streak == rules.consecutive_failures:
                out.append((rid, "consecutive_failures"))
        elif status in ("completed", "incomplete"):
            streak = 0
    return out


async def test_a_fleet_of_probes_stays_flat_and_alerts_exactly(
    sim_key: str, tmp_path: Path
) -> None:
    db = tmp_path / "soak.db"
    configs = sessions(sim_key)
    # the simulator of `base_url = "sim"`: a child process, as for a user, so the RSS
    # measured is tokentop's alone (the simulator keeps its last 512 responses for resumes)
    runtime = SessionRuntime(configs)
    server = runtime.serve_metrics("127.0.0.1:0")
    store = await runtime.open_store(db)
    await runtime.start()
    for controller in runtime.controllers:
        controller.start()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        await asyncio.sleep(WARM_UP_S)
        await store.flush()
        rss_warm, bytes_warm = _rss_mb(), await asyncio.to_thread(_db_bytes, db)
        runs_warm = sum(c.runs_finished for c in runtime.controllers)
        peak = rss_warm
        while loop.time() - t0 < SOAK_S:
            await asyncio.sleep(1.0)
            peak = max(peak, _rss_mb())
        runtime.cancel_all()
        assert await runtime.wait_idle(30)
        await runtime.alerts.drain()
        await store.flush()
        runs_total = sum(c.runs_finished for c in runtime.controllers)
        steady_runs = runs_total - runs_warm
        grown = await asyncio.to_thread(_db_bytes, db) - bytes_warm

        print(
            f"\nsoak {SOAK_S:.0f} s: {runs_total} runs ({steady_runs} after warm-up), "
            f"RSS {rss_warm:.1f} -> peak {peak:.1f} MB, "
            f"{grown / max(steady_runs, 1) / 1000:.1f} KB per run"
        )
        # memory: flat after warm-up, every in-memory history bounded
        assert peak - rss_warm < RSS_SLACK_MB, (rss_warm, peak)
        for controller in runtime.controllers:
            assert len(controller.history) <= HISTORY_LIMIT
            run = controller.current
            assert run is not None and len(run.debug_events) <= RAW_EVENT_LIMIT
        # the retention bar
        assert steady_runs > 8 * 4, steady_runs  # the probes really repeated
        assert grown / steady_runs <= 25_000, (grown, steady_runs)

        # alerts: exactly where the stored runs cross a threshold
        reader = await Store.open(db, readonly=True)
        try:
            stored = await reader.list_alerts()
            by_session: dict[str, list[dict[str, Any]]] = {}
            for summary in await reader.list_runs(limit=1_000_000):
                by_session.setdefault(summary.session, []).append(
                    {
                        "run_id": summary.run_id,
                        "status": summary.status,
                        "ttft_ms": summary.ttft_ms,
                        "tokens_per_s": summary.tokens_per_s,
                        "started_at": summary.started_at,
                    }
                )
        finally:
            await reader.close()
        expected: Counter[tuple[str, str]] = Counter()
        for config in configs:
            runs = sorted(by_session.get(config.name, []), key=lambda r: r["started_at"])
            expected.update(expected_alerts(config.alerts, runs))
        fired = Counter((a.run_id, a.metric) for a in stored)
        assert fired == expected
        assert runtime.alerts.total == len(stored)
        metrics_fired = {m for _, m in fired}
        assert {"ttft_ms", "min_tokens_per_s", "on_failure", "consecutive_failures"} <= (
            metrics_fired
        )
        assert not any(rid for rid, _ in fired if rid in _ok_run_ids(by_session))

        # /metrics parses and agrees with `tokentop stats --json`
        async with httpx.AsyncClient() as http:
            text = (await http.get(server.url)).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        scraped: Counter[tuple[str, str]] = Counter()
        for sample in families["tokentop_runs"].samples:
            if sample.name == "tokentop_runs_total":
                scraped[(sample.labels["session"], sample.labels["status"])] += int(sample.value)
        alerts_scraped = sum(
            int(s.value)
            for s in families["tokentop_alerts"].samples
            if s.name == "tokentop_alerts_total"
        )
        assert alerts_scraped == len(stored)
    finally:
        await runtime.close()

    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tui", "stats", "--json", "--db", str(db)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    stats = json.loads(done.stdout)
    from_stats: Counter[tuple[str, str]] = Counter()
    for entry in stats:
        for status in ("completed", "incomplete", "failed", "cancelled", "interrupted"):
            if entry[status]:
                from_stats[(entry["session"], status)] += entry[status]
    assert +scraped == +from_stats


def _ok_run_ids(by_session: dict[str, list[dict[str, Any]]]) -> set[str]:
    """Run ids of the healthy probes that completed (none of them may alert)."""
    return {
        r["run_id"]
        for name, runs in by_session.items()
        if name.startswith("ok-")
        for r in runs
        if r["status"] == "completed"
    }
