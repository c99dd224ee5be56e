"""Shared pieces of the benchmark suite: figures, the simulator in its own process, child
processes that report JSON, percentiles and the machine description.

Every figure the suite reports is a *ratio measured in the same run* (or a bound checked
against a reference measured in the same run), so that it holds on a noisy shared machine.
Each part runs in its own Python process (``python -m bench.<part> --json``): a clean heap for
peak RSS, no warm caches carried between parts, and the simulator in yet another process so
its CPU never competes with the measured client for the same GIL.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
"""The repository root (the bench runs from here)."""

SIM_ENV = "TOKENTOP_BENCH_SIM"
"""Environment variable carrying the base URL of an already running simulator."""

SIM_PID_ENV = "TOKENTOP_BENCH_SIM_PID"
"""Environment variable carrying the process id of that simulator (for its CPU time)."""

QUICK_ENV = "TOKENTOP_BENCH_QUICK"
"""Set to 1 (``--quick``) to run the parts that support it at a reduced scale: a smoke check
that they run and report, not a measurement."""


@dataclass(slots=True)
class Figure:
    """One row of the results table."""

    part: str
    """The suite part (ingest, store, dashboard, long, startup)."""
    name: str
    """What is measured, e.g. ``chat: engine / openai SDK``."""
    bar: str
    """The bar, as text (``>= 8x``)."""
    measured: str
    """The measured value, as text (``11.2x``)."""
    passed: bool | None
    """True / False against the bar; None for an informational row (no bar)."""
    detail: str = ""
    """The raw figures behind a ratio (absolute rates, times), for the notes."""

    @property
    def verdict(self) -> str:
        """``pass`` / ``FAIL`` / ``info``."""
        if self.passed is None:
            return "info"
        return "pass" if self.passed else "FAIL"


@dataclass(slots=True)
class PartResult:
    """What one part reports: its figures plus free-form notes."""

    part: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> str:
        """Serialize (a child process prints this as its last stdout line)."""
        return json.dumps(
            {
                "part": self.part,
                "figures": [asdict(f) for f in self.figures],
                "notes": self.notes,
                "seconds": self.seconds,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> PartResult:
        """The inverse of :meth:`to_json`."""
        raw = json.loads(text)
        return cls(
            part=raw["part"],
            figures=[Figure(**f) for f in raw["figures"]],
            notes=list(raw["notes"]),
            seconds=float(raw["seconds"]),
        )


# -- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all threads)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


_SCHEDSTAT_FDS: dict[int, int] = {}


def runqueue_wait_seconds() -> float:
    """Seconds the calling thread has spent runnable but waiting for a CPU (Linux
    ``/proc/thread-self/schedstat``, read with ``pread`` on a descriptor kept per thread:
    about 1 us; 0 elsewhere). Its growth over a window is the time other processes took
    from us: subtracting it from a wall-clock lag gives the lag this code would have with a
    CPU to itself (what the bars are about), which is what makes the lag figures hold on a
    shared machine."""
    import threading

    ident = threading.get_ident()
    fd = _SCHEDSTAT_FDS.get(ident)
    try:
        if fd is None:
            fd = _SCHEDSTAT_FDS[ident] = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        return int(os.pread(fd, 128, 0).split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


# -- the machine ------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """``nproc``, CPU model, Python and key library versions, and the load when measured."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    versions: list[str] = []
    for module in ("textual", "httpx", "openai", "msgspec"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions.append(f"{module} {version(module)}")
    return {
        "nproc": str(os.cpu_count() or "?"),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": ", ".join(versions),
        "load": load,
    }


# -- the simulator in its own process ---------------------------------------------------------


class SimProcess:
    """The tokentop simulator served by uvicorn in a separate Python process.

    ``with SimProcess() as base_url: ...``. When :data:`SIM_ENV` is set (the suite driver
    started one already), that simulator is reused and nothing is started.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> str:
        shared = os.environ.get(SIM_ENV)
        if shared:
            self.base_url = shared
            return shared
        code = "from tui.sim.server import serve; serve('127.0.0.1', 0)"
        self._proc = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("http"):
            self._proc.kill()
            raise RuntimeError(f"the simulator did not start: {line!r}")
        self.base_url = line
        _wait_until_listening(line)
        os.environ[SIM_PID_ENV] = str(self._proc.pid)
        return line

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def simulator_cpu_seconds() -> float | None:
    """CPU seconds (user + system) the simulator process has used, None when unknown."""
    pid = os.environ.get(SIM_PID_ENV)
    if not pid:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, IndexError, ValueError):
        return None


def _wait_until_listening(base_url: str, timeout: float = 20.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(base_url + "/models", timeout=2.0)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def simulator() -> Iterator[str]:
    """The base URL of a simulator in another process (shared or started here)."""
    with SimProcess() as base_url:
        yield base_url


# -- child processes --------------------------------------------------------------------------


def run_part(module: str, args: Sequence[str] = (), *, timeout: float = 300.0) -> PartResult:
    """Run ``python -m <module> --json [args]`` and parse the :class:`PartResult` it prints
    last. A crash becomes a failed figure (with the tail of stderr), never an exception."""
    part = module.rsplit(".", 1)[-1]
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", module, "--json", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return PartResult(
            part,
            [Figure(part, "run", "finishes", f"timed out after {timeout:.0f} s", False)],
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = " | ".join(proc.stderr.strip().splitlines()[-6:])
        return PartResult(
            part,
            [Figure(part, "run", "finishes", f"crashed (exit {proc.returncode})", False, tail)],
            seconds=time.perf_counter() - started,
        )
    return PartResult.from_json(lines[-1])


def part_main(part: str, measure: Any, argv: Sequence[str] | None = None) -> None:
    """The ``__main__`` of a part: ``measure(base_url, repeat) -> PartResult``.

    ``--json`` prints the result as JSON (for the suite driver); otherwise the table.
    """
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m bench.{part}")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    parser.add_argument("--quick", action="store_true", help="reduced scale (a smoke check)")
    parser.add_argument("--details", action="store_true", help="print each figure's raw figures")
    args = parser.parse_args(argv)
    if args.quick:
        os.environ[QUICK_ENV] = "1"
    started = time.perf_counter()
    result: PartResult = measure(args.repeat)
    result.seconds = time.perf_counter() - started
    if args.json:
        print(result.to_json(), flush=True)
    else:
        print(render_table([result]))
        for note in result.notes:
            print(f"- {note}")
        if args.details:
            print(render_details([result]))


# -- output -----------------------------------------------------------------------------------


def render_table(results: Sequence[PartResult], *, markdown: bool = False) -> str:
    """The figure / bar / measured / pass-fail table of ``results``."""
    rows = [("part", "figure", "bar", "measured", "result")]
    for result in results:
        for f in result.figures:
            rows.append((f.part, f.name, f.bar, f.measured, f.verdict))
    if markdown:
        out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(out)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def render_details(results: Sequence[PartResult]) -> str:
    """One line per figure with raw figures behind it (``- part / figure: detail``)."""
    return "\n".join(
        f"- {f.part} / {f.name.strip()}: {f.detail}"
        for result in results
        for f in result.figures
        if f.detail
    )


def fmt_ratio(value: float) -> str:
    """``12.3x``."""
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"
