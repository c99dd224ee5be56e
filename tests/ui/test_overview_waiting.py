"""A run still waiting for its first token shows its elapsed time in whole steps of
:data:`~tui.ui.widgets.overview_rows.WAIT_STEP_S` seconds (its row is written once per
step, not every second) and no rate trend; once tokens flow, tenths of a second again."""

from __future__ import annotations

from pathlib import Path

from tests.ui.conftest import app_config, sim_session, wait_until
from tui.ui.app import TokentopApp
from tui.ui.widgets.overview import OverviewTable
from tui.ui.widgets.overview_rows import WAIT_STEP_S, wait_elapsed


def test_the_wait_is_shown_in_steps() -> None:
    assert WAIT_STEP_S == 5
    assert wait_elapsed(None) == "–"
    assert [wait_elapsed(s) for s in (0.0, 4.9, 5.0, 12.3, 59.9)] == [
        "0 s",
        "0 s",
        "5 s",
        "10 s",
        "55 s",
    ]
    assert wait_elapsed(64.0) == "1m00s" and wait_elapsed(3 * 60 + 9.5) == "3m05s"


async def test_a_waiting_row_shows_whole_steps_then_tenths_once_tokens_flow(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(sim_url, "wait", key=sim_key, timing="ttft=3600"),
        sim_session(sim_url, "flow", key=sim_key, timing="ttft=0.01,tps=20,tokens=4000"),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(260, 30)) as pilot:
        overview = app.screen.query_one(OverviewTable)

        def elapsed(name: str) -> str:
            return str(overview.table.get_cell(name, "elapsed"))

        await wait_until(pilot, lambda: elapsed("wait") == "0 s", what="the wait in steps")
        waiting = next(live for live in app.sessions if live.name == "wait")
        await wait_until(pilot, lambda: len(waiting.rate_samples) >= 2, what="rate samples")
        refreshes = overview.refreshes
        await wait_until(pilot, lambda: overview.refreshes > refreshes + 1, what="a refresh")
        # no rate before the first token: no sparkline of zero bars
        assert str(overview.table.get_cell("wait", "trend")).strip() == ""
        await wait_until(
            pilot, lambda: elapsed("flow").endswith(" s") and "." in elapsed("flow"), what="tenths"
        )
        for live in app.sessions:
            live.cancel()
