"""Textual internals tokentop reads (tui/ui/textual_private.py): fail when Textual changes them."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.ui.textual_private import anchor_released, notifications_shown, write_to_terminal


class _Tall(App[None]):
    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("\n".join(f"line {i}" for i in range(200)))


async def test_anchor_released_follows_user_scrolls() -> None:
    app = _Tall()
    async with app.run_test(size=(40, 10)) as pilot:
        view = app.query_one(VerticalScroll)
        view.anchor()
        await pilot.pause()
        assert view.is_anchored and not anchor_released(view)
        view.scroll_up(animate=False)  # what a user's scroll does: releases the anchor
        await pilot.pause()
        assert view.is_anchored and anchor_released(view)
        view.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        assert view.is_anchored and not anchor_released(view)


async def test_write_to_terminal_uses_the_driver_and_skips_a_headless_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _Tall()
    async with app.run_test(size=(40, 10)):
        driver = app._driver
        assert driver is not None and driver.is_headless
        assert callable(driver.write)
        assert write_to_terminal(app, "\x1b]9;hi\x07") is False  # tests write nothing
        written: list[str] = []
        monkeypatch.setattr(driver, "write", written.append)
        monkeypatch.setattr(type(driver), "is_headless", property(lambda self: False))
        assert write_to_terminal(app, "\x1b]9;hi\x07") is True
        monkeypatch.undo()
        assert written == ["\x1b]9;hi\x07"]


async def test_notifications_shown_counts_the_toasts() -> None:
    app = _Tall()
    async with app.run_test(size=(40, 10)) as pilot:
        assert notifications_shown(app) == 0
        app.notify("one")
        app.notify("two")
        await pilot.pause()
        assert notifications_shown(app) == 2
        app.clear_notifications()
        assert notifications_shown(app) == 0
