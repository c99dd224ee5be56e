"""The main screen's footer and key help: the most useful keys stay whole at every width, and
``?`` lists every binding of the screen and the app, remapped keys included."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.ui.conftest import app_config, sim_session, wait_until
from tui.ui.app import TokentopApp
from tui.ui.keymap import BINDING_IDS
from tui.ui.screens.main import MainScreen
from tui.ui.widgets.footer import PINNED_RANK, FooterEntry, KeysFooter, lay_out

QUICK = "ttft=0.01,tps=0,tokens=20"


def visible_keys(app: TokentopApp) -> dict[str, tuple[int, int]]:
    """The footer's keys that are whole on screen, as drawn on its line: description ->
    (first, last + 1 cell)."""
    footer = app.screen.query_one(KeysFooter)
    width = app.size.width
    left = footer.region.x
    line = footer.render_line(0).text
    shown: dict[str, tuple[int, int]] = {}
    for key in footer.placed:
        start, end = left + key.start, left + key.end
        if key.entry.description and start >= 0 and end <= min(width, footer.region.right):
            assert line[key.start : key.end] == f" {key.entry.key_display} {key.entry.description} "
            shown[key.entry.description] = (start, end)
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
        # the footer shows the remapped keys
        await wait_until(pilot, lambda: "Keys" in visible_keys(app), what="the Keys key")
        footer = app.screen.query_one(KeysFooter)
        displays = {entry.description: entry.key_display for entry in footer.shown}
        assert displays["Keys"] == "f1" and displays["Cancel"] == "^x"
        assert " f1 Keys " in footer.render_line(0).text
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


async def test_the_footer_follows_focus_and_a_click_on_a_key_presses_it(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    from tui.ui.screens.help import HelpScreen

    config = app_config(sim_session(sim_url, "solo", key=sim_key, timing=QUICK))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(200, 30)) as pilot:
        await wait_until(pilot, lambda: app.begun and app.sessions[0].state == "done")
        main = app.main_screen
        assert isinstance(main, MainScreen)
        # the focused overview's keys are shown, and go when a session's tab has the focus
        await wait_until(pilot, lambda: "Sort" in visible_keys(app), what="the overview's keys")
        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: main.current_pane is not None, what="a pane")
        await wait_until(pilot, lambda: "Sort" not in visible_keys(app), what="no Sort key")
        assert {"Quit", "Keys"} <= visible_keys(app).keys()
        # hovering a key shows its tooltip; a click on `? Keys` opens the key help, as ? does
        start, _ = visible_keys(app)["Keys"]
        footer = main.query_one(KeysFooter)
        await pilot.hover(KeysFooter, offset=(start - footer.region.x + 1, 0))
        assert footer.tooltip == BINDING_IDS["help"]
        await pilot.click(KeysFooter, offset=(start - footer.region.x + 1, 0))
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")


def _entry(description: str, rank: int) -> FooterEntry:
    key = description[0].lower()
    return FooterEntry(key, key, description, description, True, "", rank)


@pytest.mark.parametrize("width", [12, 30, 80])
def test_lay_out_puts_the_kept_keys_side_by_side_and_the_pinned_key_at_the_right_edge(
    width: int,
) -> None:
    entries = [_entry("Cancel", 3), _entry("Quit", 1), _entry("Keys", PINNED_RANK)]
    placed = lay_out(entries, width)
    assert placed[-1].entry.description == "Keys" and placed[-1].end == max(width, 8)
    left = placed[:-1]
    assert [key.start for key in left] == [0, *[key.end for key in left]][: len(left)]
    assert all(key.end < placed[-1].start for key in left)  # the rule's cell between
    wanted = {12: [], 30: ["Cancel", "Quit"], 80: ["Cancel", "Quit"]}[width]
    assert [key.entry.description for key in left] == wanted
