"""The app's one ticker: views on screen are called at their rate, hidden ones not at all,
a view about to be shown catches up at once, a failing view does not end the app."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static, TabbedContent, TabPane

from tests.ui.conftest import wait_until
from tui.ui.ticker import Ticker


class Counter(Static):
    """Counts its ticks."""

    def __init__(self, *, id: str, hz: float = 20.0, when_hidden: bool = False) -> None:
        super().__init__("", id=id)
        self.hz = hz
        self.when_hidden = when_hidden
        self.ticks = 0

    def on_mount(self) -> None:
        self._untick = Ticker.of(self.app).subscribe(
            self, self.tick, self.hz, when_hidden=self.when_hidden
        )

    def on_unmount(self) -> None:
        self._untick()

    def tick(self) -> None:
        self.ticks += 1


class TabsApp(App[None]):
    def compose(self) -> ComposeResult:
        with TabbedContent(initial="one"):
            with TabPane("one", id="one"):
                yield Counter(id="shown")
            with TabPane("two", id="two"):
                yield Counter(id="hidden")
                yield Counter(id="always", hz=5.0, when_hidden=True)


def counter(app: App[None], name: str) -> Counter:
    return app.query_one(f"#{name}", Counter)


async def test_only_views_on_the_top_screen_are_called_and_a_shown_one_catches_up() -> None:
    app = TabsApp()
    async with app.run_test() as pilot:
        shown, hidden, always = (counter(app, n) for n in ("shown", "hidden", "always"))
        ticker = Ticker.of(app)
        await wait_until(pilot, lambda: shown.ticks >= 6 and always.ticks >= 2, what="ticks")
        assert hidden.ticks == 0
        assert ticker.ticks >= 6 and len(ticker.subscriptions) == 3
        # the hidden tab's views catch up before it is shown, the other tab's are left
        before = shown.ticks
        ticker.catch_up(app.query_one("#two", TabPane))
        assert hidden.ticks == 1 and shown.ticks == before
        app.query_one(TabbedContent).active = "two"
        await wait_until(pilot, lambda: hidden.ticks >= 4, what="the shown tab ticks")
        # a screen on top: nothing under it is called, unless it asked to be
        await app.push_screen(Screen())
        await pilot.pause()
        frozen, later = hidden.ticks, always.ticks
        await wait_until(pilot, lambda: always.ticks >= later + 2, what="when_hidden ticks")
        assert hidden.ticks == frozen


async def test_a_failing_view_is_logged_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = TabsApp()
    async with app.run_test() as pilot:
        shown = counter(app, "shown")

        def broken() -> None:
            raise RuntimeError("boom")

        ticker = Ticker.of(app)
        with caplog.at_level(logging.ERROR, logger="tui.ui.ticker"):
            untick = ticker.subscribe(shown, broken, 20.0)
            start = shown.ticks
            await wait_until(pilot, lambda: shown.ticks >= start + 3, what="ticks go on")
        assert "periodic refresh" in caplog.text and app.is_running
        untick()
        assert len(ticker.subscriptions) == 3


async def test_a_removed_view_is_no_longer_called() -> None:
    app = TabsApp()
    async with app.run_test() as pilot:
        ticker = Ticker.of(app)
        extra = Widget()
        calls: list[int] = []
        await app.query_one("#one", TabPane).mount(extra)
        ticker.subscribe(extra, lambda: calls.append(1), 20.0)  # never unsubscribed
        await wait_until(pilot, lambda: len(calls) >= 2, what="calls")
        await extra.remove()
        await wait_until(pilot, lambda: len(ticker.subscriptions) == 3, what="dropped")
        count = len(calls)
        await pilot.pause(0.2)
        assert len(calls) == count


async def test_hidden_panes_are_not_refreshed_and_a_shown_one_is_current_at_once(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    from tests.ui.conftest import app_config, sim_session
    from tui.ui.app import TokentopApp
    from tui.ui.widgets.session_pane import SessionPane

    config = app_config(
        sim_session(sim_url, "seen", key=sim_key), sim_session(sim_url, "later", key=sim_key)
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main_screen
        assert main is not None
        await wait_until(pilot, lambda: app.begun and len(main.panes) == 2, what="panes")
        await wait_until(pilot, lambda: not any(s.running for s in app.sessions), what="runs")
        ticker = Ticker.of(app)
        later = main.panes[1]
        pane_subs = [
            s for s in ticker.subscriptions if s.widget is later or later in s.widget.ancestors
        ]
        assert {type(s.widget) for s in pane_subs} >= {SessionPane}
        calls = sum(s.calls for s in pane_subs)
        await pilot.pause(0.3)  # the overview is on screen: the hidden pane is left alone
        assert sum(s.calls for s in pane_subs) == calls
        assert later.metrics.snapshot is None
        main.show_session("later")  # caught up before its first frame, not on a later tick
        assert later.metrics.snapshot == app.sessions[1].snapshot()
        assert later.transcript.has_pending or later.transcript.text
