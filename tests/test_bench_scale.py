"""A smoke check of the benchmark's issue-13 pieces (``bench/scale.py``, ``bench/sim_log.py``):
a generated sessions file is one tokentop loads and runs, the simulator logs each session's
request, and a child's own costs come back from ``wait4``. Nothing here judges a time."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from bench.scale import logged_simulator, run_child, tokentop_argv, write_sessions
from tui.config import load_config


def test_sessions_file_run_and_arrival_log(tmp_path: Path) -> None:
    with logged_simulator() as sim:
        path = write_sessions(tmp_path / "s.toml", sim.base_url, 3, "ttft=0,tps=0,tokens=5")
        config = load_config(path)
        assert [(s.name, s.api) for s in config.sessions] == [
            ("s0000", "chat"),
            ("s0001", "responses"),
            ("s0002", "chat"),
        ]
        out = tmp_path / "run.jsonl"
        with out.open("w") as stdout:
            child = run_child(
                tokentop_argv("run", str(path), "--no-store", "--jsonl"),
                timeout=60,
                stdout=stdout,
                stderr=subprocess.DEVNULL,
            )
        arrivals = sim.arrivals_list()
    assert child.returncode == 0
    assert child.cpu_s > 0 and child.peak_rss_mb > 10 and child.wall_s > 0
    results = [json.loads(line) for line in out.read_text().splitlines() if '"result"' in line]
    assert sorted((r["session"], r["output_tokens"]) for r in results) == [
        ("s0000", 5),
        ("s0001", 5),
        ("s0002", 5),
    ]
    assert sorted(session for session, _ in arrivals) == ["0", "1", "2"]
