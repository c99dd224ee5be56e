"""Monitoring in the dashboard: the header's run counts, the overview's figures over a window,
the monitor view, alerts, the quit guard and bounded memory over many runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from tests.ui.conftest import app_config, sim_session, wait_until
from tui.config import Repeat
from tui.ui.app import TokentopApp
from tui.ui.widgets.overview import OverviewTable
from tui.ui.widgets.overview_rows import COLUMNS
from tui.ui.widgets.totals import TotalsBar

TINY = "ttft=0,tps=5000,tokens=3"
"""A run of a few milliseconds on the simulator."""


async def test_header_counts_every_finished_run_of_a_repeating_session(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(
            sim_url, "probe", key=sim_key, timing=TINY, repeat=Repeat(every_s=0.01, count=6)
        ),
        sim_session(sim_url, "broken", model="sim-broken", key=sim_key),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(
            pilot, lambda: not any(s.running for s in app.sessions) and app.begun, what="runs"
        )
        bar = app.screen.query_one(TotalsBar)
        bar.refresh_totals()
        totals = str(bar.render())
        assert "6 done" in totals and "1 failed" in totals, totals
        assert app.run_tally.counts["probe"].completed == 6


def _overview(app: TokentopApp) -> OverviewTable:
    main = app.main_screen
    assert main is not None
    return main.overview


def _cell(overview: OverviewTable, name: str, key: str) -> str:
    return str(overview.table.get_cell(name, key))


async def test_overview_figures_come_from_the_store_and_survive_a_restart(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    db = tmp_path / "runs.db"
    config = app_config(
        sim_session(
            sim_url, "probe", key=sim_key, timing=TINY, repeat=Repeat(every_s=0.01, count=4)
        ),
        sim_session(sim_url, "down", model="sim-broken", key=sim_key),
    )
    app = TokentopApp(config, db_path=db, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        overview = _overview(app)
        await wait_until(
            pilot, lambda: not any(s.running for s in app.sessions) and app.begun, what="runs"
        )
        await wait_until(
            pilot, lambda: _cell(overview, "probe", "runs") == "4", what="4 runs from the store"
        )
        assert app.figures.from_store and app.figures.reads >= 1
        assert _cell(overview, "probe", "ok") == "100%"
        assert _cell(overview, "down", "ok") == "0%"
        assert _cell(overview, "probe", "p95").endswith("ms")
        assert "last hour" in str(overview.query_one("#overview-caption", Static).render())
    # a new dashboard on the same database starts with the figures of the earlier runs
    again = TokentopApp(config, db_path=db, theme_dirs=theme_dirs, autostart=False)
    async with again.run_test(size=(120, 40)) as pilot:
        overview = _overview(again)
        await wait_until(
            pilot, lambda: _cell(overview, "probe", "runs") == "4", what="stored figures"
        )
        assert _cell(overview, "down", "runs") == "1"


async def test_overview_without_a_store_uses_the_runs_in_memory_and_says_so(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(
            sim_url, "probe", key=sim_key, timing=TINY, repeat=Repeat(every_s=0.01, count=3)
        ),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        overview = _overview(app)
        await wait_until(pilot, lambda: _cell(overview, "probe", "runs") == "3", what="3 runs")
        assert not app.figures.from_store and app.figures.reads == 0
        assert "no store" in str(overview.query_one("#overview-caption", Static).render())


async def test_figures_are_read_once_per_burst_of_finished_runs(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        *(
            sim_session(
                sim_url, f"p{i}", key=sim_key, timing=TINY, repeat=Repeat(every_s=0.01, count=10)
            )
            for i in range(3)
        )
    )
    app = TokentopApp(config, db_path=tmp_path / "runs.db", theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        overview = _overview(app)
        await wait_until(
            pilot,
            lambda: all(_cell(overview, f"p{i}", "runs") == "10" for i in range(3)),
            what="every run counted",
        )
        # 30 runs ended within a few seconds: a handful of reads (debounced), not 30
        assert app.run_tally.total().finished == 30
        assert app.figures.reads < 15


@pytest.mark.parametrize("width", [80, 100, 200])
async def test_overview_drops_the_least_important_columns_when_narrow(
    width: int, sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(*(sim_session(sim_url, f"session-{i}", key=sim_key) for i in range(3)))
    app = TokentopApp(config, theme_dirs=theme_dirs, autostart=False)
    async with app.run_test(size=(width, 30)) as pilot:
        overview = _overview(app)
        await wait_until(pilot, lambda: overview.table.row_count == 3, what="rows")
        await pilot.pause()
        keys = [c.key for c in overview.columns]
        table = overview.table
        # every column shown whole: the table's columns fit in the width
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= width
        assert keys[:2] == ["state", "name"]
        assert {"ttft", "rate", "runs", "ok", "p95"} <= set(keys)  # monitoring first
        if width <= 100:
            assert "trend" not in keys and "api" not in keys
        if width >= 200:
            assert set(keys) == {c.key for c in COLUMNS}
