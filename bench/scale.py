"""What the parts at real model rates share (issue 13): the reduced scale of a smoke check,
child processes measured with ``wait4`` (their own CPU seconds and peak RSS, nobody else's),
sessions files for ``tokentop run``, and a simulator process that logs when each session's
requests reach it (the reference for stored start times).

``--quick`` (or ``TOKENTOP_BENCH_QUICK=1``) runs every part at a scale that finishes in
seconds: a smoke check that the part runs and reports, not a measurement.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import tomli_w

from bench.common import QUICK_ENV, ROOT

SESSION_HEADER = "X-Bench-Session"
"""The header each session of a generated sessions file sends: its index."""


def quick() -> bool:
    """Whether the parts run at the reduced scale."""
    return os.environ.get(QUICK_ENV, "") not in ("", "0")


def scaled(full: int, small: int) -> int:
    """``full`` normally, ``small`` at the reduced scale."""
    return small if quick() else full


# -- child processes measured on their own ------------------------------------------------------


@dataclass(slots=True)
class ChildRun:
    """What one child process cost, from ``os.wait4`` (its own rusage, not a sibling's)."""

    returncode: int
    wall_s: float
    """From spawning it to reaping it."""
    cpu_s: float
    """User + system CPU seconds of the child (all its threads)."""
    peak_rss_mb: float
    """Its peak resident set size (``ru_maxrss``, KiB on Linux)."""
    cpu_wait_s: float = 0.0
    """Seconds its threads spent runnable but waiting for a CPU held by other processes
    (``/proc/<pid>/task/*/schedstat``, read every quarter second until it exits: the last
    quarter second is missing), summed over the threads; 0 where unknown."""

    @property
    def cores(self) -> float:
        """Average cores used over its life."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else float("nan")


def run_child(
    argv: Sequence[str],
    *,
    timeout: float,
    stdout: IO[Any] | int | None = subprocess.DEVNULL,
    stderr: IO[Any] | int | None = subprocess.DEVNULL,
    env: dict[str, str] | None = None,
) -> ChildRun:
    """Run ``argv`` to its end and return its own costs; killed after ``timeout`` seconds
    (then ``returncode`` is the kill's)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=stdout, stderr=stderr, env=env)
    deadline = started + timeout
    waits: dict[str, float] = {}
    next_read = started
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        now = time.perf_counter()
        if now > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        if now >= next_read:
            waits.update(thread_waits(proc.pid))
            next_read = now + 0.25
        time.sleep(0.01)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen
    return ChildRun(
        returncode=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024.0,
        cpu_wait_s=sum(waits.values()),
    )


def thread_waits(pid: int) -> dict[str, float]:
    """Thread id -> seconds that thread of ``pid`` has waited for a CPU so far (empty when
    the process is gone or there is no ``/proc``)."""
    out: dict[str, float] = {}
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            out[stat.parent.name] = int(stat.read_text().split()[1]) / 1e9
    return out


def load_average() -> str:
    """The 1-minute load average now."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def tokentop_argv(*args: str) -> list[str]:
    """The real CLI (``python -m tui``, what the ``tokentop`` script runs)."""
    return [sys.executable, "-m", "tui", *args]


# -- sessions files --------------------------------------------------------------------------


def write_sessions(
    path: Path,
    base_url: str,
    count: int,
    timing: str,
    *,
    apis: Sequence[str] = ("chat", "responses"),
    prompt: str = "write a long and detailed answer",
) -> Path:
    """A sessions file of ``count`` sessions on the simulator at ``base_url``: APIs in turn,
    each sending ``X-Sim-Timing: timing`` and its index in :data:`SESSION_HEADER`."""
    sessions = [
        {
            "name": f"s{i:04d}",
            "model": "sim",
            "api": apis[i % len(apis)],
            "base_url": base_url,
            "prompt": f"Session {i}: {prompt}.",
            "headers": {"X-Sim-Timing": timing, SESSION_HEADER: str(i)},
        }
        for i in range(count)
    ]
    path.write_text(tomli_w.dumps({"sessions": sessions}))
    return path


# -- a simulator that logs arrivals ------------------------------------------------------------


@dataclass(slots=True)
class LoggedSim:
    """A simulator process (``python -m bench.sim_log``) and how to ask it what arrived."""

    base_url: str
    pid: int

    def arrivals_list(self) -> list[tuple[str, float]]:
        """Every logged POST so far, in order: (session index, wall time ``time.time()``)."""
        import httpx

        raw = httpx.get(self.base_url.removesuffix("/v1") + "/bench/arrivals", timeout=60).json()
        return [(str(session), float(at)) for session, at in raw]

    def cpu_wait_seconds(self) -> float:
        """Seconds the simulator's threads have waited for a CPU so far."""
        return sum(thread_waits(self.pid).values())

    def cpu_seconds(self) -> float:
        """CPU seconds the simulator process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def logged_simulator() -> Iterator[LoggedSim]:
    """A simulator in its own process that records each session's request arrivals."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.sim_log"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("http"):
            raise RuntimeError(f"the logging simulator did not start: {line!r}")
        yield LoggedSim(line, proc.pid)
    finally:
        proc.kill()
        proc.wait()


# -- profiles of every thread -------------------------------------------------------------


class ThreadProfiles:
    """cProfile for the calling thread and every thread started while active (the engine's
    loop thread, the store's writer): ``Thread.run`` is wrapped, each thread gets its own
    profiler, timed with the thread's own CPU clock (``time.thread_time``), so that waiting
    for a CPU, the GIL or the network is not counted as a function's cost on a busy machine.
    :meth:`write` saves one ``.prof`` and a text summary per thread that has ended (a
    profiler still running in another thread cannot be read safely) plus the caller's."""

    def __init__(self) -> None:
        import cProfile
        import threading

        self._threading = threading
        self._done: list[tuple[str, cProfile.Profile]] = []
        self._lock = threading.Lock()
        self._main = cProfile.Profile(time.thread_time)
        self._original = threading.Thread.run

    def start(self) -> None:
        """Profile this thread and the threads started from now on."""
        import cProfile

        profiles = self

        def run(thread: Any) -> None:
            profiler = cProfile.Profile(time.thread_time)
            profiler.enable()
            try:
                profiles._original(thread)
            finally:
                profiler.disable()
                with profiles._lock:
                    profiles._done.append((thread.name, profiler))

        self._threading.Thread.run = run  # type: ignore[method-assign,assignment]
        self._main.enable()

    def pause(self) -> None:
        """Stop profiling the calling thread (the others go on): to profile a window only."""
        self._main.disable()

    def resume(self) -> None:
        """Profile the calling thread again (what it records adds up)."""
        self._main.enable()

    def write(self, out: Path, name: str) -> list[Path]:
        """Stop, and write ``<out>/<name>.<thread>.prof`` and ``.txt`` per thread."""
        import io
        import pstats
        import re

        self._main.disable()
        self._threading.Thread.run = self._original  # type: ignore[method-assign]
        out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        with self._lock:
            done = [("main", self._main), *self._done]
        for index, (thread, profiler) in enumerate(done):
            label = re.sub(r"[^A-Za-z0-9_.-]+", "-", thread)[:40] or "thread"
            stats = pstats.Stats(profiler)
            if getattr(stats, "total_tt", 1.0) < 0.05:  # an idle helper thread: nothing to read
                continue
            base = out / f"{name}.{index:02d}-{label}"
            stats.dump_stats(f"{base}.prof")
            text = io.StringIO()
            summary = pstats.Stats(profiler, stream=text)
            summary.sort_stats("tottime").print_stats(35)
            summary.sort_stats("cumulative").print_stats(45)
            Path(f"{base}.txt").write_text(text.getvalue())
            written.append(Path(f"{base}.txt"))
        return written


def patient_pilot(timeout: float = 300.0) -> None:
    """Let Textual's test pilot wait up to ``timeout`` seconds (instead of 30) for a screen to
    process its pending messages: mounting 128 panes on a loaded machine takes longer, and
    that wait is not what these parts measure (bench process only)."""
    from textual.pilot import Pilot

    wait = Pilot._wait_for_screen
    if getattr(wait, "patient", False):
        return

    async def patient(self: Pilot[Any], timeout_s: float = timeout) -> bool:
        return await wait(self, timeout_s)

    patient.patient = True  # type: ignore[attr-defined]
    Pilot._wait_for_screen = patient  # type: ignore[method-assign,assignment]
