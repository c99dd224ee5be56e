"""Part ``idle128`` (issue 13, bar 2): what the dashboard costs when nothing flows. 128
sessions, each connected to the simulator (another process) and waiting for a first token
that is an hour away (``ttft=3600``: the response headers, and for Responses
``response.created``, arrive at once, then nothing), headless at 200x60 with the store on.

Once every run has its response headers (a ``Started`` event) and the screen has settled
(1 s), the app process's CPU seconds (every thread) are read over a 10 s window, with the
overview on screen; the same with session 0's pane on screen beside it. Bar: under 3% of a
core with the overview on screen. The runs are then cancelled.

``--quick``: 8 sessions, a 2 s window. ``TOKENTOP_BENCH_PROFILE=DIR``: the UI thread's
profile of each window (``idle128-overview``, ``idle128-pane``: ``.prof`` and ``.txt``).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import Figure, PartResult, cpu_seconds, part_main, simulator
from bench.dashboard import load_config, start_profile, stop_profile, wait_until
from bench.scale import patient_pilot, scaled
from tui.session import SessionController, SessionRun
from tui.stream.events import RunEvent, Started

CORE_BAR = 0.03
SETTLE_S = 1.0


class Connected:
    """A SessionListener that notes when its run's response headers arrived."""

    def __init__(self) -> None:
        self.started = False

    def run_started(self, live: SessionController, run: SessionRun) -> None:
        """A new run: not connected yet."""
        self.started = False

    def run_events(
        self, live: SessionController, run: SessionRun, events: Sequence[RunEvent]
    ) -> None:
        """Headers arrived?"""
        if any(type(e) is Started for e in events):
            self.started = True


async def _window(seconds: float) -> tuple[float, float]:
    """CPU seconds and wall seconds of this process over ``seconds`` of doing nothing."""
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    await asyncio.sleep(seconds)
    return cpu_seconds() - cpu0, time.perf_counter() - wall0


async def _measure_async(base_url: str, workdir: Path) -> PartResult:
    from tui.ui.app import TokentopApp

    patient_pilot()

    sessions = scaled(128, 8)
    window = scaled(10, 2)
    config = load_config(base_url, sessions, "ttft=3600,tps=50,tokens=100")
    app = TokentopApp(config, db_path=workdir / "bench.sqlite", autostart=False, freeze_gc=True)
    async with app.run_test(headless=True, size=(200, 60)) as pilot:
        main = app.main_screen
        assert main is not None
        await wait_until(lambda: app.begun and len(main.panes) == sessions, 30.0)
        connected = [Connected() for _ in range(sessions)]
        for live, probe in zip(app.sessions, connected, strict=True):
            live.subscribe(probe)
        main.action_overview()
        await pilot.pause()
        for live in app.sessions:
            live.start()
        ok = await wait_until(lambda: all(c.started for c in connected), 60.0)
        await asyncio.sleep(SETTLE_S)
        profiler = start_profile()  # the UI thread's (TOKENTOP_BENCH_PROFILE=DIR)
        overview_cpu, overview_wall = await _window(window)
        stop_profile(profiler, "idle128-overview")
        main.show_session(app.sessions[0].name)
        await pilot.pause()
        await asyncio.sleep(SETTLE_S)
        profiler = start_profile()
        pane_cpu, pane_wall = await _window(window)
        stop_profile(profiler, "idle128-pane")
        waiting = sum(1 for c in connected if c.started)
        for live in app.sessions:
            live.cancel()
    share = overview_cpu / overview_wall
    pane_share = pane_cpu / pane_wall
    result = PartResult("idle128")
    result.figures = [
        Figure(
            "idle128",
            f"{sessions} connected sessions, no tokens, overview on screen: CPU",
            f"< {CORE_BAR:.0%} of a core",
            f"{share:.1%}",
            ok and share < CORE_BAR,
            f"{overview_cpu:.2f} CPU s over {overview_wall:.1f} s; {waiting} of {sessions} "
            "runs had their response headers",
        ),
        Figure(
            "idle128",
            "  the same with a session pane on screen",
            "-",
            f"{pane_share:.1%}",
            None,
            f"{pane_cpu:.2f} CPU s over {pane_wall:.1f} s",
        ),
    ]
    result.notes = [
        f"{sessions} sessions connected, waiting for a first token: {share:.1%} of a core with "
        f"the overview on screen, {pane_share:.1%} with a pane"
    ]
    return result


def measure(repeat: int = 1) -> PartResult:
    """One window per screen (CPU seconds barely depend on other load)."""
    with simulator() as base_url, tempfile.TemporaryDirectory(prefix="tokentop-bench-") as tmp:
        return asyncio.run(_measure_async(base_url, Path(tmp)))


if __name__ == "__main__":
    part_main("idle128", measure)
