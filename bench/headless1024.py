"""Part ``headless1024`` (issue 13, bar 4): ``tokentop run`` (the real CLI, a child process)
with 1,024 sessions x 50 tokens/s x 20 s from one simulator process, once with
``--no-store`` and once with the store (a fresh database file), ``--jsonl`` on stdout.

- **wall time ratio**, store / no-store, each from spawning the CLI to reaping it (bar
  <= 1.2x). Both runs share the machine the same way, one after the other.
- **peak RSS** of the run with the store (``ru_maxrss`` from ``os.wait4`` of that child: its
  own, not the simulator's; bar < 500 MB), and of the other run beside it.
- **started_at true to the second**: the simulator logs the wall time (``time.time()``) at
  which each session's request reached it (:mod:`bench.sim_log`: when uvicorn parses the
  session's index in a header, in the loop's read of the socket, before the simulator's own
  work on the request); a stored run's ``started_at`` is true when it is within 1 s of the
  first arrival of its session's request in that run. A request cannot arrive before the
  run started, so a ``started_at`` more than a second before the arrival says the run was
  stamped before it really started (waiting in tokentop for a connection, a lock or its own
  busy loop), one after it is a clock that runs late.
- every run ``completed`` with every token (the ``result`` records), and as information the
  TTFT the client measured against the server's 0.3 s (what a saturated client reports) and
  the CPU the CLI and the simulator used.

``--quick``: 8 sessions x 3 s. ``TOKENTOP_BENCH_PROFILE=DIR``: after the measured runs, one
more run with the store under :mod:`bench.profile_child` (every thread of the CLI profiled)
writes ``DIR/headless1024.<thread>.prof`` and ``.txt``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import Figure, PartResult, fmt_ratio, part_main, percentile
from bench.dashboard import PROFILE_ENV
from bench.scale import (
    ChildRun,
    LoggedSim,
    load_average,
    logged_simulator,
    run_child,
    scaled,
    tokentop_argv,
    write_sessions,
)

TPS = 50
TTFT_S = 0.3
WALL_RATIO_BAR = 1.2
RSS_BAR_MB = 500.0
TRUE_WITHIN_S = 1.0


def _results(path: Path) -> list[dict[str, Any]]:
    """The ``result`` records of a ``--jsonl`` output file."""
    out: list[dict[str, Any]] = []
    with path.open() as f:
        for line in f:
            if line.startswith('{"type": "result"'):
                out.append(json.loads(line))
    return out


def _stored_starts(db: Path) -> dict[str, tuple[float, float | None]]:
    """Session name -> (stored started_at as epoch seconds, stored first_token_s)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT session_name, started_at, first_token_s FROM runs").fetchall()
    return {name: (datetime.fromisoformat(at).timestamp(), ft) for name, at, ft in rows}


def _one_run(
    sim: LoggedSim, sessions_file: Path, workdir: Path, store: bool, seconds: int
) -> tuple[ChildRun, list[dict[str, Any]], list[tuple[str, float]], str, Path]:
    """Run the CLI once: its costs, its results, the arrivals it caused, what the machine
    and the simulator were doing meanwhile."""
    name = "store" if store else "no-store"
    out = workdir / f"{name}.jsonl"
    db = workdir / f"{name}.sqlite"
    args = ["--db", str(db)] if store else ["--no-store"]
    before = sim.arrivals_list()
    sim_cpu0, sim_wait0, load0 = sim.cpu_seconds(), sim.cpu_wait_seconds(), load_average()
    with out.open("w") as stdout, (workdir / f"{name}.err").open("w") as stderr:
        child = run_child(
            tokentop_argv("run", str(sessions_file), "--jsonl", *args),
            timeout=seconds * 40 + 120,
            stdout=stdout,
            stderr=stderr,
        )
    sim_cpu = sim.cpu_seconds() - sim_cpu0
    sim_wait = sim.cpu_wait_seconds() - sim_wait0
    arrivals = sim.arrivals_list()[len(before) :]
    machine = (
        f"{name}: the CLI waited {child.cpu_wait_s:.1f} s for a CPU (summed over its threads), "
        f"the simulator used {sim_cpu:.1f} CPU s ({sim_cpu / child.wall_s:.0%} of a core) and "
        f"waited {sim_wait:.1f} s; load average {load0} -> {load_average()}"
    )
    return child, _results(out), arrivals, machine, db


def _profiled_run(sessions_file: Path, workdir: Path, out: Path, seconds: int) -> None:
    """The run with the store once more, every thread of the CLI profiled."""
    argv = [sys.executable, "-m", "bench.profile_child", str(out), "headless1024"]
    argv += ["-m", "tui", "run", str(sessions_file), "--jsonl", "--db", str(workdir / "p.db")]
    run_child(argv, timeout=seconds * 80 + 300)


def _check_results(results: list[dict[str, Any]], sessions: int, tokens: int) -> list[str]:
    problems: list[str] = []
    if len(results) != sessions:
        problems.append(f"{len(results)} results for {sessions} sessions")
    bad = [r for r in results if r["status"] != "completed" or r["output_tokens"] != tokens]
    if bad:
        first = bad[0]
        problems.append(
            f"{len(bad)} runs not completed with {tokens} tokens (e.g. {first['session']}: "
            f"{first['status']}, {first['output_tokens']} tokens)"
        )
    return problems


def measure(repeat: int = 1) -> PartResult:
    """Both runs once (each is long enough to damp the noise)."""
    sessions = scaled(1024, 8)
    seconds = scaled(20, 3)
    tokens = TPS * seconds
    timing = f"ttft={TTFT_S},tps={TPS},tokens={tokens}"
    result = PartResult("headless1024")
    with logged_simulator() as sim, tempfile.TemporaryDirectory(prefix="tokentop-bench-") as tmp:
        workdir = Path(tmp)
        sessions_file = write_sessions(workdir / "sessions.toml", sim.base_url, sessions, timing)
        bare, bare_results, _, bare_machine, _ = _one_run(
            sim, sessions_file, workdir, False, seconds
        )
        kept, kept_results, arrivals, kept_machine, db = _one_run(
            sim, sessions_file, workdir, True, seconds
        )
        stored = _stored_starts(db) if db.exists() else {}
        db_mb = db.stat().st_size / 1e6 if db.exists() else float("nan")
        profile_dir = os.environ.get(PROFILE_ENV)
        if profile_dir:
            _profiled_run(sessions_file, workdir, Path(profile_dir), seconds)
    problems = _check_results(bare_results, sessions, tokens)
    problems += [f"with the store: {p}" for p in _check_results(kept_results, sessions, tokens)]
    if bare.returncode or kept.returncode:
        problems.append(f"exit status {bare.returncode} (no store), {kept.returncode} (store)")
    first_arrival: dict[str, float] = {}
    for session, at in arrivals:
        first_arrival.setdefault(f"s{int(session):04d}", at)
    offsets = [stored[name][0] - at for name, at in sorted(first_arrival.items()) if name in stored]
    untrue = [d for d in offsets if abs(d) >= TRUE_WITHIN_S]
    missing = sessions - len(offsets)
    starts = [s for s, _ in stored.values()]
    arrived = list(first_arrival.values())
    ratio = kept.wall_s / bare.wall_s
    ttfts = [r["ttft_ms"] for r in kept_results if r.get("ttft_ms") is not None]
    bare_ttfts = [r["ttft_ms"] for r in bare_results if r.get("ttft_ms") is not None]
    stored_ttft = [ft * 1000 for _, ft in stored.values() if ft is not None]
    label = f"{sessions}x{TPS} tok/s x {seconds} s"
    result.figures = [
        Figure(
            "headless1024",
            f"wall time, store / --no-store ({label})",
            f"<= {WALL_RATIO_BAR:g}x",
            fmt_ratio(ratio),
            ratio <= WALL_RATIO_BAR and not problems,
            f"{kept.wall_s:.1f} s with the store, {bare.wall_s:.1f} s without (schedule "
            f"{TTFT_S + seconds:.1f} s)",
        ),
        Figure(
            "headless1024",
            "peak RSS of the run with the store",
            f"< {RSS_BAR_MB:g} MB",
            f"{kept.peak_rss_mb:.0f} MB",
            kept.peak_rss_mb < RSS_BAR_MB,
            f"--no-store {bare.peak_rss_mb:.0f} MB; database {db_mb:.0f} MB",
        ),
        Figure(
            "headless1024",
            "stored started_at within 1 s of the request's arrival",
            "every run",
            f"{len(offsets) - len(untrue)} of {sessions}",
            not untrue and not missing,
            f"started_at - arrival: median {percentile(offsets, 50):+.2f} s, min "
            f"{min(offsets, default=float('nan')):+.2f} s, max "
            f"{max(offsets, default=float('nan')):+.2f} s; stored starts span "
            f"{_span(starts):.1f} s, arrivals span {_span(arrived):.1f} s"
            + (f"; {missing} runs without a stored start or an arrival" if missing else ""),
        ),
        Figure(
            "headless1024",
            "every run completed with every token (both runs)",
            "0 problems",
            f"{len(problems)} problems",
            not problems,
            "; ".join(problems[:4]),
        ),
        Figure(
            "headless1024",
            "  TTFT the client measured, p50 / p99 (server: 300 ms)",
            "-",
            f"{percentile(ttfts, 50):.0f} / {percentile(ttfts, 99):.0f} ms",
            None,
            f"with the store; --no-store {percentile(bare_ttfts, 50):.0f} / "
            f"{percentile(bare_ttfts, 99):.0f} ms; stored first_token_s p50 "
            f"{percentile(stored_ttft, 50):.0f} ms; retries (attempts beyond the first) "
            f"{_retries(kept_results)} with the store, {_retries(bare_results)} without",
        ),
        Figure(
            "headless1024",
            "  cores used by the CLI, store / --no-store",
            "-",
            f"{kept.cores:.2f} / {bare.cores:.2f}",
            None,
            f"CPU {kept.cpu_s:.1f} s / {bare.cpu_s:.1f} s; {kept_machine}; {bare_machine}",
        ),
    ]
    result.notes = [
        f"{sessions} sessions x {TPS} tok/s x {seconds} s (ttft {TTFT_S} s), `tokentop run "
        f"--jsonl`: {bare.wall_s:.1f} s / {bare.cpu_s:.1f} CPU s / {bare.peak_rss_mb:.0f} MB "
        f"with --no-store, {kept.wall_s:.1f} s / {kept.cpu_s:.1f} CPU s / "
        f"{kept.peak_rss_mb:.0f} MB with the store ({db_mb:.0f} MB database)",
        *problems[:6],
    ]
    return result


def _retries(results: list[dict[str, Any]]) -> int:
    return sum(max(0, int(r.get("attempts") or 1) - 1) for r in results)


def _span(values: list[float]) -> float:
    return max(values) - min(values) if values else float("nan")


if __name__ == "__main__":
    part_main("headless1024", measure)
