"""The metrics bar repaints itself alone while its line keeps its height, lays the screen
out again only when the line wraps to another number of lines, and does nothing for a
snapshot that shows the same text."""

from __future__ import annotations

from dataclasses import replace

from textual.app import App, ComposeResult

from tests.ui.test_metrics_bar import SNAPSHOT
from tui.ui.widgets.metrics_bar import MetricsBar


class _CountingBar(MetricsBar):
    """A metrics bar that counts its updates and the layouts they asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.updates: list[bool] = []

    def update(self, content: object = "", *, layout: bool = True) -> None:
        self.updates.append(layout)
        super().update(content, layout=layout)  # type: ignore[arg-type]


class _CountingHost(App[None]):
    def compose(self) -> ComposeResult:
        yield _CountingBar()


async def test_a_new_figure_repaints_the_bar_without_a_layout() -> None:
    app = _CountingHost()
    async with app.run_test(size=(160, 10)) as pilot:
        bar = app.query_one(_CountingBar)
        bar.snapshot = SNAPSHOT
        await pilot.pause()
        assert bar.size.height == 1
        bar.updates.clear()
        bar.snapshot = replace(SNAPSHOT, elapsed_s=9.1)
        await pilot.pause()
        assert bar.updates == [False]  # one line still: no layout
        assert "elapsed 9.1 s" in str(bar.render())
        # the same text again (a figure that moved below the shown precision): no update
        bar.snapshot = replace(SNAPSHOT, elapsed_s=9.12)
        await pilot.pause()
        assert bar.updates == [False]


async def test_a_line_that_wraps_to_more_lines_grows_the_bar() -> None:
    app = _CountingHost()
    async with app.run_test(size=(60, 10)) as pilot:
        bar = app.query_one(_CountingBar)
        assert bar.size.height == 1  # "no metrics yet"
        bar.snapshot = SNAPSHOT
        await pilot.pause()
        assert bar.updates[-1] is True
        assert bar.size.height > 1  # the whole line shown, wrapped
        bar.snapshot = None
        await pilot.pause()
        assert bar.updates[-1] is True and bar.size.height == 1
