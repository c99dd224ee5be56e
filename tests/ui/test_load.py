"""Load: 16 simulated sessions stream at once; every pane ends with exactly the engine's text,
and the event loop and the visible pane stay responsive while they stream."""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import time
from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from tests.ui.conftest import app_config, settle, sim_session, wait_until
from tui.stream.events import Finished, TextDelta
from tui.ui.app import TokentopApp
from tui.ui.screens.main import MainScreen
from tui.ui.widgets.plain_text import wrap_line
from tui.ui.widgets.session_pane import SessionPane
from tui.ui.widgets.transcript import TranscriptView

SESSIONS = 16


class LoopLagProbe:
    """Measures how late a 10 ms sleep wakes up: the event loop's responsiveness."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.lags.append(time.perf_counter() - before - self.interval)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def p99(self) -> float:
        return statistics.quantiles(self.lags, n=100)[98] if len(self.lags) > 2 else 0.0


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 2 else max(values, default=0)


@pytest.mark.timeout(180)  # a loaded 2-core machine renders 16 panes' text slowly
async def test_sixteen_sessions_stream_at_once_and_no_token_is_lost(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], tmp_path: Path
) -> None:
    timing = "ttft=0.05,tps=400,tokens=400,jitter=0.2"
    sessions = [
        sim_session(
            sim_url,
            f"load-{i:02d}",
            api="chat" if i % 2 else "responses",
            timing=timing,
            key=sim_key,
            prompt=f"Load test prompt number {i}.",
        )
        for i in range(SESSIONS)
    ]
    app = TokentopApp(
        app_config(*sessions),
        db_path=tmp_path / "load.db",
        theme_dirs=theme_dirs,
        freeze_gc=True,
        autostart=False,
    )
    try:
        await _run_load(app, pilot_size=(160, 50))
    finally:
        gc.unfreeze()  # the test's app is garbage now; let the collector have it


async def _run_load(app: TokentopApp, *, pilot_size: tuple[int, int]) -> None:
    async with app.run_test(size=pilot_size) as pilot:
        await wait_until(pilot, lambda: app.main_screen is not None and bool(app.sessions))
        main = app.main_screen
        assert isinstance(main, MainScreen)
        main.show_session("load-00")  # one visible pane renders live; the others buffer
        await pilot.pause(0.2)
        probe = LoopLagProbe()
        probe.start()
        for live in app.sessions:
            live.start()
        await wait_until(pilot, lambda: all(s.state == "done" for s in app.sessions), within=120)
        probe.stop()
        # Every pane received exactly the engine's text; the hidden ones render it once shown
        # (a few of them, both APIs, first and last: showing one renders its whole answer,
        # seconds each on a loaded machine).
        for index, live in enumerate(app.sessions):
            pane = main.query_one(f"#pane-{index}", SessionPane)
            assert live.current is not None
            assert pane.transcript.text == live.current.accumulator.output_text, live.name
        for index in (0, 1, SESSIONS // 2, SESSIONS - 1):
            live = app.sessions[index]
            main.show_session(live.name)
            pane = main.query_one(f"#pane-{index}", SessionPane)
            await wait_until(pilot, lambda: not pane.transcript.has_pending, what="flush")  # noqa: B023
            await settle(pilot)
            assert live.current is not None
            expected = live.current.accumulator.output_text
            assert len(expected) > 1000
            assert pane.transcript.text == expected, live.name
            assert pane.transcript.rendered_text == expected, live.name
        # ... and the store holds the same text for every run.
        assert app.store is not None
        runs = await app.store.list_runs(limit=100)
        assert len(runs) == SESSIONS
        by_id = {r.run_id: r for r in runs}
        for live in app.sessions:
            assert live.current is not None
            detail = await app.store.get_run(live.current.run_id)
            assert detail.output_text == live.current.accumulator.output_text
            assert by_id[live.current.run_id].status == "completed"

        first_pane = main.query_one("#pane-0", SessionPane)
        display_lags = list(first_pane.transcript.display_lags)
        loop_p99 = probe.p99()
        display_p99 = _p99(display_lags[:-1])  # the last entry may be the re-show above
        print(
            f"\nloop lag p99 {loop_p99 * 1000:.1f} ms over {len(probe.lags)} samples; "
            f"display lag p99 {display_p99 * 1000:.1f} ms over {len(display_lags)} flushes"
        )
        # The targets, 50 ms (loop) and 150 ms (display), are the bench's to measure
        # (`python -m bench dashboard`) on an idle machine; here, on a loaded 2-core CI box
        # where the simulator shares this process, the bounds only catch a view that blocks
        # the loop or falls seconds behind.
        assert loop_p99 < 2.0
        assert display_p99 < 4.0


class _TranscriptApp(App[None]):
    def compose(self) -> ComposeResult:
        yield TranscriptView()


def _token(i: int, rng: random.Random) -> str:
    if i % 97 == 0:
        return "\n\n"
    if i % 1499 == 0:
        return "\n\n```python\nprint('fenced')\n```\n\n"
    return rng.choice(WORDS) + " "


WORDS = (
    *("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog"),
    *("while", "流", "式", "tokens", "keep", "arriving"),
)


async def test_a_very_long_answer_stays_linear_and_exact() -> None:
    rng = random.Random(5)
    app = _TranscriptApp()
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(TranscriptView)
        flush_times: list[float] = []
        tokens, per_flush = 60_000, 300
        for start in range(0, tokens, per_flush):
            for i in range(start, start + per_flush):
                view.apply(TextDelta(0.0, _token(i, rng)))
            began = time.perf_counter()
            await view.flush()
            await pilot.pause(0)  # one frame, as the timer-driven flush would get
            flush_times.append(time.perf_counter() - began)
        view.apply(Finished(1.0, "completed", "stop", "stop"))
        await view.flush()
        await pilot.pause()
        assert view.plain_mode  # switched to the Line-API view on the way
        assert view.rendered_text == view.text
        assert len(view.text) > 250_000
        n = len(flush_times)
        early = statistics.median(flush_times[n // 10 : n // 5])
        late = statistics.median(flush_times[-n // 10 :])
        print(f"\nflush median early {early * 1000:.1f} ms, late {late * 1000:.1f} ms")
        # The text grows ~6x between the two windows: quadratic work would show as ~6x.
        assert late < early * 3 + 0.005


def test_wrap_line_respects_cell_widths_and_long_words() -> None:
    assert wrap_line("hello world again", 11) == ["hello world", "again"]
    assert wrap_line("流式流式流式", 4) == ["流式", "流式", "流式"]
    assert wrap_line("a " + "x" * 12, 5) == ["a", "xxxxx", "xxxxx", "xx"]
    assert wrap_line("", 10) == [""]
    for row in wrap_line("word " * 50, 17):
        assert len(row) <= 17
