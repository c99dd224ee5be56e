"""The main screen's footer and key help: the most useful keys stay whole at every width, and
``?`` lists every binding of the screen and the app, remapped keys included."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from textual.widgets import Footer

from tests.ui.conftest import app_config, sim_session, wait_until
from tui.ui.app import TokentopApp
from tui.ui.screens.main import MainScreen

QUICK = "ttft=0.01,tps=0,tokens=20"


def visible_keys(app: TokentopApp) -> dict[str, tuple[int, int]]:
    """The footer's keys that are whole on screen: description -> (first, last + 1 cell)."""
    footer = app.screen.query_one(Footer)
    width = app.size.width
    shown: dict[str, tuple[int, int]] = {}
    for widget in footer.query("*"):
        description = getattr(getattr(widget, "entry", widget), "description", None)
        region = widget.region
        if description and region.width and region.x >= 0 and region.right <= width:
            shown[description] = (region.x, region.right)
    return shown


@pytest.mark.parametrize("width", [60, 80, 120, 200])
async def test_the_footer_keeps_quit_compare_history_and_keys_at_every_width(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], width: int
) -> None:
    config = app_config(
        sim_session(sim_url, "flaky · retries then ok", key=sim_key, timing=QUICK),
        sim_session(sim_url, "quick · chat", api="chat", key=sim_key, timing=QUICK),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(width, 30)) as pilot:
        await wait_until(pilot, lambda: app.begun and all(s.state == "done" for s in app.sessions))
        main = app.main_screen
        assert isinstance(main, MainScreen)
        for where in ("overview", "session tab"):
            if where == "session tab":
                await pilot.press("right_square_bracket")
                await wait_until(pilot, lambda: main.current_pane is not None, what="a pane")
            await wait_until(
                pilot,
                lambda: {"Quit", "Compare", "History", "Keys"} <= visible_keys(app).keys(),
                within=5,
                what=f"Quit, Compare, History and Keys at {width} columns ({where})",
            )
            spans = sorted(visible_keys(app).values())
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans
        if width >= 200:  # room for every key the overview offers
            assert {"Cancel", "Restart", "Edit", "Monitor", "Next"} <= visible_keys(app).keys()


async def test_the_footer_lays_its_keys_out_again_when_the_terminal_narrows(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(sim_session(sim_url, "solo", key=sim_key, timing=QUICK))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(200, 30)) as pilot:
        await wait_until(pilot, lambda: app.begun and app.sessions[0].state == "done")
        await wait_until(pilot, lambda: "Restart" in visible_keys(app), what="a wide footer")
        await pilot.resize_terminal(70, 30)
        await wait_until(
            pilot,
            lambda: {"Quit", "Keys"} <= visible_keys(app).keys(),
            within=5,
            what="Quit and Keys after narrowing",
        )
        assert max(right for _, right in visible_keys(app).values()) <= 70


async def test_key_help_lists_every_binding_with_the_remapped_keys(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    from tui.ui.screens.help import HelpScreen

    config = app_config(
        sim_session(sim_url, "solo", key=sim_key, timing=QUICK),
        keymap={"cancel_run": "ctrl+x", "help": "f1", "acknowledge_all_alerts": "ctrl+a"},
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.begun and app.sessions[0].state == "done")
        # the footer shows the remapped help key
        await wait_until(pilot, lambda: "Keys" in visible_keys(app), what="the Keys key")
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        by_id = {row.binding_id: row for row in help_screen.rows if row.binding_id}
        declared = [*MainScreen.BINDINGS, *TokentopApp.BINDINGS]
        for binding in declared:
            binding_id = getattr(binding, "id", None)
            assert binding_id in by_id, f"{binding_id} is not listed"
        # the focused overview's own keys are there too
        assert {"overview.filter", "overview.sort"} <= by_id.keys()
        cancel = by_id["cancel_run"]
        assert cancel.keys == ["^x"] and cancel.description == "Cancel"
        assert "Cancel the current session's run" in cancel.tooltip
        # not available while no session has alerts, and keyed as remapped
        ack_all = by_id["acknowledge_all_alerts"]
        assert not ack_all.available and ack_all.keys == ["^a"]
        assert by_id["quit"].keys[0] == "q" and by_id["quit"].section == "Everywhere"
        assert by_id["help"].keys == ["f1"]
        table = help_screen.query_one("#help-table")
        assert table.region.height > 10
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="back")


async def test_question_mark_opens_and_closes_the_key_help(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(sim_session(sim_url, "solo", key=sim_key, timing=QUICK))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.begun and app.sessions[0].state == "done")
        main = app.main_screen
        assert main is not None
        main.show_session("solo")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: app.screen is not main, what="the help")
        rows = getattr(app.screen, "rows", [])
        assert any(row.binding_id == "toggle_raw" and row.available for row in rows)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: app.screen is main, what="back to the dashboard")
