"""Compare rounds in the dashboard: the setup asks for the count, order and prompt; the round
screen shows its progress and then ranks the sessions (a clearly slower one second, its
ratio said), the round is stored and opens again from the store with the same table."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input, Static

from tests.ui.conftest import app_config, paste, sim_session, wait_until
from tui.store import Store
from tui.ui.app import TokentopApp
from tui.ui.screens.history import HistoryScreen
from tui.ui.screens.rounds import (
    RoundList,
    RoundRequest,
    RoundScreen,
    RoundSetup,
    open_stored_round,
    start_round,
)

FAST = "ttft=0.01,tps=0,tokens=20"
SLOW = "ttft=0.3,tps=0,tokens=20"


def table_rows(screen: RoundScreen) -> list[list[str]]:
    """The table's rows as text (none before the screen is mounted)."""
    if not screen.query(DataTable):
        return []
    table = screen.query_one(DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def test_a_round_in_the_dashboard_ranks_a_slower_session_second_and_is_stored(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], tmp_path: Path
) -> None:
    db = tmp_path / "tokentop.db"
    config = app_config(
        sim_session(sim_url, "quick", key=sim_key, timing=FAST),
        sim_session(sim_url, "slow", key=sim_key, timing=SLOW, api="chat"),
    )
    app = TokentopApp(config, db_path=db, theme_dirs=theme_dirs, autostart=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(pilot, lambda: app.begun, what="start")
        screen = app.screen
        view = start_round(
            screen, app.runtime, ["quick", "slow"], RoundRequest(3, "interleaved", None)
        )
        assert view is not None and view.round is not None
        await wait_until(
            pilot,
            lambda: bool(view.query("#round-progress")),
            what="the round screen",
        )
        progress = view.query_one("#round-progress", Static)
        await wait_until(pilot, lambda: "runs finished" in str(progress.render()), what="progress")
        await wait_until(
            pilot,
            lambda: view.round is not None and view.round.status == "done",
            what="the round",
            within=40,
        )
        await wait_until(pilot, lambda: "6/6 runs finished" in str(progress.render()), what="drawn")
        rows = table_rows(view)
        assert [row[1] for row in rows] == ["quick", "slow"]
        assert rows[0][0] == "1" and rows[1][0] == "2" and rows[0][3] == "3/3"
        verdict = str(view.query_one("#round-verdict", Static).render())
        assert "fastest: quick" in verdict
        await pilot.press("b")  # rank by tokens/s: the table is drawn again
        await pilot.pause()
        assert view.by == "tps"
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, what="back")
        round_id = view.round.id
        assert app.store is not None
        await app.store.flush()
        # from History: ctrl+o lists the stored rounds, Enter opens one's table
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
        history = app.screen
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, RoundList), what="the rounds")
        listing = app.screen
        await wait_until(
            pilot, lambda: listing.query_one(DataTable).row_count == 1, what="the stored round"
        )
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, RoundScreen), what="its table")
        from_history = app.screen
        assert isinstance(from_history, RoundScreen) and from_history.stored is not None
        await wait_until(pilot, lambda: bool(table_rows(from_history)), what="the table rows")
        assert [row[1] for row in table_rows(from_history)] == ["quick", "slow"]
        for _ in range(2):
            await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is history, what="back to history")
        await open_stored_round(screen, app.store, round_id[:10])
        stored = app.screen
        assert isinstance(stored, RoundScreen) and stored.round is None
        await wait_until(pilot, lambda: bool(table_rows(stored)), what="the stored table")
        assert [row[1] for row in table_rows(stored)] == ["quick", "slow"]
        assert "done" in str(stored.query_one("#round-title", Static).render())
    async with await Store.open(db, readonly=True) as reader:
        record = await reader.get_round(round_id)
    assert record is not None and record.status == "done" and len(record.runs) == 6


async def test_the_setup_asks_again_for_a_bad_count_and_gives_the_request(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    app = TokentopApp(
        app_config(sim_session(sim_url, "a", key=sim_key)), theme_dirs=theme_dirs, autostart=False
    )
    answers: list[RoundRequest | None] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.begun, what="start")
        setup = RoundSetup(["a"], prompt="Same for all.")
        app.push_screen(setup, answers.append)
        await wait_until(pilot, lambda: bool(setup.query("#round-count")), what="the setup")
        count = setup.query_one("#round-count", Input)
        count.value = "0"
        await pilot.press("enter")
        assert "whole number" in str(setup.query_one("#round-error", Static).render())
        count.value = ""
        await paste(pilot, "4")
        await pilot.press("enter")
        await wait_until(pilot, lambda: answers != [], what="the answer")
    assert answers == [RoundRequest(4, "interleaved", "Same for all.")]


async def test_ctrl_r_in_compare_sends_a_round_to_the_checked_sessions(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    from tui.ui.screens.compare import CompareScreen

    config = app_config(
        sim_session(sim_url, "a", key=sim_key, timing=FAST),
        sim_session(sim_url, "b", key=sim_key, timing=FAST, api="chat"),
        sim_session(sim_url, "left out", key=sim_key, timing=FAST),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs, autostart=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(pilot, lambda: app.begun, what="start")
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen), what="compare")
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        await wait_until(pilot, lambda: len(compare.columns) == 3, what="the columns")
        compare.columns[2].selected = False
        await pilot.press("ctrl+r")  # also from the prompt box, where compare opens
        await wait_until(pilot, lambda: isinstance(app.screen, RoundSetup), what="the setup")
        setup = app.screen
        await wait_until(pilot, lambda: bool(setup.query("#round-count")), what="its fields")
        setup.query_one("#round-count", Input).value = "2"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, RoundScreen), what="the round")
        view = app.screen
        assert isinstance(view, RoundScreen) and view.round is not None
        assert view.round.sessions == ("a", "b") and view.round.count == 2
        await wait_until(
            pilot,
            lambda: view.round is not None and view.round.status == "done",
            what="done",
            within=40,
        )
        await wait_until(pilot, lambda: len(table_rows(view)) == 2, what="the table")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is compare, what="back to compare")


async def test_the_round_table_fits_an_80_column_terminal_and_names_what_it_left_out(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], tmp_path: Path
) -> None:
    config = app_config(
        sim_session(sim_url, "quick", key=sim_key, timing=FAST),
        sim_session(sim_url, "slow", key=sim_key, timing=SLOW, api="chat"),
    )
    app = TokentopApp(config, db_path=tmp_path / "t.db", theme_dirs=theme_dirs, autostart=False)
    async with app.run_test(size=(80, 30)) as pilot:
        await wait_until(pilot, lambda: app.begun, what="start")
        view = start_round(
            app.screen, app.runtime, ["quick", "slow"], RoundRequest(1, "interleaved", None)
        )
        assert view is not None and view.round is not None
        await wait_until(
            pilot,
            lambda: view.round is not None and view.round.status == "done",
            what="the round",
            within=40,
        )
        await wait_until(pilot, lambda: len(table_rows(view)) == 2, what="the rows")
        table = view.query_one(DataTable)
        await wait_until(pilot, lambda: table.virtual_size.width > 0, what="laid out")
        assert table.virtual_size.width <= 80
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[:2] == ["#", "session"] and labels[-1] == "vs best"
        assert any(label.startswith("ttft") for label in labels)  # the ranked metric stays
        verdict = view.query_one("#round-verdict", Static)
        assert "left out at this width" in str(verdict.render())
        await pilot.resize_terminal(220, 30)
        # wide: only the columns with nothing in them stay out (no price; tps=0 streams
        # have no tokens/s)
        await wait_until(
            pilot,
            lambda: "model" in [str(c.label) for c in view.query_one(DataTable).columns.values()],
            what="the wide table",
        )
        labels = [str(c.label) for c in view.query_one(DataTable).columns.values()]
        assert labels.count("p95") == 2 and "duration ms (p25–p75)" in labels
        assert "$/run" in str(view.query_one("#round-verdict", Static).render())
