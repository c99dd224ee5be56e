"""A session pane's metrics line shows the run's client-bound mark once the run is judged
client-bound (tokentop's own engine loop lagged), from a real simulator run."""

from __future__ import annotations

from pathlib import Path

from tests.ui.conftest import app_config, sim_session, wait_until
from tui.session.loop_lag import ClientLag
from tui.ui.app import TokentopApp
from tui.ui.widgets.metrics_bar import CLIENT_BOUND


async def test_a_client_bound_run_is_marked_in_the_pane(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(sim_session(sim_url, "one", key=sim_key, timing="ttft=0.01,tokens=20"))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(pilot, lambda: app.begun and app.sessions[0].state == "done")
        main = app.main_screen
        assert main is not None
        main.show_session("one")
        await wait_until(pilot, lambda: main.current_pane is not None, what="the pane")
        pane = main.current_pane
        assert pane is not None
        await wait_until(pilot, lambda: pane.metrics.snapshot is not None, what="metrics")
        assert CLIENT_BOUND not in str(pane.metrics.render())
        run = pane.live.current
        assert run is not None
        run.record_client_lag(ClientLag(p99_ms=85.0, max_ms=120.0, samples=40))
        await wait_until(pilot, lambda: CLIENT_BOUND in str(pane.metrics.render()), what="the mark")
        assert "tokentop lag p99 85 ms" in str(pane.metrics.render())
