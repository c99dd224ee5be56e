"""History screen rough edges (issue 14): Escape and the search box, runs that are running,
and the table's columns on a terminal that changes size."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.widgets import DataTable, Input

from tests.ui.conftest import app_config, sim_session, wait_until
from tests.ui.test_compare_rough_edges import burst
from tui.ui.app import TokentopApp
from tui.ui.screens.history import HistoryScreen

if TYPE_CHECKING:
    from textual.pilot import Pilot


async def _open_history(app: TokentopApp, pilot: Pilot[None]) -> HistoryScreen:
    await pilot.press("h")
    screen = app.screen
    assert isinstance(screen, HistoryScreen)
    await wait_until(pilot, lambda: screen.loads > 0, what="the history")
    return screen


async def test_escape_clears_the_search_then_leaves_the_box_then_the_screen(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    config = app_config(sim_session(sim_url, "saved", key=sim_key, prompt="zebra facts"))
    app = TokentopApp(config, db_path=tmp_path / "runs.db", theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: app.begun and app.sessions[0].state == "done")
        screen = await _open_history(app, pilot)
        search = screen.query_one("#history-search", Input)
        table = screen.query_one(DataTable)
        assert table.has_focus and len(screen.runs) == 1
        # "/" and a word, all at once ("h" and "o" are commands elsewhere): the word goes
        # into the box, and Escape right behind it clears it; the screen stays.
        burst(app, "slash", "h", "o")
        await wait_until(pilot, lambda: search.value == "ho", what="the word in the box")
        assert app.screen is screen and screen.focused is search
        burst(app, "x", "escape")
        await wait_until(pilot, lambda: search.value == "", what="the search cleared")
        await pilot.pause(0.1)
        assert app.screen is screen and screen.focused is search
        # A search, then Escape from the table: the search is cleared first.
        burst(app, "z", "e", "b")
        await wait_until(pilot, lambda: search.value == "zeb", what="typed")
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.focused is table, what="the table")
        await pilot.press("escape")
        await wait_until(pilot, lambda: search.value == "", what="cleared")
        assert app.screen is screen
        # Escape in the empty box leaves it for the table; Escape there goes back.
        await pilot.press("slash")
        await wait_until(pilot, lambda: screen.focused is search, what="the box again")
        await pilot.press("escape")
        await wait_until(pilot, lambda: screen.focused is table, what="left the box")
        assert app.screen is screen
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.main_screen, what="the dashboard")
