"""The app as a whole: startup, failing sessions, the store, keymap, command palette."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from textual.binding import Binding
from textual.command import CommandList, CommandPalette

from tests.ui.conftest import app_config, paste, quit_app, sim_session, wait_until
from tui.config import AppConfig
from tui.store import Store
from tui.ui.app import TokentopApp
from tui.ui.screens.main import MainScreen
from tui.ui.widgets.session_pane import SessionPane
from tui.ui.widgets.totals import TotalsBar

if TYPE_CHECKING:
    from textual.pilot import Pilot

    from tui.ui.screens.replay import ReplayScreen


def _notes(app: TokentopApp, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    notes: list[str] = []
    original = app.notify

    def recording_notify(message: str, **kwargs: Any) -> None:
        notes.append(message)
        original(message, **kwargs)

    monkeypatch.setattr(app, "notify", recording_notify)
    return notes


def _main(app: TokentopApp) -> MainScreen:
    screen = app.main_screen
    assert screen is not None
    return screen


async def test_failing_session_shows_its_error_while_the_others_finish(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(sim_url, "good-1", key=sim_key),
        sim_session(sim_url, "broken", model="sim-broken", key=sim_key),
        sim_session(sim_url, "good-2", api="chat", key=sim_key),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: len(app.sessions) == 3, what="sessions")
        await wait_until(
            pilot, lambda: all(s.state in ("done", "failed") for s in app.sessions), what="end"
        )
        states = {s.name: s.state for s in app.sessions}
        assert states == {"good-1": "done", "broken": "failed", "good-2": "done"}
        main = _main(app)
        main.show_session("broken")
        await pilot.pause()
        pane = main.current_pane
        assert pane is not None and pane.live.name == "broken"
        await wait_until(pilot, lambda: pane.has_class("-failed"), what="failed class")
        error = str(pane.query_one("#pane-error").render())
        assert "HTTP 502" in error
        assert pane.badge.has_class("-failed")
        # The good sessions' panes hold their whole answers; the app is still running.
        for live in app.sessions:
            if live.name != "broken":
                assert live.current is not None
                assert len(live.current.accumulator.output_text) > 20
        assert app.is_running
        totals = str(app.screen.query_one(TotalsBar).render())
        assert "1 failed" in totals and "2 done" in totals


async def test_runs_are_saved_to_the_store(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    db = tmp_path / "runs.db"
    config = app_config(sim_session(sim_url, "saved", key=sim_key))
    app = TokentopApp(config, db_path=db, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: bool(app.sessions) and app.sessions[0].state == "done")
        live = app.sessions[0]
        assert app.store is not None and live.current is not None
        runs = await app.store.list_runs()
        assert [r.run_id for r in runs] == [live.current.run_id]
        assert runs[0].status == "completed"
        answer = live.current.accumulator.output_text
    async with await Store.open(db) as store:
        detail = await store.get_run(runs[0].run_id)
        assert detail.output_text == answer


@pytest.mark.parametrize("moment", ["at once", "when started", "mid-stream"])
async def test_quitting_early_keeps_every_started_run_and_says_nothing_of_the_store(
    sim_url: str,
    sim_key: str,
    tmp_path: Path,
    theme_dirs: list[Path | None],
    caplog: pytest.LogCaptureFixture,
    moment: str,
) -> None:
    db = tmp_path / "runs.db"
    slow = "ttft=0.05,tps=40,tokens=4000"
    config = app_config(
        *(sim_session(sim_url, f"s{i}", key=sim_key, timing=slow) for i in range(4)),
        sim_session(sim_url, "chat", api="chat", key=sim_key, timing=slow),
    )
    app = TokentopApp(config, db_path=db, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        if moment == "when started":
            await wait_until(pilot, lambda: app.begun, what="start")
        elif moment == "mid-stream":
            await wait_until(
                pilot, lambda: all(s.state == "streaming" for s in app.sessions), what="streams"
            )
        await quit_app(pilot)
    started = {s.current.run_id: s.name for s in app.sessions if s.current is not None}
    assert all(not s.running for s in app.sessions)
    async with await Store.open(db, readonly=True) as store:
        stored = {r.run_id: r for r in await store.list_runs(limit=100)}
    # every run that started is stored, ended as cut by the quit (none left running)
    assert set(stored) == set(started)
    assert {r.status for r in stored.values()} <= {"cancelled", "completed"}
    if moment == "mid-stream":
        assert len(stored) == 5 and all(r.status == "cancelled" for r in stored.values())
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == [], [r.getMessage() for r in problems]


async def test_store_that_cannot_open_is_a_notification_not_a_crash(
    sim_url: str,
    sim_key: str,
    tmp_path: Path,
    theme_dirs: list[Path | None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    not_a_db = tmp_path / "dir-not-db"
    not_a_db.mkdir()
    config = app_config(sim_session(sim_url, "unsaved", key=sim_key))
    app = TokentopApp(config, db_path=not_a_db, theme_dirs=theme_dirs)
    notes = _notes(app, monkeypatch)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: bool(app.sessions) and app.sessions[0].state == "done")
        assert app.store is None
        assert any("will not be saved" in n for n in notes)


async def test_keymap_override_and_unknown_ids_reported(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = "ttft=0.05,tps=30,tokens=2000"
    config = app_config(
        sim_session(sim_url, "slow", timing=slow, key=sim_key),
        keymap={"cancel_run": "ctrl+k", "no_such_action": "ctrl+z"},
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    notes = _notes(app, monkeypatch)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: bool(app.sessions) and app.sessions[0].state == "streaming")
        assert any("no_such_action" in n for n in notes)
        live = app.sessions[0]
        await pilot.press("x")  # the default key no longer cancels
        await pilot.pause(0.2)
        assert live.state == "streaming"
        await pilot.press("ctrl+k")
        await wait_until(pilot, lambda: live.state == "cancelled", what="cancelled")
        # The footer shows the remapped key.
        assert "cancel_run" in app.known_binding_ids()


async def test_every_action_is_in_the_command_palette(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(sim_session(sim_url, "one", key=sim_key))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: bool(app.sessions) and app.sessions[0].state == "done")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for wanted in (
            "Cancel run",
            "Restart run",
            "Restart all sessions",
            "Edit prompt",
            "Copy answer",
            "Toggle follow",
            "Toggle raw events",
            "Next theme",
            "Compare sessions",
            "History",
            "Overview",
            "Open session: one",
        ):
            assert wanted in titles
        # Use the palette as a person would: open it, type, enter.
        live = app.sessions[0]
        await pilot.press("ctrl+p")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, CommandPalette) and bool(app.screen.query(CommandList)),
        )
        await paste(pilot, "Restart all sessions")

        def top_hit() -> str:
            hits = app.screen.query_one(CommandList)
            return str(hits.get_option_at_index(0).prompt) if hits.option_count else ""

        await wait_until(pilot, lambda: top_hit().startswith("Restart all sessions"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: live.runs_started == 2, what="restart via palette")


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_small_and_large_terminals(
    size: tuple[int, int], sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        *(sim_session(sim_url, f"s{i}", key=sim_key) for i in range(4)),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: all(s.state == "done" for s in app.sessions))
        await pilot.pause(0.3)
        main = _main(app)
        table = main.overview.table
        assert table.row_count == 4
        labels = [str(c.label) for c in table.columns.values()]
        if size[0] < 100:
            assert "trend" not in " ".join(labels)  # compact columns
            assert table.region.width <= size[0]
        else:
            assert any("trend" in label for label in labels)
        await pilot.press("enter")
        await pilot.pause(0.3)
        pane = main.current_pane
        assert isinstance(pane, SessionPane)
        assert pane.transcript.region.height >= size[1] - 10
        # Raw events: over the transcript on a small terminal, beside it on a wide one.
        await pilot.press("v")
        await pilot.pause(0.2)
        assert pane.raw_log.region.height > 0
        if size[0] >= 160:
            assert pane.has_class("-wide")
            assert pane.transcript.region.width > 0
            assert pane.raw_log.region.x > pane.transcript.region.x
        else:
            assert pane.transcript.region.height == 0


async def test_replay_mode_shows_the_saved_run_and_quits_when_closed(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    from tui.ui.screens.replay import ReplayScreen

    db = tmp_path / "runs.db"
    config, run_id = await _record_one_run(sim_url, sim_key, db, theme_dirs)
    replayer = TokentopApp(
        config, db_path=db, theme_dirs=theme_dirs, replay_run_id=run_id, replay_speed=10.0
    )
    async with replayer.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(replayer.screen, ReplayScreen))
        assert replayer.main_screen is None  # nothing else runs in replay mode
        assert all(s.current is None for s in replayer.sessions)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not replayer.is_running, what="exit after closing")


async def test_compare_and_history_open_from_the_dashboard(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    from tui.ui.screens.compare import CompareScreen
    from tui.ui.screens.history import HistoryScreen

    config = app_config(
        sim_session(sim_url, "left", key=sim_key), sim_session(sim_url, "right", key=sim_key)
    )
    app = TokentopApp(config, db_path=tmp_path / "runs.db", theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: len(app.sessions) == 2)
        await wait_until(pilot, lambda: app.begun and not any(s.running for s in app.sessions))
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.main_screen)
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.main_screen)
        assert app.is_running


def test_every_binding_has_a_remappable_id() -> None:
    from tui.ui.keymap import BINDING_IDS, check_keymap
    from tui.ui.screens.add_session import AddSessionScreen, RemoveSessionConfirm
    from tui.ui.screens.compare import CompareScreen
    from tui.ui.screens.help import HelpScreen
    from tui.ui.screens.history import HistoryScreen
    from tui.ui.screens.monitor import MonitorScreen
    from tui.ui.screens.prompt import PromptEditor
    from tui.ui.screens.quit import QuitConfirm
    from tui.ui.screens.replay import ReplayScreen
    from tui.ui.screens.rounds import RoundList, RoundScreen, RoundSetup
    from tui.ui.widgets.follow_up import FollowUpLine
    from tui.ui.widgets.overview import OverviewTable
    from tui.ui.widgets.raw_log import RawEventLog
    from tui.ui.widgets.session_pane import SessionPane

    classes = (
        TokentopApp,
        MainScreen,
        OverviewTable,
        CompareScreen,
        HistoryScreen,
        ReplayScreen,
        PromptEditor,
        MonitorScreen,
        QuitConfirm,
        HelpScreen,
        RawEventLog,
        SessionPane,
        FollowUpLine,
        AddSessionScreen,
        RemoveSessionConfirm,
        RoundSetup,
        RoundScreen,
        RoundList,
    )
    ids: list[str] = []
    for cls in classes:
        for binding in cls.BINDINGS:
            assert isinstance(binding, Binding), (cls.__name__, binding)
            assert binding.id, f"{cls.__name__}: {binding.key} -> {binding.action} has no id"
            ids.append(binding.id)
    assert len(ids) == len(set(ids)), "binding ids repeat"
    assert set(ids) == set(BINDING_IDS)  # every id documented, no stale entries
    assert check_keymap({binding_id: "f12" for binding_id in ids}) == []


async def test_compare_bindings_can_be_remapped(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.ui.screens.compare import CompareScreen

    config = app_config(
        sim_session(sim_url, "one", key=sim_key),
        keymap={"compare.link": "k", "compare.close": "ctrl+b"},
    )
    app = TokentopApp(config, theme_dirs=theme_dirs, autostart=False)
    notes = _notes(app, monkeypatch)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.main_screen is not None, what="main screen")
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen), what="compare")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await pilot.pause()
        screen.focus_columns()
        await pilot.press("k")
        assert screen.linked
        await pilot.press("escape")  # the default key no longer closes the screen
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("ctrl+b")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="back")
        assert not [n for n in notes if "unknown binding id" in n]


async def test_compare_and_history_keys_never_stack_a_second_screen(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    from tui.ui.screens.compare import CompareScreen
    from tui.ui.screens.history import HistoryScreen

    config = app_config(sim_session(sim_url, "one", key=sim_key))
    app = TokentopApp(config, db_path=tmp_path / "runs.db", theme_dirs=theme_dirs)

    def stack() -> list[str]:
        return [type(screen).__name__ for screen in app.screen_stack[1:]]

    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: bool(app.sessions) and app.sessions[0].state == "done")
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen), what="compare")
        compare = app.screen
        await pilot.press("c")  # already on top: nothing happens
        await pilot.pause()
        assert stack() == ["MainScreen", "CompareScreen"] and app.screen is compare
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
        history = app.screen
        await pilot.press("h")
        await pilot.pause()
        assert stack() == ["MainScreen", "CompareScreen", "HistoryScreen"]
        # "c" from the history goes back to the open compare screen instead of a new one.
        await pilot.press("c")
        await wait_until(pilot, lambda: app.screen is compare, what="back to compare")
        assert stack() == ["MainScreen", "CompareScreen"]
        # The command palette's entries take the same path.
        app.action_compare()
        await pilot.pause()
        assert stack() == ["MainScreen", "CompareScreen"] and app.screen is compare
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
        assert app.screen is not history  # the first one was closed on the way back
        app.action_history()
        await pilot.pause()
        assert stack() == ["MainScreen", "CompareScreen", "HistoryScreen"]


async def _record_one_run(
    sim_url: str, sim_key: str, db: Path, theme_dirs: list[Path | None]
) -> tuple[AppConfig, str]:
    """Record one run of a session into ``db`` with the dashboard; its config and run id."""
    config = app_config(sim_session(sim_url, "recorded", key=sim_key))
    recorder = TokentopApp(config, db_path=db, theme_dirs=theme_dirs)
    async with recorder.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: recorder.begun and not recorder.sessions[0].running)
        run = recorder.sessions[0].current
        assert run is not None and run.finished is not None
    return config, run.run_id


async def _played_replay(app: TokentopApp, pilot: Pilot[None]) -> ReplayScreen:
    """Wait until ``app`` (started in replay mode) shows its replay and has played it."""
    from tui.ui.screens.replay import ReplayScreen

    await wait_until(pilot, lambda: isinstance(app.screen, ReplayScreen), what="replay")
    screen = app.screen
    assert isinstance(screen, ReplayScreen)
    await wait_until(pilot, lambda: screen.done, what="played")
    return screen


async def test_replay_mode_instant_plays_everything_at_once_and_again(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    from tui.ui.widgets.transcript import TranscriptView

    db = tmp_path / "runs.db"
    config, run_id = await _record_one_run(sim_url, sim_key, db, theme_dirs)
    # `tokentop replay RUN_ID --instant` starts the app with replay_speed=None.
    app = TokentopApp(
        config, db_path=db, theme_dirs=theme_dirs, replay_run_id=run_id, replay_speed=None
    )
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _played_replay(app, pilot)
        assert screen.clock.instant
        acc = screen.accumulator
        assert acc is not None and acc.done and len(acc.output_text) > 20
        view = screen.query_one(TranscriptView)
        await wait_until(pilot, lambda: view.rendered_text == acc.output_text, what="shown")
        # "Replay again" keeps the instant mode it was started in.
        await pilot.press("r")
        await wait_until(
            pilot, lambda: screen.accumulator is not acc and screen.done, what="played again"
        )
        assert screen.clock.instant
        # The in-app speed keys leave instant mode for a paced speed in the 0.25x-10x range.
        await pilot.press("plus")
        assert not screen.clock.instant and 0.25 <= screen.clock.speed <= 10


async def test_replay_mode_reads_the_store_only_while_another_tokentop_writes(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    from tui.stream.events import Started, TextDelta

    db = tmp_path / "runs.db"
    config, run_id = await _record_one_run(sim_url, sim_key, db, theme_dirs)
    # Another tokentop records into the same database during the whole replay.
    writer = await Store.open(db)
    try:
        other = await writer.start_run(config.sessions[0], prompt="still going")
        writer.add_event(other, Started(0.0, 1, 200, None))
        writer.add_event(other, TextDelta(0.1, "partial"))
        await writer.flush()
        app = TokentopApp(
            config, db_path=db, theme_dirs=theme_dirs, replay_run_id=run_id, replay_speed=None
        )
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await _played_replay(app, pilot)
            assert screen.error is None
            assert app.store is not None and app.store.readonly and app.store.owner is None
            acc = screen.accumulator
            assert acc is not None and acc.done and acc.output_text
            # The writer goes on meanwhile, and its runs stay its own.
            writer.add_event(other, TextDelta(0.2, " more"))
            await writer.flush()
        assert (await writer.get_run(other)).status == "running"
        assert len(await writer.list_runs()) == 2  # the replay added nothing
    finally:
        await writer.close()


async def test_a_simulator_that_cannot_start_fails_its_sessions_and_not_the_others(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    import tui.sim.process

    def no_simulator() -> str:
        raise OSError("no free port")

    monkeypatch.setattr(tui.sim.process, "shared_simulator", no_simulator)
    builtin = dataclasses.replace(sim_session(sim_url, "builtin", key=sim_key), base_url="sim")
    assert builtin.is_simulated
    config = app_config(builtin, sim_session(sim_url, "remote", key=sim_key))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(
            pilot, lambda: app.begun and not any(s.running for s in app.sessions), what="end"
        )
        first, second = app.sessions
        assert first.state == "failed" and second.state == "done"
        assert first.current is not None and first.current.finished is not None
        error = first.current.finished.error
        assert error is not None and error.kind == "connect"
        assert error.message == "the built-in simulator did not start: no free port"
