"""The overview: one row per session, live cells, sorting, filtering, enter opens a session."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from rich.text import Text
from textual.command import CommandList, CommandPalette

from tests.ui.conftest import app_config, paste, sim_session, wait_until
from tui.ui.app import TokentopApp
from tui.ui.screens.main import MainScreen
from tui.ui.widgets.overview import OverviewTable
from tui.ui.widgets.preview import SessionPreview, markdown_lines


def _overview(app: TokentopApp) -> OverviewTable:
    main = app.main_screen
    assert isinstance(main, MainScreen)
    return main.overview


def _column(table: OverviewTable, key: str) -> list[str]:
    return [str(table.table.get_cell(name, key)) for name in table.visible_names]


async def test_rows_show_each_session_and_fill_in_live(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(sim_url, "alpha", key=sim_key, timing="ttft=0.05,tps=40,tokens=80"),
        sim_session(sim_url, "bravo", api="chat", key=sim_key),
        sim_session(sim_url, "capped", model="sim", key=sim_key, max_output_tokens=16),
        sim_session(sim_url, "down", model="sim-broken", key=sim_key),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: len(app.sessions) == 4)
        overview = _overview(app)
        # While streaming, the status column says so (rows refresh at 5 Hz, not per token).
        await wait_until(
            pilot, lambda: "● streaming" in _column(overview, "state"), what="streaming row"
        )
        await wait_until(
            pilot, lambda: app.begun and not any(s.running for s in app.sessions), what="end"
        )
        assert overview.visible_names == ["alpha", "bravo", "capped", "down"]
        final = ["✓ done", "✓ done", "▲ incomplete", "✖ failed"]
        await wait_until(pilot, lambda: _column(overview, "state") == final, what="final rows")
        finish = dict(zip(overview.visible_names, _column(overview, "finish"), strict=True))
        assert finish["capped"] == "length" and finish["down"] == "error"
        out = dict(zip(overview.visible_names, _column(overview, "out"), strict=True))
        assert out["alpha"] == "80"
        ttft = dict(zip(overview.visible_names, _column(overview, "ttft"), strict=True))
        assert ttft["alpha"].endswith("ms") and ttft["down"] == "–"
        tries = dict(zip(overview.visible_names, _column(overview, "tries"), strict=True))
        assert tries["down"] == "2/0"  # one retry of the 502, then it gave up

        # A tall terminal shows the selected row's details and answer tail under the table.
        preview = overview.query_one(SessionPreview)
        assert overview.has_class("-tall") and preview.region.height > 5
        overview.table.focus()
        await pilot.press("home")
        alpha = app.sessions[0].current
        assert alpha is not None
        # The preview refreshes on its own timer: it may still show alpha while streaming.
        # (the answer's last line, as the preview writes Markdown: without its syntax)
        last_line = markdown_lines(alpha.accumulator.output_text)[-1].plain
        await wait_until(
            pilot,
            lambda: alpha.run_id in preview.text and last_line in preview.text,
            what="alpha preview with the end of its answer",
        )
        assert "alpha" in preview.text
        await pilot.press("down", "down", "down")  # "down": its error is spelled out
        await wait_until(pilot, lambda: "✖ http" in preview.text, what="down preview")
        assert "502" in preview.text


async def test_sort_filter_and_enter(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(sim_url, "zulu", key=sim_key, timing="ttft=0.01,tps=0,tokens=30"),
        sim_session(sim_url, "mike", key=sim_key, timing="ttft=0.01,tps=0,tokens=90"),
        sim_session(sim_url, "alpha", api="chat", key=sim_key, timing="ttft=0.01,tps=0,tokens=60"),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: len(app.sessions) == 3)
        await wait_until(pilot, lambda: all(s.state == "done" for s in app.sessions))
        overview = _overview(app)
        await pilot.pause(0.3)
        assert overview.visible_names == ["alpha", "mike", "zulu"]
        # "s" walks the sort column through the columns shown: status, then session, then
        # model ... up to "out".
        keys = [c.key for c in overview.columns]
        assert keys[:3] == ["state", "name", "model"] and "out" in keys
        for _ in range(keys.index("out") - 1):
            await pilot.press("s")
        assert overview.sort_column == "out"
        assert overview.visible_names == ["zulu", "alpha", "mike"]
        await pilot.press("S")
        assert overview.visible_names == ["mike", "alpha", "zulu"]
        # A click on a header sorts by that column too.
        await pilot.click(overview.table, offset=(3, 0))
        assert overview.sort_column == "state"
        # Filter: "/" focuses the input; words must all match (name, model, api or state).
        await pilot.press("slash")
        await pilot.press(*"chat")
        await pilot.pause()
        assert overview.visible_names == ["alpha"]
        await pilot.press("enter")  # leaves the input for the table
        await pilot.press("enter")  # opens the session
        await pilot.pause()
        main = app.main_screen
        assert main is not None and main.current_pane is not None
        assert main.current_pane.live.name == "alpha"
        await pilot.press("o")
        assert main.current_pane is None and main.tabs.active == "overview"


async def test_theme_switches_while_streaming_sorted_and_filtered_keep_the_app_alive(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: a theme switch emptied the overview's row cache, the next 5 Hz refresh saw
    # no rows and re-sorted with an empty rank: KeyError in refresh_rows ended the app.
    slow = "ttft=0.02,tps=40,tokens=4000"
    config = app_config(
        sim_session(sim_url, "zulu", key=sim_key, timing=slow),
        sim_session(sim_url, "mike", api="chat", key=sim_key, timing=slow),
        sim_session(sim_url, "alpha", key=sim_key, timing=slow),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: len(app.sessions) == 3)
        await wait_until(
            pilot, lambda: all(s.state == "streaming" for s in app.sessions), what="streaming"
        )
        overview = _overview(app)

        async def cycle_themes(times: int, expected: list[str]) -> None:
            for _ in range(times):
                before = app.theme
                await pilot.press("ctrl+t")
                await wait_until(pilot, lambda: app.theme != before, what="theme switch")  # noqa: B023
                # Two timer refreshes after the switch: the crash came on the next tick.
                ticks = overview.refreshes
                await wait_until(
                    pilot,
                    lambda: overview.refreshes >= ticks + 2,  # noqa: B023
                    what="overview refresh after a theme switch",
                )
                assert app.is_running
                assert overview.visible_names == expected

        await cycle_themes(1, ["alpha", "mike", "zulu"])
        await pilot.press("S")  # reverse the sort (by session name)
        assert overview.visible_names == ["zulu", "mike", "alpha"]
        await cycle_themes(1, ["zulu", "mike", "alpha"])
        await pilot.press("slash")
        await paste(pilot, "responses")
        await pilot.press("enter")
        await wait_until(pilot, lambda: overview.visible_names == ["zulu", "alpha"], what="filter")
        await cycle_themes(1, ["zulu", "alpha"])
        # The command palette's "Next theme" goes through the same path.
        before = app.theme
        app.action_command_palette()
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, CommandPalette) and bool(app.screen.query(CommandList)),
            what="palette",
        )
        await paste(pilot, "Next theme")
        await wait_until(
            pilot,
            lambda: (
                bool(app.screen.query(CommandList))
                and app.screen.query_one(CommandList).option_count > 0
            ),
            what="palette match",
        )
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.theme != before, what="theme via the palette")
        ticks = overview.refreshes
        await wait_until(pilot, lambda: overview.refreshes >= ticks + 2, what="refresh")
        assert app.is_running and overview.visible_names == ["zulu", "alpha"]
        # Cells carry the current theme's colours, and nothing went wrong on the way.
        state_cell = overview.table.get_cell("zulu", "state")
        assert (
            isinstance(state_cell, Text)
            and state_cell.style == overview._styles["status-streaming"]
        )
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
