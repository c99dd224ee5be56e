"""Monitoring in the dashboard: the header's run counts, the overview's figures over a window,
the monitor view, alerts, the quit guard and bounded memory over many runs."""

from __future__ import annotations

from pathlib import Path

from tests.ui.conftest import app_config, sim_session, wait_until
from tui.config import Repeat
from tui.ui.app import TokentopApp
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
