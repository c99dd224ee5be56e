"""Part 4, long answers: one run of 200,000 tokens into one pane of the real app (headless,
200x60, store on), streamed by the simulator (another process) at a fixed rate.

Is rendering linear? The cost of a stretch of the answer is the process CPU time (engine,
store and UI together; ``resource.getrusage``) spent between the moment its first token and
its last token became *visible* (the same probe as the dashboard part: the screen refresh
after the ``Markdown.append`` that carries the character). Windows are delimited by what is
on screen, not by what was received, so a renderer that falls behind pays for it in the
window it falls behind in. The tokens arrive at a constant rate, so the engine's share is
the same in every window, and any growth comes from rendering. Bar: the last 10% of the
answer costs at most 2x the first 10% per 1,000 tokens; peak RSS below 400 MB.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from pathlib import Path

from bench.common import (
    Figure,
    PartResult,
    cpu_seconds,
    fmt_ratio,
    part_main,
    peak_rss_mb,
    runqueue_wait_seconds,
)
from bench.dashboard import (
    DisplayProbe,
    ReceivedText,
    load_config,
    pane_text_problems,
    run_with_simulator,
    settle_pane,
    start_profile,
    stop_profile,
    wait_until,
)

TOKENS = 200_000
TPS = 5_000
COST_BAR = 2.0
RSS_BAR_MB = 400.0
WINDOW = 0.10


class CpuSampler:
    """Samples (perf_counter, CPU seconds) every ``step`` seconds."""

    def __init__(self, step: float = 0.01) -> None:
        self.step = step
        self.times: list[float] = []
        self.cpu: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sampling."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.times.append(time.perf_counter())
            self.cpu.append(cpu_seconds())
            await asyncio.sleep(self.step)

    async def stop(self) -> None:
        """Stop sampling (one last sample)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.times.append(time.perf_counter())
        self.cpu.append(cpu_seconds())

    def at(self, t: float) -> float:
        """CPU seconds at time ``t`` (the first sample at or after it)."""
        i = min(bisect_left(self.times, t), len(self.times) - 1)
        return self.cpu[i]


def visible_at(probe: DisplayProbe, chars: int) -> float | None:
    """When the first ``chars`` answer characters were on screen (None: never)."""
    i = bisect_left(probe.visible_chars, chars)
    return probe.visible_times[i] if i < len(probe.visible_times) else None


async def _measure_async(base_url: str, workdir: Path, tokens: int, tps: int) -> PartResult:
    from tui.ui.app import TokentopApp

    timing = f"ttft=0.2,tps={tps},tokens={tokens}"
    config = load_config(base_url, 1, timing)
    app = TokentopApp(config, db_path=workdir / "long.sqlite", autostart=False, freeze_gc=True)
    result = PartResult("long")
    sampler = CpuSampler()
    received = ReceivedText(timed=True)
    char_at_token: list[int] = []
    async with app.run_test(headless=True, size=(200, 60)) as pilot:
        main = app.main_screen
        assert main is not None
        await wait_until(lambda: app.begun and len(main.panes) == 1, 10.0)
        live = app.sessions[0]
        live.subscribe(received)
        main.show_session(live.name)
        await pilot.pause()
        pane = main.pane_for(live)
        assert pane is not None
        view = pane.transcript
        probe = DisplayProbe(view)
        probe.install()
        await asyncio.sleep(0.3)
        sampler.start()
        profiler = start_profile()
        wall0, wait0 = time.perf_counter(), runqueue_wait_seconds()
        live.start()
        limit = tokens / tps * 6 + 60
        done = await wait_until(lambda: received.finished is not None, limit, 0.1)
        stream_s = time.perf_counter() - wall0
        caught_up = await wait_until(
            lambda: bool(probe.visible_chars) and probe.visible_chars[-1] >= received.chars,
            limit,
            0.05,
        )
        wall = time.perf_counter() - wall0
        waited = runqueue_wait_seconds() - wait0
        stop_profile(profiler, "long")
        await sampler.stop()
        probe.uninstall()
        char_at_token = received.ends
        problems: list[str] = []
        if not done or not caught_up:
            problems.append("the run did not finish or never fully rendered in time")
        if received.deltas != tokens:
            problems.append(f"{received.deltas:,} text deltas, expected {tokens:,}")
        view = await settle_pane(main, live)
        problems += pane_text_problems(view, received, live)
        rss = peak_rss_mb()
    n = len(char_at_token)
    k = max(1, int(n * WINDOW))
    costs: list[float] = []
    for first, last in ((0, k - 1), (n - k, n - 1)):
        start_chars = char_at_token[first - 1] if first > 0 else 1
        t_a = visible_at(probe, start_chars)
        t_b = visible_at(probe, char_at_token[last])
        if t_a is None or t_b is None:
            costs.append(float("nan"))
            continue
        costs.append((sampler.at(t_b) - sampler.at(t_a)) / (k / 1000))
    first_cost, last_cost = costs
    ratio = last_cost / first_cost if first_cost > 0 else float("nan")
    result.figures = [
        Figure(
            "long",
            f"cost per 1k tokens, last 10% / first 10% ({tokens // 1000}k tokens)",
            f"<= {COST_BAR:g}x",
            fmt_ratio(ratio),
            ratio <= COST_BAR and not problems,
            f"first {first_cost * 1000:.0f} ms, last {last_cost * 1000:.0f} ms CPU per 1k tokens",
        ),
        Figure(
            "long",
            "peak RSS",
            f"< {RSS_BAR_MB:g} MB",
            f"{rss:.0f} MB",
            rss < RSS_BAR_MB,
            "ru_maxrss of the app process",
        ),
    ]
    result.notes = [
        f"{tokens:,} tokens at {tps:,} tok/s ({received.chars:,} chars): stream ended after "
        f"{stream_s:.1f} s, on screen after {wall:.1f} s; CPU per 1,000 tokens "
        f"{first_cost * 1000:.0f} ms (first 10%) -> {last_cost * 1000:.0f} ms (last 10%); "
        f"{probe.appends:,} appends; the loop thread waited {waited:.1f} s for a CPU; "
        f"peak RSS {rss:.0f} MB",
        *problems[:10],
    ]
    return result


def measure(repeat: int = 1, tokens: int = TOKENS, tps: int = TPS) -> PartResult:
    """Run the long-answer part once."""
    return run_with_simulator(lambda url, tmp: _measure_async(url, tmp, tokens, tps))


if __name__ == "__main__":
    part_main("long_answer", lambda repeat: measure(repeat))
