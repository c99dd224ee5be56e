"""Part 5, start-up: ``tokentop --help`` and the first painted dashboard frame, each against a
reference measured in the same run.

Four kinds of fresh subprocess, interleaved, best of N (wall time with ``time.perf_counter``,
which is ``CLOCK_MONOTONIC`` on Linux and therefore comparable across processes):

- ``python -c pass``: Python's bare start.
- ``tokentop --help`` (the installed console script).
- a minimal Textual app (one ``Static``), headless at 200x60: the time from spawning the
  process to the first frame Textual hands to its driver (``App._display`` with an update),
  which the child writes to a file and then ``os._exit``s (teardown is not start-up).
- ``tokentop`` itself with no CONFIG (the console script's ``main``: the default config,
  ``./sessions.toml`` or the shipped example on the built-in simulator; a fresh database
  file, fresh XDG config and data directories), headless at 200x60, same probe: the first
  frame of the main screen (the overview with its rows; the session panes, the store and the
  streams start right after it). The probe patches ``TokentopApp`` when ``tokentop`` imports
  it, so nothing is imported earlier than ``tokentop`` does.

Every child runs from cached bytecode (:func:`_child_env`), as an installed tokentop does.

Bars: ``--help`` < 2 x bare + 150 ms; first frame < 1.5 x the minimal Textual app. An info row
gives the two probes' CPU time to their first frame (median), a ratio that holds on a loaded
machine where the best wall time depends on when a core was free.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Figure, PartResult, fmt_ratio, part_main

HELP_FACTOR = 2.0
HELP_EXTRA_S = 0.150
FRAME_FACTOR = 1.5

_PROBE = """
import os, sys, time

def _painted_at(out):
    with open(out, "w") as f:
        f.write(repr(time.perf_counter()))
    os._exit(0)
"""

MINIMAL_APP = (
    _PROBE
    + """
from textual.app import App, ComposeResult
from textual.widgets import Static

class Minimal(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("hello")

    def _display(self, screen, renderable):
        # the first frame Textual hands to its driver
        if renderable is not None:
            _painted_at(sys.argv[1])
        return super()._display(screen, renderable)

Minimal().run(headless=True, size=(200, 60))
"""
)
"""The reference: the smallest Textual app that paints something."""

DASHBOARD_APP = (
    _PROBE
    + """
from importlib.machinery import PathFinder


def _probe(app_module):
    # the first frame of the main screen Textual hands to its driver (the overview, with
    # its rows: the tab panes, the store and the streams start just after it), headless
    app_class = app_module.TokentopApp
    display, run = app_class._display, app_class.run

    def _display(self, screen, renderable):
        main = sys.modules.get("tui.ui.screens.main")
        if renderable is not None and main is not None and isinstance(screen, main.MainScreen):
            _painted_at(OUT)
        return display(self, screen, renderable)

    app_class._display = _display
    app_class.run = lambda self, **kw: run(self, headless=True, size=(200, 60))


class _WhenImported:
    # patch tui.ui.app when `tokentop` imports it, so that nothing is imported earlier
    # or in another order than `tokentop` does
    def find_spec(self, name, path=None, target=None):
        if name != "tui.ui.app":
            return None
        sys.meta_path.remove(self)
        spec = PathFinder.find_spec(name, path)
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _probe(module)

        spec.loader.exec_module = exec_and_patch
        return spec


sys.meta_path.insert(0, _WhenImported())
OUT = sys.argv[1]
os.environ["TOKENTOP_DB"] = sys.argv[2]
sys.argv[:] = ["tokentop"]  # no CONFIG, no option
from tui.cli import main

main()
"""
)
"""``tokentop`` itself (its console script's ``main``, no CONFIG), with the same probe."""


def _tokentop() -> str:
    script = Path(sys.executable).with_name("tokentop")
    return str(script) if script.exists() else "tokentop"


def _child_env(workdir: Path) -> dict[str, str]:
    """The children's environment: bytecode cached under ``workdir``.

    An installed tokentop runs from ``.pyc`` files (pip compiles them; Python writes them on
    the first run otherwise), as Textual in site-packages does. Under
    ``PYTHONDONTWRITEBYTECODE`` (a sandbox's setting) tokentop's own modules would be
    compiled from source in every run while Textual's are not: the untimed warm-up run writes
    them here instead, and the timed runs read them."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


def _wall(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from spawning ``argv`` to its exit."""
    started = time.perf_counter()
    subprocess.run(
        argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True
    )
    return time.perf_counter() - started


def _first_frame(code: str, workdir: Path, index: int) -> tuple[float, float]:
    """Seconds from spawning the probe ``code`` to its first painted frame, and the CPU
    seconds (user + system) the probe used to get there (it exits at that frame)."""
    out = workdir / f"frame-{index}.txt"
    db = workdir / f"db-{index}.sqlite"
    # a real file, not -c: Textual looks up the source file of the App class
    script = workdir / f"probe_{abs(hash(code))}.py"
    if not script.exists():
        script.write_text(code)
    env = _child_env(workdir)
    # a fresh user: no sessions file and no own file of tokentop's, no user themes
    home = workdir / f"home-{index}"
    env["XDG_CONFIG_HOME"] = str(home / "config")
    env["XDG_DATA_HOME"] = str(home / "data")
    errors = workdir / f"stderr-{index}.txt"
    with errors.open("w") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, str(script), str(out), str(db)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    if not out.exists():
        tail = " | ".join(errors.read_text().strip().splitlines()[-4:])
        raise RuntimeError(f"probe exited {child.returncode} without painting: {tail}")
    return float(out.read_text()) - started, usage.ru_utime + usage.ru_stime


def measure(repeat: int = 3) -> PartResult:
    """Run the start-up part (best of ``max(5, 2 * repeat)`` runs of each process)."""
    runs = max(5, 2 * repeat)
    result = PartResult("startup")
    bare: list[float] = []
    help_: list[float] = []
    minimal: list[float] = []
    dashboard: list[float] = []
    minimal_cpu: list[float] = []
    dashboard_cpu: list[float] = []
    tokentop = _tokentop()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tokentop-bench-") as tmp:
        workdir = Path(tmp)
        env = _child_env(workdir)
        # warm the page cache (and .pyc files) once, untimed
        _wall([sys.executable, "-c", "pass"], env)
        _wall([tokentop, "--help"], env)
        _first_frame(MINIMAL_APP, workdir, -1)
        _first_frame(DASHBOARD_APP, workdir, -2)
        for i in range(runs):
            bare.append(_wall([sys.executable, "-c", "pass"], env))
            help_.append(_wall([tokentop, "--help"], env))
            wall, cpu = _first_frame(MINIMAL_APP, workdir, 2 * i)
            minimal.append(wall)
            minimal_cpu.append(cpu)
            wall, cpu = _first_frame(DASHBOARD_APP, workdir, 2 * i + 1)
            dashboard.append(wall)
            dashboard_cpu.append(cpu)
    b, h, m, d = min(bare), min(help_), min(minimal), min(dashboard)
    m_cpu, d_cpu = statistics.median(minimal_cpu), statistics.median(dashboard_cpu)
    help_bar = HELP_FACTOR * b + HELP_EXTRA_S
    result.figures = [
        Figure(
            "startup",
            "tokentop --help vs python -c pass",
            f"< 2 x bare + 150 ms (= {help_bar * 1000:.0f} ms)",
            f"{h * 1000:.0f} ms ({fmt_ratio(h / b)} bare)",
            h < help_bar,
            f"bare {b * 1000:.0f} ms, --help {h * 1000:.0f} ms (best of {runs})",
        ),
        Figure(
            "startup",
            "first dashboard frame / minimal Textual app",
            f"< {FRAME_FACTOR:g}x",
            fmt_ratio(d / m),
            d / m < FRAME_FACTOR,
            f"minimal app {m * 1000:.0f} ms, dashboard {d * 1000:.0f} ms (best of {runs})",
        ),
        Figure(
            "startup",
            "first frame's CPU time: dashboard / minimal app",
            "(info)",
            fmt_ratio(d_cpu / m_cpu),
            None,
            f"CPU to the first frame (median of {runs}): minimal app {m_cpu * 1000:.0f} ms, "
            f"dashboard {d_cpu * 1000:.0f} ms; unlike wall time, barely moved by other "
            "processes",
        ),
    ]
    result.notes = [
        f"bare python {b * 1000:.0f} ms, tokentop --help {h * 1000:.0f} ms, minimal Textual "
        f"first frame {m * 1000:.0f} ms, dashboard first frame {d * 1000:.0f} ms "
        f"(best of {runs}; medians {sorted(bare)[runs // 2] * 1000:.0f} / "
        f"{sorted(help_)[runs // 2] * 1000:.0f} / {sorted(minimal)[runs // 2] * 1000:.0f} / "
        f"{sorted(dashboard)[runs // 2] * 1000:.0f} ms)",
        f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
    ]
    return result


if __name__ == "__main__":
    part_main("startup", measure)
