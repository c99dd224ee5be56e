"""Textual internals tokentop reads (tui/ui/textual_private.py): fail when Textual changes them."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.ui.textual_private import anchor_released


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
