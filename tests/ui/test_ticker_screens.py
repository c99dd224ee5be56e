"""The screens and the compare column refresh on the app's one ticker, not on timers of
their own: none of them calls ``set_interval``, and History subscribes while it is open and
unsubscribes when it closes."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from tests.ui.conftest import app_config, sim_session, wait_until
from tui.ui.app import TokentopApp
from tui.ui.screens import compare_replay, history, monitor, replay, rounds
from tui.ui.screens.history import HistoryScreen
from tui.ui.ticker import Ticker
from tui.ui.widgets import compare_column


@pytest.mark.parametrize(
    "module", [compare_column, history, monitor, rounds, replay, compare_replay]
)
def test_no_timer_of_its_own(module: object) -> None:
    assert "set_interval(" not in inspect.getsource(module)  # type: ignore[arg-type]


async def test_history_follows_the_ticker_while_open(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    config = app_config(sim_session(sim_url, "saved", key=sim_key))
    app = TokentopApp(config, db_path=tmp_path / "runs.db", theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: app.begun and app.sessions[0].state == "done")
        ticker = Ticker.of(app)
        await pilot.press("h")
        screen = app.screen
        assert isinstance(screen, HistoryScreen)

        def subscribed() -> bool:
            return any(sub.widget is screen for sub in ticker.subscriptions)

        sub = next(sub for sub in ticker.subscriptions if sub.widget is screen)
        await wait_until(pilot, lambda: sub.calls > 0, what="a live refresh of History")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not subscribed(), what="History unsubscribed")
