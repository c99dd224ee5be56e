"""Part ``million`` (issue 13, bar 6): one run of 1,000,000 tokens, stored, then read back the
ways users read it. The run is ``tokentop run`` (the real CLI) on one Responses session of
the simulator with ``tps=0`` (as fast as it goes: the size of what is stored does not depend
on the pace, the stored offsets do not change its shape).

- **database size**: the database file with its ``-wal`` and ``-shm`` after the CLI exited
  (bar < 80 MB); the rows per table beside it.
- **replay --instant to screen**: ``tokentop replay --instant ID`` through the CLI
  (:mod:`bench.replay_probe`: the real command, Textual headless at 200x60), from spawning
  the process to the first frame after the whole run was played and rendered (bar < 5 s),
  and the CPU time that process took to get there (on a loaded machine the wall time is
  mostly a wait for a core).
- **export peak memory**: ``tokentop export --format F -o FILE ID`` for md, json and jsonl,
  each in its own process, its peak RSS from ``os.wait4`` (bar < 300 MB each).

``--quick``: 20,000 tokens. ``TOKENTOP_BENCH_PROFILE=DIR`` profiles the replay process (its main
thread, up to the frame on screen) into ``DIR/million-replay.*``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

from bench.common import Figure, PartResult, part_main, simulator
from bench.scale import run_child, scaled, tokentop_argv, write_sessions

DB_BAR_MB = 80.0
REPLAY_BAR_S = 5.0
EXPORT_BAR_MB = 300.0
FORMATS = ("md", "json", "jsonl")
REPLAY_LIMIT_S = 300.0


def _db_size_mb(db: Path) -> float:
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    return sum(f.stat().st_size for f in files if f.exists()) / 1e6


def _row_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '%fts%'"
            )
        ]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def measure(repeat: int = 1) -> PartResult:
    """The run, the replay and the exports once each."""
    tokens = scaled(1_000_000, 20_000)
    result = PartResult("million")
    figures: list[Figure] = []
    with simulator() as base_url, tempfile.TemporaryDirectory(prefix="tokentop-bench-") as tmp:
        work = Path(tmp)
        sessions = write_sessions(
            work / "million.toml",
            base_url,
            1,
            f"ttft=0,tps=0,tokens={tokens}",
            apis=("responses",),
        )
        db = work / "million.sqlite"
        out = work / "run.jsonl"
        with out.open("w") as stdout:
            run = run_child(
                tokentop_argv("run", str(sessions), "--db", str(db), "--jsonl"),
                timeout=1800,
                stdout=stdout,
            )
        records = [
            json.loads(line)
            for line in out.read_text().splitlines()
            if line.startswith('{"type": "result"')
        ]
        if run.returncode or len(records) != 1 or records[0]["output_tokens"] != tokens:
            got = records[0]["output_tokens"] if records else None
            raise RuntimeError(f"the run exited {run.returncode} with {got} tokens")
        run_id = records[0]["run_id"]
        size = _db_size_mb(db)
        rows = _row_counts(db)
        figures.append(
            Figure(
                "million",
                f"database size ({tokens:,} tokens, one run)",
                f"< {DB_BAR_MB:g} MB",
                f"{size:.0f} MB",
                size < DB_BAR_MB,
                f"{size * 1e6 / tokens:.0f} bytes per token; rows: "
                + ", ".join(f"{t} {n:,}" for t, n in sorted(rows.items()) if n)
                + f"; the run took {run.wall_s:.1f} s, {run.cpu_s:.1f} CPU s, "
                f"{run.peak_rss_mb:.0f} MB peak",
            )
        )
        painted = work / "painted.txt"
        import time

        started = time.perf_counter()
        replay = run_child(
            [
                sys.executable,
                "-m",
                "bench.replay_probe",
                str(painted),
                "replay",
                "--instant",
                "--db",
                str(db),
                run_id,
            ],
            timeout=REPLAY_LIMIT_S,
        )
        if painted.exists():
            shown = float(painted.read_text()) - started
            measured = f"{shown:.1f} s"
        else:
            shown = float("inf")
            measured = f"not on screen (exit {replay.returncode} after {replay.wall_s:.0f} s)"
        figures.append(
            Figure(
                "million",
                "replay --instant: spawn -> whole run on screen",
                f"< {REPLAY_BAR_S:g} s",
                measured,
                shown < REPLAY_BAR_S,
                f"peak RSS {replay.peak_rss_mb:.0f} MB, {replay.cpu_s:.1f} CPU s "
                f"(limit {REPLAY_LIMIT_S:.0f} s)",
            )
        )
        # the wall time of a loaded machine is mostly waiting for a core: the process's
        # own CPU time (to the frame, it exits there) says what the replay costs
        figures.append(
            Figure(
                "million",
                "replay --instant: CPU time of the replay process to that frame",
                "-",
                f"{replay.cpu_s:.1f} s",
                None,
                f"wall {replay.wall_s:.1f} s; {os.getloadavg()[0]:.1f} load average after",
            )
        )
        for fmt in FORMATS:
            target = work / f"export.{fmt}"
            export = run_child(
                tokentop_argv(
                    "export", "--format", fmt, "-o", str(target), "--db", str(db), run_id
                ),
                timeout=600,
            )
            ok = export.returncode == 0 and target.exists()
            written = target.stat().st_size / 1e6 if target.exists() else 0.0
            figures.append(
                Figure(
                    "million",
                    f"export --format {fmt}: peak memory",
                    f"< {EXPORT_BAR_MB:g} MB",
                    f"{export.peak_rss_mb:.0f} MB" if ok else f"exit {export.returncode}",
                    ok and export.peak_rss_mb < EXPORT_BAR_MB,
                    f"{export.wall_s:.1f} s, {export.cpu_s:.1f} CPU s, {written:.0f} MB written",
                )
            )
    result.figures = figures
    result.notes = [
        f"one Responses run of {tokens:,} tokens at tps=0 through `tokentop run`: "
        f"{run.wall_s:.1f} s; database {size:.0f} MB"
    ]
    return result


if __name__ == "__main__":
    part_main("million", measure)
