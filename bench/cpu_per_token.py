"""Part ``cpu_per_token`` (issue 13, bar 5): CPU seconds per token at a real model's rate,
16 sessions x 50 tokens/s x 20 s, headless: ``tokentop run --no-store`` (the real CLI, a
child process) against the openai SDK's async streaming loop on the same streams
(:mod:`bench.sdk_loop`, also a child), both reading the same simulator process.

Each side's CPU is its child's own (``os.wait4``: user + system, every thread). What starting
and ending a process costs (imports, the interpreter's exit) is taken out: each side also runs
the same sessions with a 1-token answer, and the figure is (CPU of the full run - CPU of the
1-token run) / tokens, the CPU that the streaming itself costs. Best of ``--repeat`` pairs is
not used: one long run per side damps the noise, and CPU seconds are barely stretched by
other processes. Bar: tokentop needs at least 5x less CPU per token than the SDK loop. The
same with the store (``tokentop run`` as users run it) is shown beside it.

``--quick``: 4 sessions x 3 s.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from bench.common import Figure, PartResult, fmt_ratio, part_main, simulator
from bench.scale import ChildRun, run_child, scaled, tokentop_argv, write_sessions

TPS = 50
RATIO_BAR = 5.0


SIDES = ("sdk", "tokentop", "tokentop+store")


def _argv(side: str, sessions: Path) -> list[str]:
    """The command of one side on a sessions file (the store's database next to it)."""
    if side == "sdk":
        return [sys.executable, "-m", "bench.sdk_loop", str(sessions)]
    if side == "tokentop":
        return tokentop_argv("run", str(sessions), "--no-store", "--jsonl")
    db = sessions.with_suffix(".db")
    return tokentop_argv("run", str(sessions), "--db", str(db), "--jsonl")


def _run(argv: list[str], out: Path, seconds: int) -> tuple[ChildRun, str]:
    with out.open("w") as stdout:
        child = run_child(argv, timeout=seconds * 20 + 120, stdout=stdout)
    if child.returncode:
        raise RuntimeError(f"{' '.join(argv[2:4])} exited {child.returncode}")
    return child, out.read_text()


def measure(repeat: int = 1) -> PartResult:
    """The six runs once each (full and 1-token: tokentop --no-store, with the store, SDK)."""
    sessions = scaled(16, 4)
    seconds = scaled(20, 3)
    tokens = TPS * seconds
    result = PartResult("cpu_per_token")
    with simulator() as base_url, tempfile.TemporaryDirectory(prefix="tokentop-bench-") as tmp:
        work = Path(tmp)
        full = write_sessions(
            work / "full.toml", base_url, sessions, f"ttft=0.3,tps={TPS},tokens={tokens}"
        )
        tiny = write_sessions(work / "tiny.toml", base_url, sessions, "ttft=0,tps=0,tokens=1")
        cpu: dict[str, tuple[float, float]] = {}
        walls: dict[str, float] = {}
        for name in SIDES:
            small, _ = _run(_argv(name, tiny), work / f"{name}-tiny.out", seconds)
            big, out = _run(_argv(name, full), work / f"{name}-full.out", seconds)
            cpu[name] = (big.cpu_s, small.cpu_s)
            walls[name] = big.wall_s
            got = _tokens(out, name)
            if got != sessions * tokens:
                raise RuntimeError(
                    f"{name}: {got:,} tokens received, expected {sessions * tokens:,}"
                )
    total = sessions * tokens
    per = {name: (big - small) / total for name, (big, small) in cpu.items()}
    ratio = per["sdk"] / per["tokentop"]
    label = f"{sessions}x{TPS} tok/s x {seconds} s"
    result.figures = [
        Figure(
            "cpu_per_token",
            f"CPU per token, openai SDK loop / tokentop run --no-store ({label})",
            f">= {RATIO_BAR:g}x",
            fmt_ratio(ratio),
            ratio >= RATIO_BAR,
            _detail(cpu, per, "tokentop"),
        ),
        Figure(
            "cpu_per_token",
            "  the same with the store (SDK / tokentop run)",
            "-",
            fmt_ratio(per["sdk"] / per["tokentop+store"]),
            None,
            _detail(cpu, per, "tokentop+store"),
        ),
        Figure(
            "cpu_per_token",
            "  CPU per token: tokentop --no-store / with store / SDK",
            "-",
            " / ".join(f"{per[n] * 1e6:.0f}" for n in ("tokentop", "tokentop+store", "sdk"))
            + " us",
            None,
            "cores while streaming: "
            + ", ".join(f"{n} {cpu[n][0] / walls[n]:.2f}" for n in cpu)
            + " (whole process over its life)",
        ),
    ]
    result.notes = [
        f"{total:,} tokens ({label}); CPU of the full run - CPU of a 1-token run of the same "
        "sessions, per token: "
        + ", ".join(f"{n} {per[n] * 1e6:.0f} us ({cpu[n][0]:.2f} - {cpu[n][1]:.2f} s)" for n in per)
    ]
    return result


def _tokens(out: str, name: str) -> int:
    """Text deltas (SDK) or output tokens (tokentop's result records) of a run's stdout."""
    if name == "sdk":
        return int(json.loads(out.strip().splitlines()[-1])["deltas"])
    records = [
        json.loads(line) for line in out.splitlines() if line.startswith('{"type": "result"')
    ]
    return sum(int(r["output_tokens"] or 0) for r in records)


def _detail(cpu: dict[str, tuple[float, float]], per: dict[str, float], name: str) -> str:
    return (
        f"{name} {per[name] * 1e6:.0f} us per token ({cpu[name][0]:.2f} - {cpu[name][1]:.2f} "
        f"CPU s), SDK {per['sdk'] * 1e6:.0f} us ({cpu['sdk'][0]:.2f} - {cpu['sdk'][1]:.2f} CPU s)"
    )


if __name__ == "__main__":
    part_main("cpu_per_token", measure)
