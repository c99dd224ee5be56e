"""``python -m bench [PART ...]``: run the benchmark suite and print the results table.

Parts: ``ingest``, ``store``, ``dashboard``, ``long``, ``startup``, ``parity``, ``stats``,
``retention``, and the parts at real model rates of issue 13: ``live64``, ``idle128``,
``headless1024``, ``cpu_per_token``, ``million`` (default: all, in that order). Each part
runs in its own Python process; the parts that stream share one simulator process started
here (``headless1024`` starts its own, which logs request arrivals). ``--quick`` runs the
issue-13 parts at a reduced scale (a smoke check, not a measurement). ``--write`` also
rewrites the measured section of ``bench/RESULTS.md``. Exit status 0 when every bar passes,
1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import (
    QUICK_ENV,
    SIM_ENV,
    PartResult,
    machine,
    render_details,
    render_table,
    run_part,
    simulator,
)

PARTS: dict[str, tuple[str, float]] = {
    "ingest": ("bench.ingest", 300.0),
    "store": ("bench.store", 120.0),
    "dashboard": ("bench.dashboard", 300.0),
    "long": ("bench.long_answer", 300.0),
    "startup": ("bench.startup", 180.0),
    "parity": ("bench.parity", 300.0),
    "stats": ("bench.stats", 180.0),
    "retention": ("bench.retention", 300.0),
    "live64": ("bench.live64", 600.0),
    "idle128": ("bench.idle128", 300.0),
    "headless1024": ("bench.headless1024", 2400.0),
    "cpu_per_token": ("bench.cpu_per_token", 900.0),
    "million": ("bench.million", 3600.0),
}
"""Part name -> (module, time limit in seconds)."""

RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"


def measured_section(results: list[PartResult], total_s: float) -> str:
    """The generated part of RESULTS.md: date, machine, table, raw figures."""
    info = machine()
    lines = [
        BEGIN,
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `python -m bench` "
        f"({total_s:.0f} s).",
        "",
        f"- Machine: {info['nproc']} CPUs, {info['cpu']}; {info['platform']}",
        f"- Python {info['python']}; {info['libraries']}",
        f"- Load average when done: {info['load']} (a machine shared with other engineers' "
        "test runs)",
        "",
        render_table(results, markdown=True),
        "",
        "Raw figures:",
        "",
    ]
    for result in results:
        for note in result.notes:
            lines.append(f"- **{result.part}**: {note}")
        for figure in result.figures:
            if figure.detail:
                lines.append(f"- {figure.part} / {figure.name}: {figure.detail}")
    lines.append(END)
    return "\n".join(lines)


def write_results(section: str) -> None:
    """Replace the generated section of RESULTS.md (or append it)."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    RESULTS.write_text(text)


def main(argv: list[str] | None = None) -> int:
    """Run the selected parts; print the table; 0 if every bar passes."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("parts", nargs="*", choices=[*PARTS, []], metavar="PART")
    parser.add_argument("--repeat", type=int, default=3, help="best of N where it applies")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument(
        "--quick", action="store_true", help="the issue-13 parts at a reduced scale (smoke check)"
    )
    parser.add_argument("--details", action="store_true", help="print each figure's raw figures")
    args = parser.parse_args(argv)
    if args.quick:
        os.environ[QUICK_ENV] = "1"
    chosen = args.parts or list(PARTS)
    started = time.perf_counter()
    results: list[PartResult] = []
    with simulator() as base_url:
        os.environ[SIM_ENV] = base_url
        for name in chosen:
            module, limit = PARTS[name]
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            result = run_part(module, ["--repeat", str(args.repeat)], timeout=limit)
            print(f"[bench] {name} done in {result.seconds:.0f} s", file=sys.stderr, flush=True)
            results.append(result)
    total = time.perf_counter() - started
    print(render_table(results))
    print(f"\n{sum(len(r.figures) for r in results)} figures in {total:.0f} s")
    for result in results:
        for note in result.notes:
            print(f"- {result.part}: {note}")
    if args.details:
        print(render_details(results))
    if args.write:
        write_results(measured_section(results, total))
        print(f"\nwrote {RESULTS}")
    failed = any(f.passed is False for r in results for f in r.figures)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
