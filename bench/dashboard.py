"""Part 3, the dashboard under load: the real app, headless at 200x60, 16 sessions streaming
from the simulator (another process) at 1,000 tokens/s each for 20 s.

What is measured, in the app's own event loop and process:

- **event-loop lag**: a task that sleeps 5 ms in a loop and records how late it wakes up
  (p50 / p99 / max over the streaming window).
- **display lag**, token received -> visible on screen, for the pane on screen (session 0's
  tab; the other 15 panes are hidden tabs that buffer, as designed). The receive time of
  every text delta is taken in the engine consumer (a :class:`~tui.session.SessionListener`
  subscribed to the session, called in the same ``SessionController.handle_events`` as the pane).
  The visible time is when the screen refresh that follows the ``Markdown.append`` carrying
  that character has run (``call_after_refresh`` after the append's mount completed):
  :class:`DisplayProbe` wraps Textual's public ``Markdown.append`` for the answer segments
  of the watched :class:`~tui.ui.widgets.transcript.TranscriptView`. The hook tokentop
  would need for this without wrapping a Textual method: a ``TranscriptView.Flushed``
  message (or callback) carrying the number of answer characters the flush made visible.
- **CPU seconds per 1,000 tokens** (``resource.getrusage`` of the app process, which also
  runs the engine and the store's writer; the simulator runs elsewhere), and the CPU share
  of one core over the streaming window.
- **no token lost**: every session received exactly 20,000 text deltas, and every pane,
  once shown and flushed, holds exactly the text its session received (the sources of the
  Markdown segments joined, the transcript's ``rendered_text``, and the accumulator's
  ``output_text``).

The store is on (a fresh SQLite file), as in the real dashboard.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from bisect import bisect_left
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.await_complete import AwaitComplete
from textual.widgets import Markdown

from bench.common import (
    Figure,
    PartResult,
    cpu_seconds,
    part_main,
    peak_rss_mb,
    percentile,
    runqueue_wait_seconds,
    simulator_cpu_seconds,
)
from tui.config import AppConfig, SessionConfig
from tui.session import SessionController, SessionRun
from tui.stream.events import Api, Finished, RunEvent, TextDelta
from tui.ui.widgets.transcript import TranscriptView

SESSIONS = 16
TPS = 1_000
SECONDS = 20
LOOP_LAG_BAR_MS = 50.0
DISPLAY_LAG_BAR_MS = 150.0
TICK_S = 0.005
PROFILE_ENV = "TOKENTOP_BENCH_PROFILE"
"""Set to a directory to write cProfile stats of the measured window there."""


# -- probes -----------------------------------------------------------------------------------


class LoopLagTicker:
    """Sleeps :data:`TICK_S` in a loop and records how late it wakes (ms): on the wall clock
    (:attr:`lags_ms`) and without the time the loop thread waited for a CPU held by other
    processes (:attr:`own_lags_ms`, see :func:`~bench.common.runqueue_wait_seconds`)."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self.own_lags_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None
        self._recording = False

    def start(self) -> None:
        """Start ticking (recording begins with :meth:`record`)."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    def record(self, on: bool) -> None:
        """Start or stop recording the lag."""
        self._recording = on

    async def _run(self) -> None:
        clock, waited = time.perf_counter, runqueue_wait_seconds
        while True:
            before, wait_before = clock(), waited()
            await asyncio.sleep(TICK_S)
            if self._recording:
                lag = clock() - before - TICK_S
                self.lags_ms.append(max(0.0, lag * 1000.0))
                own = lag - (waited() - wait_before)
                self.own_lags_ms.append(max(0.0, own * 1000.0))

    async def stop(self) -> None:
        """Stop the task."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


@dataclass(slots=True)
class ReceivedText:
    """A SessionListener that records what the engine consumer received for one session: the
    text (to check the panes) and, when ``timed``, the receive time of every delta."""

    timed: bool = False
    parts: list[str] = field(default_factory=list)
    deltas: int = 0
    chars: int = 0
    times: list[float] = field(default_factory=list)
    """perf_counter() when the delta was handled (timed only)."""
    waits: list[float] = field(default_factory=list)
    """runqueue_wait_seconds() then (timed only)."""
    ends: list[int] = field(default_factory=list)
    """Cumulative answer chars after that delta (timed only)."""
    finished: Finished | None = None
    on_delta: Callable[[int, float], None] | None = None

    def run_started(self, live: SessionController, run: SessionRun) -> None:
        """A new run: forget the last one."""
        self.parts.clear()
        self.times.clear()
        self.waits.clear()
        self.ends.clear()
        self.deltas = self.chars = 0
        self.finished = None

    def run_events(
        self, live: SessionController, run: SessionRun, events: Sequence[RunEvent]
    ) -> None:
        """Record the events (O(1) each)."""
        for event in events:
            if type(event) is not TextDelta:
                if type(event) is Finished:
                    self.finished = event
                continue
            text = event.text  # type: ignore[attr-defined]
            if not text:
                continue
            self.parts.append(text)
            self.deltas += 1
            self.chars += len(text)
            if self.timed:
                now = time.perf_counter()
                self.times.append(now)
                self.waits.append(runqueue_wait_seconds())
                self.ends.append(self.chars)
                if self.on_delta is not None:
                    self.on_delta(self.chars, now)

    @property
    def text(self) -> str:
        """Everything received."""
        return "".join(self.parts)


class DisplayProbe:
    """Times when answer characters of one TranscriptView become visible.

    The transcript renders its answer with ``Markdown`` segments (through
    ``Markdown.get_stream``, whose task calls ``Markdown.append``) and, for very long answers,
    a Line-API ``PlainText``. Both ``append`` methods are wrapped class-wide (undone by
    :meth:`uninstall`); after an append into the watched view (for Markdown: once its blocks
    are mounted), ``call_after_refresh`` samples how many answer characters the view's
    widgets hold, once the screen has refreshed. That sample, with its time, is what was
    visible then.
    """

    def __init__(self, view: TranscriptView) -> None:
        self.view = view
        self.visible_times: list[float] = []
        self.visible_waits: list[float] = []
        self.visible_chars: list[int] = []
        self.visible_plain: list[bool] = []
        """Whether the answer was in the plain Line-API view at that sample."""
        self.own_by_mode: dict[str, list[float]] = {"markdown": [], "plain": []}
        self.appends = 0
        self._plain_chars: dict[int, int] = {}
        self._originals: list[tuple[type, Any]] = []
        self._scheduled = False

    def install(self) -> None:
        """Wrap ``Markdown.append`` and ``PlainText.append``."""
        probe = self
        markdown_append = Markdown.append

        def append(widget: Markdown, markdown: str) -> AwaitComplete:
            awaitable = markdown_append(widget, markdown)
            if not probe._in_view(widget):
                return awaitable

            async def appended() -> None:
                await awaitable
                probe._schedule()

            probe.appends += 1
            return AwaitComplete(appended())

        self._originals.append((Markdown, markdown_append))
        Markdown.append = append  # type: ignore[method-assign]
        try:
            from tui.ui.widgets.plain_text import PlainText
        except ImportError:  # an older transcript without the plain view
            return
        plain_append = PlainText.append

        def plain(widget: PlainText, text: str) -> None:
            plain_append(widget, text)
            # counted for every PlainText: the first append happens before it is mounted
            probe._plain_chars[id(widget)] = probe._plain_chars.get(id(widget), 0) + len(text)
            probe.appends += 1
            probe._schedule()

        self._originals.append((PlainText, plain_append))
        PlainText.append = plain  # type: ignore[method-assign]

    def uninstall(self) -> None:
        """Put the wrapped methods back."""
        for cls, original in self._originals:
            cls.append = original  # type: ignore[attr-defined]
        self._originals.clear()

    def _in_view(self, widget: Any) -> bool:
        answer = widget.parent
        return answer is not None and answer.id == "answer" and answer.parent is self.view

    def _schedule(self) -> None:
        if not self._scheduled and self.view.is_attached:
            self._scheduled = True
            self.view.app.call_after_refresh(self._sample)

    def shown_chars(self) -> tuple[int, bool]:
        """Answer characters the view's widgets hold now, and whether any of them is the
        plain (non-Markdown) view."""
        total = 0
        plain = False
        answer = self.view.query_one("#answer")
        for child in answer.children:
            if isinstance(child, Markdown):
                total += len(child.source)
            else:
                total += self._plain_chars.get(id(child), 0)
                plain = True
        return total, plain

    def _sample(self) -> None:
        self._scheduled = False
        chars, plain = self.shown_chars()
        self.visible_plain.append(plain)
        if self.visible_chars and chars < self.visible_chars[-1]:
            chars = self.visible_chars[-1]  # a reset never happens mid-run here
        self.visible_times.append(time.perf_counter())
        self.visible_waits.append(runqueue_wait_seconds())
        self.visible_chars.append(chars)

    def lags_ms(self, received: ReceivedText) -> tuple[list[float], list[float], int]:
        """Display lag of every timed delta (ms) on the wall clock and without the time the
        loop thread waited for a CPU, and how many deltas never became visible."""
        lags: list[float] = []
        own: list[float] = []
        missing = 0
        # visible_chars is non-decreasing (appends are ordered, refresh callbacks FIFO)
        chars, times, waits = self.visible_chars, self.visible_times, self.visible_waits
        for end, t, w in zip(received.ends, received.times, received.waits, strict=True):
            i = bisect_left(chars, end)
            if i == len(chars):
                missing += 1
                continue
            lag = times[i] - t
            lags.append(max(0.0, lag * 1000.0))
            own.append(max(0.0, (lag - (waits[i] - w)) * 1000.0))
            mode = "plain" if self.visible_plain[i] else "markdown"
            self.own_by_mode[mode].append(own[-1])
        return lags, own, missing


def start_profile() -> Any:
    """A running cProfile when ``TOKENTOP_BENCH_PROFILE`` names a directory, else None."""
    import os

    if not os.environ.get(PROFILE_ENV):
        return None
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def stop_profile(profiler: Any, name: str) -> None:
    """Stop ``profiler`` and write ``<dir>/<name>.prof`` and a text summary."""
    if profiler is None:
        return
    import os
    import pstats

    profiler.disable()
    out = Path(os.environ[PROFILE_ENV])
    out.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(out / f"{name}.prof")
    with (out / f"{name}.txt").open("w") as f:
        stats = pstats.Stats(profiler, stream=f)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(60)


async def paced_baseline(config: AppConfig, mode: str) -> tuple[float, int]:
    """CPU seconds and text deltas for the same sessions read without the app: ``engine``
    (StreamRun + RunAccumulator, as ``tokentop run --no-store`` does) or ``raw`` (httpx
    ``aiter_bytes`` only; deltas counted from the simulator's token count)."""
    import httpx
    import msgspec

    from tui.stream.accumulate import RunAccumulator
    from tui.stream.chat import build_chat_body
    from tui.stream.responses import build_responses_body
    from tui.stream.runner import StreamRun

    async def engine(client: httpx.AsyncClient, session: SessionConfig) -> int:
        run = StreamRun(session, client=client, base_url=session.base_url)
        acc = RunAccumulator("b", session.name, session.api, session.model, session.prompt)
        deltas = 0
        async for event in run:
            acc.apply(event)
            if type(event) is TextDelta:
                deltas += 1
        return deltas

    async def raw(client: httpx.AsyncClient, session: SessionConfig) -> int:
        build = build_chat_body if session.api == "chat" else build_responses_body
        path = "/chat/completions" if session.api == "chat" else "/responses"
        headers = {"Content-Type": "application/json", **session.headers}
        body = msgspec.json.encode(build(session, session.prompt))
        async with client.stream(
            "POST", session.base_url + path, content=body, headers=headers
        ) as response:
            async for _chunk in response.aiter_bytes():
                pass
        return int(session.headers["X-Sim-Timing"].rsplit("tokens=", 1)[1])

    if mode == "aiohttp":  # informational: a client with a C HTTP parser, if installed
        import aiohttp

        async def aio(http: aiohttp.ClientSession, session: SessionConfig) -> int:
            build = build_chat_body if session.api == "chat" else build_responses_body
            path = "/chat/completions" if session.api == "chat" else "/responses"
            headers = {"Content-Type": "application/json", **session.headers}
            body = msgspec.json.encode(build(session, session.prompt))
            async with http.post(session.base_url + path, data=body, headers=headers) as resp:
                async for _chunk in resp.content.iter_any():
                    pass
            return int(session.headers["X-Sim-Timing"].rsplit("tokens=", 1)[1])

        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            cpu0 = cpu_seconds()
            counts = await asyncio.gather(*(aio(http, s) for s in config.sessions))
            return cpu_seconds() - cpu0, sum(counts)
    read = raw if mode == "raw" else engine
    limits = httpx.Limits(max_connections=None)
    transport = None
    if mode == "engine-aiohttp":  # informational: httpx with the httpx-aiohttp transport
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport()
    async with httpx.AsyncClient(timeout=None, limits=limits, transport=transport) as client:
        cpu0 = cpu_seconds()
        counts = await asyncio.gather(*(read(client, s) for s in config.sessions))
        return cpu_seconds() - cpu0, sum(counts)


# -- the run ----------------------------------------------------------------------------------


def load_config(base_url: str, sessions: int, timing: str, db_hint: str = "") -> AppConfig:
    """``sessions`` sessions on the simulator at ``base_url`` (chat and responses alternate)."""
    apis: tuple[Api, Api] = ("chat", "responses")
    return AppConfig(
        path=None,
        sessions=tuple(
            SessionConfig(
                name=f"s{i:02d} {apis[i % 2]}",
                model="sim",
                prompt=f"Session {i}: write a long and detailed answer. {db_hint}",
                base_url=base_url,
                api=apis[i % 2],
                headers={"X-Sim-Timing": timing},
            )
            for i in range(sessions)
        ),
    )


async def wait_until(check: Callable[[], bool], limit_s: float, step: float = 0.05) -> bool:
    """Poll ``check`` until true or ``limit_s`` seconds passed."""
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True


async def settle_pane(main: Any, live: SessionController, limit_s: float = 60.0) -> TranscriptView:
    """Show ``live``'s tab and wait until its transcript rendered everything (incl. the
    final full render)."""
    main.show_session(live.name)
    pane = main.pane_for(live)
    view: TranscriptView = pane.transcript
    await wait_until(lambda: view.is_on_screen, 10.0, 0.01)
    await wait_until(lambda: not view.has_pending, limit_s, 0.02)
    await view.flush()
    return view


def pane_text_problems(
    view: TranscriptView, received: ReceivedText, live: SessionController
) -> list[str]:
    """Differences between what a pane holds and what its session received."""
    problems: list[str] = []
    want = received.text
    shown = "".join(md.source for md in view.query("#answer > Markdown").results(Markdown))
    if not shown:  # the plain Line-API view of a very long answer
        shown = view.rendered_text
    run = live.current
    acc_text = run.accumulator.output_text if run is not None else ""
    if shown != want:
        problems.append(f"{live.name}: Markdown holds {len(shown):,} chars, received {len(want):,}")
    if view.rendered_text != want:
        problems.append(f"{live.name}: rendered_text differs from the received text")
    if acc_text != want:
        problems.append(f"{live.name}: accumulator text differs from the received text")
    return problems


async def _measure_async(
    base_url: str, seconds: int, workdir: Path, sessions: int = SESSIONS
) -> PartResult:
    from tui.ui.app import TokentopApp

    tokens = TPS * seconds
    timing = f"ttft=0.2,tps={TPS},tokens={tokens}"
    config = load_config(base_url, sessions, timing)
    # as `tokentop` runs it (run_dashboard): the startup heap frozen out of the collector
    app = TokentopApp(config, db_path=workdir / "bench.sqlite", autostart=False, freeze_gc=True)
    result = PartResult("dashboard")
    # the same load without the app (same process, before it starts): what the app adds
    base_seconds = max(5, seconds // 2)
    base_config = load_config(
        base_url, sessions, f"ttft=0.2,tps={TPS},tokens={TPS * base_seconds}", "baseline"
    )
    raw_cpu, raw_tokens = await paced_baseline(base_config, "raw")
    engine_cpu, engine_tokens = await paced_baseline(base_config, "engine")
    raw_per_k = raw_cpu / (raw_tokens / 1000)
    try:
        aio_cpu, aio_tokens = await paced_baseline(base_config, "aiohttp")
        aio_note = f"; aiohttp (C parser) reads it at {aio_cpu / (aio_tokens / 1000) * 1000:.1f} ms"
    except ImportError:
        aio_note = ""
    try:
        eng_aio_cpu, eng_aio_tokens = await paced_baseline(base_config, "engine-aiohttp")
        aio_note += (
            f"; the engine on httpx with the httpx-aiohttp transport "
            f"{eng_aio_cpu / (eng_aio_tokens / 1000) * 1000:.1f} ms"
        )
    except ImportError:
        pass
    engine_per_k = engine_cpu / (engine_tokens / 1000)
    ticker = LoopLagTicker()
    async with app.run_test(headless=True, size=(200, 60)) as pilot:
        main = app.main_screen
        assert main is not None
        await wait_until(lambda: app.begun and len(main.panes) == sessions, 10.0)
        received = [ReceivedText(timed=(i == 0)) for i in range(sessions)]
        for live, rec in zip(app.sessions, received, strict=True):
            live.subscribe(rec)
        watched = app.sessions[0]
        main.show_session(watched.name)
        await pilot.pause()
        watched_pane = main.pane_for(watched)
        assert watched_pane is not None
        probe = DisplayProbe(watched_pane.transcript)
        probe.install()
        ticker.start()
        await asyncio.sleep(0.3)  # let the tab switch settle before recording
        ticker.record(True)
        profiler = start_profile()
        cpu0, wall0, wait0 = cpu_seconds(), time.perf_counter(), runqueue_wait_seconds()
        sim0 = simulator_cpu_seconds()
        for live in app.sessions:
            live.start()
        done = await wait_until(
            lambda: all(r.finished is not None for r in received), seconds * 3 + 30, 0.05
        )
        wall = time.perf_counter() - wall0
        cpu = cpu_seconds() - cpu0
        waited = runqueue_wait_seconds() - wait0
        sim1 = simulator_cpu_seconds()
        sim_cpu = sim1 - sim0 if sim0 is not None and sim1 is not None else float("nan")
        stop_profile(profiler, "dashboard")
        ticker.record(False)
        # let the watched pane's last flush become visible, then stop probing
        await wait_until(lambda: not watched_pane.transcript.has_pending, 10.0, 0.02)
        await pilot.pause()
        await asyncio.sleep(0.2)
        probe.uninstall()
        await ticker.stop()
        problems: list[str] = []
        if not done:
            problems.append("not every session finished in time")
        for live, rec in zip(app.sessions, received, strict=True):
            if rec.finished is None or rec.finished.status != "completed":
                why = rec.finished.reason if rec.finished else "no Finished"
                problems.append(f"{live.name}: run ended {why}")
            if rec.deltas != tokens:
                problems.append(f"{live.name}: {rec.deltas:,} text deltas, expected {tokens:,}")
        catch_up: list[float] = []
        for live, rec in zip(app.sessions, received, strict=True):
            shown = time.perf_counter()
            view = await settle_pane(main, live)
            catch_up.append(time.perf_counter() - shown)
            problems += pane_text_problems(view, rec, live)
        total_tokens = sum(r.deltas for r in received)
        lags, own_lags, missing = probe.lags_ms(received[0])
    loop_p50 = percentile(ticker.lags_ms, 50)
    loop_p99 = percentile(ticker.lags_ms, 99)
    own_loop_p50 = percentile(ticker.own_lags_ms, 50)
    own_loop_p99 = percentile(ticker.own_lags_ms, 99)
    disp_p50 = percentile(lags, 50)
    disp_p99 = percentile(lags, 99)
    own_disp_p50 = percentile(own_lags, 50)
    own_disp_p99 = percentile(own_lags, 99)
    cpu_per_k = cpu / (total_tokens / 1000) if total_tokens else float("nan")
    if missing:
        problems.append(f"{missing:,} deltas of the watched pane never became visible")
    lost_ok = not problems
    result.figures = [
        Figure(
            "dashboard",
            f"event-loop lag p99 ({sessions}x{TPS} tok/s), own CPU",
            f"<= {LOOP_LAG_BAR_MS:g} ms",
            f"{own_loop_p99:.1f} ms (p50 {own_loop_p50:.1f})",
            own_loop_p99 <= LOOP_LAG_BAR_MS,
            f"{len(ticker.lags_ms):,} ticks, max {max(ticker.own_lags_ms, default=0):.1f} ms "
            "(wall-clock lateness minus the time the loop thread waited for a CPU)",
        ),
        Figure(
            "dashboard",
            "display lag p99 (received -> on screen), own CPU",
            f"<= {DISPLAY_LAG_BAR_MS:g} ms",
            f"{own_disp_p99:.1f} ms (p50 {own_disp_p50:.1f})",
            own_disp_p99 <= DISPLAY_LAG_BAR_MS and not missing,
            f"{len(lags):,} deltas, {probe.appends:,} appends, "
            f"max {max(own_lags, default=0):.1f} ms; p99 while the answer was Markdown "
            f"{percentile(probe.own_by_mode['markdown'], 99):.0f} ms "
            f"({len(probe.own_by_mode['markdown']):,} deltas), after the switch to the plain "
            f"view {percentile(probe.own_by_mode['plain'], 99):.0f} ms "
            f"({len(probe.own_by_mode['plain']):,} deltas)",
        ),
        Figure(
            "dashboard",
            "  the same two on the wall clock (loop / display)",
            "-",
            f"{loop_p99:.0f} / {disp_p99:.0f} ms",
            None,
            f"loop p50 {loop_p50:.1f} ms, display p50 {disp_p50:.1f} ms; the loop thread "
            f"waited {waited:.1f} s of {wall:.1f} s for a CPU held by other processes",
        ),
        Figure(
            "dashboard",
            "  share of the window the loop waited for a CPU",
            "-",
            f"{waited / wall:.0%}",
            None,
            "runqueue wait of the loop thread (/proc/thread-self/schedstat); the simulator "
            f"process itself used {sim_cpu / wall:.0%} of a core meanwhile",
        ),
        Figure(
            "dashboard",
            "no token lost (every pane = received text)",
            "0 differences",
            f"{len(problems)} differences",
            lost_ok,
            "; ".join(problems[:5]),
        ),
        Figure(
            "dashboard",
            "hidden tab shown after the run: fully rendered in",
            "-",
            f"{max(catch_up[1:], default=0):.2f} s max",
            None,
            f"median {percentile(catch_up[1:], 50):.2f} s for {tokens:,} buffered tokens",
        ),
        Figure(
            "dashboard",
            "CPU per 1,000 tokens -> cores this load needs",
            "-",
            f"{cpu_per_k * 1000:.1f} ms -> "
            + ("at least " if cpu / wall >= 0.9 else "")
            + f"{cpu_per_k * sessions * TPS / 1000:.2f} cores",
            None,
            f"{cpu:.1f} CPU s over {wall:.1f} s wall for {total_tokens:,} tokens"
            + (
                " (saturated: the loop was busy all the time, rendering coalesced into fewer "
                "flushes, so the true need is higher)"
                if cpu / wall >= 0.9
                else ""
            ),
        ),
    ]
    result.figures.append(
        Figure(
            "dashboard",
            "  same load without the app: raw httpx / engine / app (CPU per 1k tokens)",
            "-",
            f"{raw_per_k * 1000:.0f} / {engine_per_k * 1000:.0f} / {cpu_per_k * 1000:.0f} ms",
            None,
            f"{engine_per_k / cpu_per_k:.0%} of the app's CPU is the engine alone, "
            f"{raw_per_k / cpu_per_k:.0%} the raw httpx reads ({base_seconds} s runs)",
        )
    )
    result.notes = [
        f"the same {sessions} x {TPS} tok/s without the app: raw httpx reads "
        f"{raw_per_k * 1000:.1f} ms CPU per 1,000 tokens, the engine (StreamRun + "
        f"RunAccumulator) {engine_per_k * 1000:.1f} ms, the app {cpu_per_k * 1000:.1f} ms"
        f"{aio_note}",
        f"{sessions} sessions x {TPS} tok/s x {seconds} s: {total_tokens:,} tokens in "
        f"{wall:.1f} s; CPU {cpu:.1f} s ({cpu_per_k * 1000:.1f} ms per 1,000 tokens, "
        f"{cpu / wall:.0%} of one core); loop lag p50 {loop_p50:.1f} / p99 {loop_p99:.1f} / "
        f"max {max(ticker.lags_ms, default=0):.1f} ms on the wall clock, p50 {own_loop_p50:.1f}"
        f" / p99 {own_loop_p99:.1f} ms without CPU waits; display lag p50 {disp_p50:.1f} / "
        f"p99 {disp_p99:.1f} / max {max(lags, default=0):.1f} ms on the wall clock, p50 "
        f"{own_disp_p50:.1f} / p99 {own_disp_p99:.1f} ms without CPU waits, over "
        f"{len(lags):,} deltas of the visible pane; peak RSS {peak_rss_mb():.0f} MB; the "
        f"simulator used {sim_cpu:.1f} CPU s ({sim_cpu / wall:.0%} of a core); the loop "
        f"thread waited "
        f"{waited:.1f} s ({waited / wall:.0%} of the window) for a CPU taken by other "
        f"processes; showing a hidden tab after the run took "
        f"{percentile(catch_up[1:], 50):.2f} s "
        f"(median) / {max(catch_up[1:], default=0):.2f} s (max) to render its "
        f"{tokens:,} buffered tokens",
        *problems[:10],
    ]
    return result


def run_with_simulator(
    body: Callable[[str, Path], Coroutine[Any, Any, PartResult]],
) -> PartResult:
    """Run ``body(base_url, workdir)`` with a simulator process and a temp directory."""
    from bench.common import simulator

    with simulator() as base_url, tempfile.TemporaryDirectory(prefix="tokentop-bench-") as tmp:
        return asyncio.run(body(base_url, Path(tmp)))


def measure(repeat: int = 1, seconds: int = SECONDS, sessions: int = SESSIONS) -> PartResult:
    """Run the dashboard part once (a 20 s run is long enough to damp the noise)."""
    return run_with_simulator(lambda url, tmp: _measure_async(url, seconds, tmp, sessions))


if __name__ == "__main__":
    part_main("dashboard", lambda repeat: measure(repeat))
