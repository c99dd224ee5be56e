"""History screen rough edges (issue 14): Escape and the search box, runs that are running,
and the table's columns on a terminal that changes size."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input, Static

from tests.store.conftest import completed_events
from tests.ui.conftest import app_config, sim_session, wait_until
from tests.ui.test_compare_rough_edges import burst
from tui.store import Store
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


def _count_line(screen: HistoryScreen) -> str:
    return str(screen.query_one("#history-count", Static).render())


def _cell(table: DataTable[object], run_id: str, column: str) -> str:
    return str(table.get_cell(run_id, column))


async def test_history_counts_and_follows_the_runs_that_are_running(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    db = tmp_path / "runs.db"
    slow = "ttft=0.05,tps=40,tokens=4000"
    config = app_config(
        sim_session(sim_url, "slow-1", key=sim_key, timing=slow),
        sim_session(sim_url, "slow-2", key=sim_key, timing=slow, api="chat"),
    )
    app = TokentopApp(config, db_path=db, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: all(s.state == "streaming" for s in app.sessions))
        # another tokentop records a run into the same database, not finished yet
        other = await Store.open(db)
        events = completed_events("an answer from another process")
        elsewhere = await other.start_run(app.config.sessions[0], prompt="elsewhere")
        other.add_events(elsewhere, events[:-1])
        await other.flush()
        try:
            screen = await _open_history(app, pilot)
            table = screen.query_one(DataTable)
            ids = [s.current.run_id for s in app.sessions if s.current is not None]
            assert len(ids) == 2 and all(run_id in table.rows for run_id in ids)
            assert "3 running (2 in this dashboard)" in _count_line(screen)
            assert "C its compare" in _count_line(screen)  # the key as bound
            first = ids[0]
            assert _cell(table, first, "status") == "running"
            tokens = int(_cell(table, first, "tokens").replace(",", ""))
            # the live figures move while the screen is open
            await wait_until(
                pilot,
                lambda: int(_cell(table, first, "tokens").replace(",", "")) > tokens + 10,
                what="live tokens",
            )
            # a run of this dashboard ends, and the run elsewhere too: the table follows
            app.sessions[0].cancel()
            other.add_events(elsewhere, events[-1:])
            await other.flush()
            await wait_until(
                pilot, lambda: "· 1 running in this dashboard" in _count_line(screen), within=10
            )
            assert _cell(table, first, "status") == "cancelled"
            assert _cell(table, elsewhere, "status") == "completed"
        finally:
            await other.close()


async def test_history_columns_refit_on_every_resize(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    prompt = "Compare the latency of these two gateways under load, step by step. " * 5
    config = app_config(sim_session(sim_url, "wide", key=sim_key, prompt=prompt))
    app = TokentopApp(config, db_path=tmp_path / "runs.db", theme_dirs=theme_dirs)
    async with app.run_test(size=(80, 30)) as pilot:
        await wait_until(pilot, lambda: app.begun and app.sessions[0].state == "done")
        screen = await _open_history(app, pilot)
        table = screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.size.width == 80, what="laid out")

        def prompt_width() -> int:
            return table.columns["prompt"].get_render_width(table) - 2 * table.cell_padding  # type: ignore[index]

        narrow = prompt_width()

        def fills(width: int) -> bool:
            # the columns take the whole width: no sideways scrolling, no empty band
            return table.size.width == width and table.virtual_size.width == width

        widths: dict[int, int] = {}
        for width in (120, 200):
            await pilot.resize_terminal(width, 30)
            await wait_until(pilot, partial(fills, width), what=f"columns at {width}")
            widths[width] = prompt_width()
            shown = str(table.get_cell_at(Coordinate(0, len(table.columns) - 1)))
            assert len(shown) == widths[width] and shown.endswith("…")
        assert widths[200] - widths[120] == 80 and widths[120] > narrow
        await pilot.resize_terminal(80, 30)
        await wait_until(pilot, lambda: prompt_width() == narrow, what="back at 80")
        # at 80 columns the prompt fills what is left, or keeps its least width
        from tui.ui.widgets.run_table import PROMPT_MIN_WIDTH

        assert fills(80) or narrow == PROMPT_MIN_WIDTH
