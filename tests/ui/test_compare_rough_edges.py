"""Compare screen rough edges (issue 14): what a column shows when it opens, which columns
the next prompt goes to, and Escape in the prompt box."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from tests.ui.conftest import app_config, sim_session, wait_until
from tui.ui.app import TokentopApp
from tui.ui.screens.compare import CompareScreen
from tui.ui.widgets.badges import FinishBadge
from tui.ui.widgets.transcript import TranscriptView

NO_RUN = "no run yet: type a prompt below"


async def test_columns_opened_on_finished_runs_show_them_from_the_first_frame(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(sim_url, "left", key=sim_key),
        sim_session(sim_url, "right", key=sim_key, api="chat"),
        sim_session(sim_url, "never", key=sim_key),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs, autostart=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: app.begun, what="start")
        left, right, never = app.sessions
        left.start()
        right.start()
        await wait_until(pilot, lambda: left.state == right.state == "done", what="two runs")
        screen = CompareScreen(app.sessions)
        # The screen paints once its columns are mounted: at that moment each column holds
        # its session's answer and outcome, with no "no run yet" over a finished run.
        await app.push_screen(screen)
        for column in screen.columns[:2]:
            run = column.live.current
            assert run is not None and run.done and column.run is run
            view = column.query_one(TranscriptView)
            assert view.rendered_text == run.accumulator.output_text != ""
            assert view.has_output
            assert column.query_one(FinishBadge).reason == "stop"
            note = column.query_one(".run-note", Static)
            assert not note.display
        idle = screen.columns[2]
        assert idle.run is None and never.current is None
        note = idle.query_one(".run-note", Static)
        assert note.display and str(note.render()) == NO_RUN
