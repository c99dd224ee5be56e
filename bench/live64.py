"""Part ``live64`` (issue 13, bar 1): the dashboard at real model rates, 64 sessions x 50
tokens/s for 20 s from the simulator (another process), headless at 200x60, the store on
(a fresh file), as ``tokentop`` runs it (``freeze_gc=True``).

For the first half of the stream the **overview** is on screen (its rows follow all 64
sessions); then session 0's **pane** is shown until every run ends. Measured in the app's
own process and loop, with the probes of :mod:`bench.dashboard`:

- **loop lag p99**: a task sleeping 5 ms records how late it wakes, without the time the
  loop thread waited for a CPU held by other processes, over the whole stream (both phases;
  each phase's p99 beside it). Bar <= 50 ms.
- **display lag p99**, token received -> on screen, for the pane on screen, counted for the
  text deltas received after the pane was shown and had caught up with what it buffered
  while hidden (the catch-up itself is its own figure). Bar <= 150 ms.
- **cores used**: the app process's CPU seconds (every thread: UI, engine, store writer) over
  the wall time of the stream. Bar < 0.5.
- **tokens lost**: every session received all its text deltas, and every pane, shown and
  flushed after the run, its Markdown or plain view and its accumulator hold exactly the text
  the session received. Bar: 0.

``--quick``: 8 sessions x 3 s. ``TOKENTOP_BENCH_PROFILE=DIR`` profiles the app's threads by
their CPU time (the UI loop over the stream; the engine and the store writer over the app's
life) into ``DIR/live64.<thread>.prof`` and ``.txt``: the figures of that run are not the
measurement (cProfile slows it down).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench.common import (
    Figure,
    PartResult,
    cpu_seconds,
    part_main,
    peak_rss_mb,
    percentile,
    runqueue_wait_seconds,
    simulator,
    simulator_cpu_seconds,
)
from bench.dashboard import (
    DISPLAY_LAG_BAR_MS,
    LOOP_LAG_BAR_MS,
    PROFILE_ENV,
    DisplayProbe,
    LoopLagTicker,
    ReceivedText,
    load_config,
    pane_text_problems,
    settle_pane,
    wait_until,
)
from bench.scale import ThreadProfiles, patient_pilot, scaled

TPS = 50
TTFT_S = 0.3
CORES_BAR = 0.5


def after(received: ReceivedText, since: float) -> ReceivedText:
    """The timed deltas of ``received`` that arrived after ``since`` (perf_counter)."""
    keep = [i for i, t in enumerate(received.times) if t > since]
    return ReceivedText(
        timed=True,
        times=[received.times[i] for i in keep],
        waits=[received.waits[i] for i in keep],
        ends=[received.ends[i] for i in keep],
    )


async def _measure_async(base_url: str, workdir: Path) -> PartResult:
    from tui.ui.app import TokentopApp

    patient_pilot()

    sessions = scaled(64, 8)
    seconds = scaled(20, 3)
    tokens = TPS * seconds
    config = load_config(base_url, sessions, f"ttft={TTFT_S},tps={TPS},tokens={tokens}")
    profile_dir = os.environ.get(PROFILE_ENV)
    profiles = ThreadProfiles() if profile_dir else None
    if profiles is not None:
        profiles.start()
        profiles.pause()  # the UI thread is profiled over the stream only
    app = TokentopApp(config, db_path=workdir / "bench.sqlite", autostart=False, freeze_gc=True)
    ticker = LoopLagTicker()
    problems: list[str] = []
    async with app.run_test(headless=True, size=(200, 60)) as pilot:
        main = app.main_screen
        assert main is not None
        await wait_until(lambda: app.begun and len(main.panes) == sessions, 30.0)
        received = [ReceivedText(timed=(i == 0)) for i in range(sessions)]
        for live, rec in zip(app.sessions, received, strict=True):
            live.subscribe(rec)
        watched = app.sessions[0]
        main.action_overview()
        await pilot.pause()
        ticker.start()
        await asyncio.sleep(0.3)
        ticker.record(True)
        if profiles is not None:
            profiles.resume()
        cpu0, wall0, wait0 = cpu_seconds(), time.perf_counter(), runqueue_wait_seconds()
        sim0 = simulator_cpu_seconds()
        for live in app.sessions:
            live.start()
        # phase 1: the overview, until half the schedule has passed
        await asyncio.sleep(TTFT_S + seconds / 2)
        overview_ticks = len(ticker.own_lags_ms)
        shown_at = time.perf_counter()
        main.show_session(watched.name)
        pane = main.pane_for(watched)
        assert pane is not None
        probe = DisplayProbe(pane.transcript)
        probe.install()
        view = pane.transcript
        await wait_until(lambda: view.is_on_screen, 10.0, 0.01)
        await wait_until(lambda: not view.has_pending, 30.0, 0.01)
        caught_up = time.perf_counter()
        done = await wait_until(
            lambda: all(r.finished is not None for r in received), seconds * 4 + 60, 0.05
        )
        wall = time.perf_counter() - wall0
        cpu = cpu_seconds() - cpu0
        waited = runqueue_wait_seconds() - wait0
        sim1 = simulator_cpu_seconds()
        sim_cpu = sim1 - sim0 if sim0 is not None and sim1 is not None else float("nan")
        if profiles is not None:
            profiles.pause()
        ticker.record(False)
        await wait_until(lambda: not view.has_pending, 10.0, 0.02)
        await pilot.pause()
        await asyncio.sleep(0.2)
        probe.uninstall()
        await ticker.stop()
        if not done:
            problems.append("not every session finished in time")
        for live, rec in zip(app.sessions, received, strict=True):
            if rec.finished is None or rec.finished.status != "completed":
                why = rec.finished.reason if rec.finished else "no Finished"
                problems.append(f"{live.name}: run ended {why}")
            if rec.deltas != tokens:
                problems.append(f"{live.name}: {rec.deltas:,} text deltas, expected {tokens:,}")
        for live, rec in zip(app.sessions, received, strict=True):
            problems += pane_text_problems(await settle_pane(main, live), rec, live)
        lags, own_lags, missing = probe.lags_ms(after(received[0], caught_up))
    if profiles is not None and profile_dir:
        profiles.write(Path(profile_dir), "live64")
    own = ticker.own_lags_ms
    loop_p99 = percentile(own, 99)
    disp_p99 = percentile(own_lags, 99)
    cores = cpu / wall
    schedule = TTFT_S + seconds
    if missing:
        problems.append(f"{missing:,} deltas of the watched pane never became visible")
    label = f"{sessions}x{TPS} tok/s x {seconds} s"
    result = PartResult("live64")
    result.figures = [
        Figure(
            "live64",
            f"event-loop lag p99 ({label}), own CPU",
            f"<= {LOOP_LAG_BAR_MS:g} ms",
            f"{loop_p99:.1f} ms (p50 {percentile(own, 50):.1f})",
            loop_p99 <= LOOP_LAG_BAR_MS,
            f"{len(own):,} ticks; overview phase p99 {percentile(own[:overview_ticks], 99):.1f}"
            f" ms, pane phase p99 {percentile(own[overview_ticks:], 99):.1f} ms; max "
            f"{max(own, default=0):.1f} ms; wall clock p99 {percentile(ticker.lags_ms, 99):.1f} ms",
        ),
        Figure(
            "live64",
            "display lag p99 (received -> on screen), own CPU",
            f"<= {DISPLAY_LAG_BAR_MS:g} ms",
            f"{disp_p99:.1f} ms (p50 {percentile(own_lags, 50):.1f})",
            disp_p99 <= DISPLAY_LAG_BAR_MS and not missing,
            f"{len(lags):,} deltas received after the pane caught up, {probe.appends:,} "
            f"appends, max {max(own_lags, default=0):.1f} ms; wall clock p99 "
            f"{percentile(lags, 99):.1f} ms",
        ),
        Figure(
            "live64",
            "cores used (app process CPU / wall)",
            f"< {CORES_BAR:g}",
            f"{cores:.2f}",
            cores < CORES_BAR,
            f"{cpu:.1f} CPU s over {wall:.1f} s ({sessions * tokens:,} tokens, "
            f"{cpu / (sessions * tokens) * 1e6:.0f} us per token); over the {schedule:.1f} s "
            f"schedule {cpu / schedule:.2f} cores (a starved process stretches the wall time "
            "and so looks cheaper per second)",
        ),
        Figure(
            "live64",
            "tokens lost (every pane = received text)",
            "0",
            f"{len(problems)} differences",
            not problems,
            "; ".join(problems[:5]),
        ),
        Figure(
            "live64",
            "  the stream took / its schedule",
            "-",
            f"{wall:.1f} / {schedule:.1f} s",
            None,
            f"the pane, shown at {shown_at - wall0:.1f} s, caught up with its buffered text "
            f"in {caught_up - shown_at:.2f} s",
        ),
        Figure(
            "live64",
            "  share of the window the loop waited for a CPU",
            "-",
            f"{waited / wall:.0%}",
            None,
            f"the simulator used {sim_cpu / wall:.0%} of a core; peak RSS {peak_rss_mb():.0f} MB",
        ),
    ]
    result.notes = [
        f"{label}, overview then session pane: loop lag p99 {loop_p99:.1f} ms (own CPU), "
        f"display lag p99 {disp_p99:.1f} ms, {cores:.2f} cores, {len(problems)} differences",
        *problems[:10],
    ]
    return result


def measure(repeat: int = 1) -> PartResult:
    """One run (20 s is long enough to damp the noise)."""
    with simulator() as base_url, tempfile.TemporaryDirectory(prefix="tokentop-bench-") as tmp:
        return asyncio.run(_measure_async(base_url, Path(tmp)))


if __name__ == "__main__":
    part_main("live64", measure)
