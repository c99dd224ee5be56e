"""HistoryScreen and ReplayScreen over a real SQLite store seeded with simulator runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from textual.app import App
from textual.command import CommandList, CommandPalette
from textual.widgets import DataTable, Input, Select

from tui.config import SessionConfig
from tui.store import Store
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import TextDelta, new_run_id
from tui.stream.runner import StreamRun
from tui.ui.screens.history import HistoryScreen
from tui.ui.screens.replay import ReplayScreen
from tui.ui.widgets.badges import FinishBadge
from tui.ui.widgets.metrics_bar import MetricsBar
from tui.ui.widgets.transcript import TranscriptView

# -- a real store with real runs -----------------------------------------------------------


def sim_session(name: str, model: str, *, tokens: int = 60, tps: int = 300) -> SessionConfig:
    """A simulated session with fixed timing."""
    return SessionConfig(
        name=name,
        model=model,
        prompt="",
        base_url="sim",
        headers={"X-Sim-Timing": f"ttft=0.08,tps={tps},jitter=0.2,tokens={tokens},seed=3"},
    )


@dataclass
class Recorded:
    """A run written to the store, with the accumulator that saw it live."""

    run_id: str
    session: SessionConfig
    prompt: str
    accumulator: RunAccumulator


async def record(store: Store, sim_url: str, session: SessionConfig, prompt: str) -> Recorded:
    """Stream one run from the simulator into the store, as the dashboard does."""
    run_id = new_run_id()
    await store.start_run(session, prompt=prompt, run_id=run_id)
    acc = RunAccumulator(run_id, session.name, session.api, session.model, prompt)
    async with httpx.AsyncClient(timeout=30) as client:
        async for event in StreamRun(session, client=client, base_url=sim_url, prompt=prompt):
            acc.apply(event)
            store.add_event(run_id, event)
    await store.flush()
    return Recorded(run_id, session, prompt, acc)


@dataclass
class Seeded:
    """A store with three runs: two sessions, two models, one content_filter finish."""

    store: Store
    runs: list[Recorded]


@pytest.fixture
async def seeded(sim_url: str, tmp_path: Path) -> AsyncIterator[Seeded]:
    store = await Store.open(tmp_path / "runs.db")
    runs = [
        await record(store, sim_url, sim_session("writer", "sim-fast"), "zebra migration facts"),
        await record(store, sim_url, sim_session("critic", "sim"), "penguin diving depth"),
        await record(store, sim_url, sim_session("writer", "sim-filter"), "blocked topic"),
    ]
    try:
        yield Seeded(store, runs)
    finally:
        await store.close()


class ScreenApp(App[None]):
    """Opens one screen built by ``make`` (the dashboard's hooks do the same)."""

    def __init__(self, make: Callable[[], HistoryScreen | ReplayScreen]) -> None:
        super().__init__()
        self.make = make

    def on_mount(self) -> None:
        self.push_screen(self.make())


async def wait_for(
    predicate: Callable[[], bool], pilot_pause: Callable[[], Awaitable[None]]
) -> None:
    """Poll ``predicate`` between pilot pauses (up to 20 s)."""
    for _ in range(400):
        if predicate():
            return
        await pilot_pause()
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


# -- history ----------------------------------------------------------------------------------


def table_sessions(screen: HistoryScreen) -> list[str]:
    return [run.session for run in screen.runs]


async def test_history_lists_searches_filters(seeded: Seeded) -> None:
    app = ScreenApp(lambda: HistoryScreen(seeded.store))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        await wait_for(lambda: screen.loads >= 1, pilot.pause)
        table = screen.query_one(DataTable)
        assert table.row_count == 3
        # Newest first.
        assert [r.run_id for r in screen.runs] == [r.run_id for r in reversed(seeded.runs)]
        assert screen.error is None and not screen.has_class("-empty")

        # Full-text search over prompts (typing is debounced).
        loads = screen.loads
        await pilot.press("slash")
        await pilot.press(*"penguin")
        await wait_for(lambda: screen.loads > loads and table.row_count == 1, pilot.pause)
        assert screen.runs[0].run_id == seeded.runs[1].run_id

        # Filters: session, then finish reason (search cleared first).
        await pilot.press("ctrl+l")
        await wait_for(lambda: table.row_count == 3, pilot.pause)
        screen.query_one("#filter-session", Select).value = "writer"
        await wait_for(lambda: table_sessions(screen) == ["writer", "writer"], pilot.pause)
        screen.query_one("#filter-finish", Select).value = "content_filter"
        await wait_for(lambda: table.row_count == 1, pilot.pause)
        assert screen.runs[0].run_id == seeded.runs[2].run_id
        assert screen.runs[0].finish_reason == "content_filter"

        # The model filter offers the models in the store (an unknown value would raise).
        await pilot.press("ctrl+l")
        await wait_for(lambda: table.row_count == 3, pilot.pause)
        model_filter = screen.query_one("#filter-model", Select)
        model_filter.value = "sim"
        await wait_for(lambda: table.row_count == 1, pilot.pause)
        assert screen.runs[0].run_id == seeded.runs[1].run_id

        # A search that matches nothing: the friendly empty state.
        await pilot.press("ctrl+l")
        screen.query_one("#history-search", Input).value = "nothingmatchesthis"
        await wait_for(lambda: screen.has_class("-empty"), pilot.pause)
        assert "No saved run matches" in str(screen.query_one("#history-empty").render())


async def test_history_enter_opens_replay(seeded: Seeded) -> None:
    app = ScreenApp(lambda: HistoryScreen(seeded.store))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        await wait_for(lambda: screen.loads >= 1, pilot.pause)
        screen.query_one(DataTable).focus()
        await pilot.press("down")  # the second newest: critic's run
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, ReplayScreen), pilot.pause)
        replay = app.screen
        assert isinstance(replay, ReplayScreen)
        assert replay.run_id == seeded.runs[1].run_id
        await pilot.press("i")
        await wait_for(lambda: replay.done, pilot.pause)
        view = replay.query_one(TranscriptView)
        await view.flush()
        assert view.text == seeded.runs[1].accumulator.output_text
        await pilot.press("escape")
        await wait_for(lambda: app.screen is screen, pilot.pause)

        # "o" shows the selected run at once.
        screen.query_one(DataTable).focus()
        await pilot.press("o")
        await wait_for(lambda: isinstance(app.screen, ReplayScreen), pilot.pause)
        instant = app.screen
        assert isinstance(instant, ReplayScreen) and instant.clock.instant
        await wait_for(lambda: instant.done, pilot.pause)


async def test_history_empty_store(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "empty.db")
    try:
        app = ScreenApp(lambda: HistoryScreen(store))
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, HistoryScreen)
            await wait_for(lambda: screen.loads >= 1, pilot.pause)
            assert screen.has_class("-empty")
            assert "No saved runs yet" in str(screen.query_one("#history-empty").render())
            await pilot.press("enter")  # nothing to open: nothing happens
            assert app.screen is screen
    finally:
        await store.close()


async def test_history_store_error_is_shown_not_fatal(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "closed.db")
    await store.close()  # every query now fails
    app = ScreenApp(lambda: HistoryScreen(store))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        await wait_for(lambda: screen.loads >= 1, pilot.pause)
        assert screen.error is not None and "could not read the history" in screen.error
        assert screen.has_class("-error")
        assert app.is_running


# -- replay -----------------------------------------------------------------------------------


async def test_replay_reproduces_text_and_metrics(seeded: Seeded) -> None:
    original = seeded.runs[0]
    app = ScreenApp(lambda: ReplayScreen(seeded.store, original.run_id, 4.0))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        await wait_for(lambda: screen.done, pilot.pause)
        view = screen.query_one(TranscriptView)
        await view.flush()
        assert view.text == original.accumulator.output_text
        assert view.rendered_text == original.accumulator.output_text
        assert screen.accumulator is not None
        assert screen.accumulator.output_text == original.accumulator.output_text
        screen._publish()
        replayed = screen.query_one(MetricsBar).snapshot
        live = original.accumulator.metrics()
        stored = await seeded.store.get_run(original.run_id)
        assert replayed is not None and live.ttft_ms is not None and stored is not None
        assert replayed.ttft_ms == pytest.approx(live.ttft_ms, abs=1.0)
        assert replayed.ttft_ms == pytest.approx(stored.ttft_ms, abs=1.0)
        assert replayed.output_tokens == live.output_tokens
        assert replayed.tokens_per_s == pytest.approx(live.tokens_per_s, rel=0.01)
        badge = screen.query_one(FinishBadge)
        assert (badge.status, badge.reason) == ("completed", "stop")


async def test_replay_pause_stops_progress_and_instant_finishes(
    sim_url: str, tmp_path: Path
) -> None:
    store = await Store.open(tmp_path / "slow.db")
    try:
        # 120 tokens at 40 tok/s: about 3 s of original time, 12 s at 0.25x.
        slow = await record(store, sim_url, sim_session("slow", "sim", tokens=120, tps=40), "go")
        app = ScreenApp(lambda: ReplayScreen(store, slow.run_id, 0.25))
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, ReplayScreen)
            view = screen.query_one(TranscriptView)
            await wait_for(lambda: bool(view.text), pilot.pause)
            await pilot.press("space")
            assert screen.clock.paused
            paused_at = screen.clock.position
            text_at_pause = view.text
            await pilot.pause(0.6)  # at 0.25x this would be ~6 more tokens if not paused
            assert view.text == text_at_pause
            assert screen.clock.position == paused_at
            assert not screen.done

            await pilot.press("space")
            await pilot.press("plus", "plus")
            assert screen.clock.speed == 1.0 and not screen.clock.paused
            await pilot.press("minus")
            assert screen.clock.speed == 0.5

            await pilot.press("i")
            await wait_for(lambda: screen.done, pilot.pause)
            await view.flush()
            assert view.text == slow.accumulator.output_text
    finally:
        await store.close()


async def test_replay_instant_from_start(seeded: Seeded) -> None:
    original = seeded.runs[2]
    app = ScreenApp(lambda: ReplayScreen(seeded.store, original.run_id[:12], None))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        await wait_for(lambda: screen.done, pilot.pause)
        assert screen.clock.instant
        view = screen.query_one(TranscriptView)
        await view.flush()
        assert view.text == original.accumulator.output_text
        badge = screen.query_one(FinishBadge)
        assert badge.reason == "content_filter"


async def test_replay_unknown_run_shows_error(seeded: Seeded) -> None:
    app = ScreenApp(lambda: ReplayScreen(seeded.store, "ffffffffffff", 1.0))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        await wait_for(lambda: screen.error is not None, pilot.pause)
        assert "ffffffffffff" in (screen.error or "")
        assert screen.has_class("-error")
        assert app.is_running


def first_command(app: App[None]) -> str:
    """The best match in the open command palette ("" while it lists nothing)."""
    commands = app.screen.query_one(CommandList)
    if not commands.option_count:
        return ""
    return str(commands.get_option_at_index(0).prompt)


async def test_replay_actions_are_in_the_command_palette(seeded: Seeded) -> None:
    original = seeded.runs[0]
    app = ScreenApp(lambda: ReplayScreen(seeded.store, original.run_id, 0.25))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        await pilot.press("ctrl+p")
        await wait_for(lambda: isinstance(app.screen, CommandPalette), pilot.pause)
        await pilot.press(*"replay: pause")
        await wait_for(lambda: first_command(app).startswith("Replay: Pause"), pilot.pause)
        await pilot.press("enter")
        clock = screen.clock
        await wait_for(lambda: app.screen is screen and clock.paused, pilot.pause)

        await pilot.press("ctrl+p")
        await wait_for(lambda: isinstance(app.screen, CommandPalette), pilot.pause)
        await pilot.press(*"replay: instant")
        await wait_for(lambda: first_command(app).startswith("Replay: Instant"), pilot.pause)
        await pilot.press("enter")
        await wait_for(lambda: screen.done, pilot.pause)
        assert screen.clock.instant


async def test_replay_of_an_interrupted_run(sim_url: str, tmp_path: Path) -> None:
    db = tmp_path / "cut.db"
    store = await Store.open(db)
    session = sim_session("cut", "sim", tokens=80)
    run_id = new_run_id()
    await store.start_run(session, prompt="cut short", run_id=run_id)
    deltas = 0
    async with httpx.AsyncClient(timeout=30) as client:
        stream = StreamRun(session, client=client, base_url=sim_url, prompt="cut short")
        async for event in stream:
            store.add_event(run_id, event)
            deltas += isinstance(event, TextDelta)
            if deltas == 10:  # the process "dies" here: no Finished is ever recorded
                stream.cancel()
                break
    await store.flush()
    await store.close()

    store = await Store.open(db)  # the next start marks the run interrupted
    try:
        stored = await store.get_run(run_id)
        assert stored.status == "interrupted" and stored.output_text
        app = ScreenApp(lambda: ReplayScreen(store, run_id, None))
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert isinstance(screen, ReplayScreen)
            await wait_for(lambda: screen.done, pilot.pause)
            view = screen.query_one(TranscriptView)
            await view.flush()
            assert view.text == stored.output_text
            badge = screen.query_one(FinishBadge)
            assert badge.status is None and "interrupted" in badge.text
    finally:
        await store.close()
