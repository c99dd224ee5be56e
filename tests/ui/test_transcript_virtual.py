"""Long Markdown answers: closed segments far from the view hide their blocks behind their
measured height (layouts stay small), and show them again when the view comes near."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from tests.ui.conftest import settle, wait_until
from tui.stream.events import TextDelta
from tui.ui.widgets import answer as answer_module
from tui.ui.widgets.answer import PLAIN_AFTER_CHARS
from tui.ui.widgets.transcript import TranscriptView


class ViewApp(App[None]):
    def compose(self) -> ComposeResult:
        yield TranscriptView(id="view")


def long_markdown(chars: int) -> str:
    parts: list[str] = []
    i = 0
    while sum(map(len, parts)) < chars:
        parts.append(f"### Part {i}\n\nSome *text* for part {i}, long enough to wrap. " * 2)
        parts.append(f"\n\n- item {i}a\n- item {i}b\n\n")
        i += 1
    return "".join(parts)


def shown_blocks(view: TranscriptView) -> list[int]:
    return [sum(1 for b in seg.widget.children if b.display) for seg in view._answer.segments]


async def test_far_segments_hide_their_blocks_and_come_back_near_the_view(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Short segments (each still taller than two screens): the behaviour is the same as at
    # the shipped size, for a fifth of the Markdown blocks to mount and lay out.
    segment_chars = 1_200
    monkeypatch.setattr(answer_module, "SEGMENT_CHARS", segment_chars)
    text = long_markdown(5 * segment_chars)
    assert len(text) < PLAIN_AFTER_CHARS
    app = ViewApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(TranscriptView)
        for start in range(0, len(text), 500):  # streamed in pieces, as a run would
            view.apply(TextDelta(0.0, text[start : start + 500]))
            await view.flush()
            await pilot.pause()
        await settle(pilot)
        assert len(view._answer.segments) >= 3
        assert view._answer.segments[0].widget.region.height > 2 * 24
        assert view.rendered_text == text
        # following the end: the first segments are frozen, their height kept
        await wait_until(pilot, lambda: view._answer.segments[0].frozen, what="a frozen segment")
        first = view._answer.segments[0].widget
        assert shown_blocks(view)[0] == 0 and first.region.height > 0
        height_frozen = view.virtual_size.height
        assert not view._answer.segments[-1].frozen and shown_blocks(view)[-1] > 0
        # scrolling to the top brings the first segment's blocks back, at the same height
        view.scroll_home(animate=False, immediate=True)
        await wait_until(pilot, lambda: not view._answer.segments[0].frozen, what="thawed")
        await settle(pilot)
        assert shown_blocks(view)[0] == len(first.children) > 0
        assert view.virtual_size.height == height_frozen
        # a new width shows everything again (the heights changed)
        await pilot.resize_terminal(60, 24)
        await settle(pilot)
        view.scroll_home(animate=False, immediate=True)
        await settle(pilot)
        assert not view._answer.segments[0].frozen


async def test_a_long_reasoning_switches_to_plain_text_and_a_new_run_starts_in_markdown() -> None:
    from textual.widgets import Markdown

    from tui.stream.events import ReasoningDelta
    from tui.ui.widgets.plain_text import PlainText

    app = ViewApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(TranscriptView)
        block = view.query_one("#reasoning")
        markdown = view.query_one("#reasoning-md", Markdown)
        view.apply(ReasoningDelta(0.0, "short *thought*\n\n"))
        await view.flush()
        assert not block.query(PlainText) and markdown.display
        # past the answer's limit, the reasoning is one plain view (no Markdown blocks)
        long_text = "a thought that goes on\n\n" * (PLAIN_AFTER_CHARS // 20)
        view.apply(ReasoningDelta(0.0, long_text))
        await view.flush()
        (plain,) = block.query(PlainText)
        assert plain.text == "short *thought*\n\n" + long_text
        assert not markdown.display and not markdown.children
        view.apply(ReasoningDelta(0.0, "the end"))
        await view.flush()
        assert plain.text.endswith("goes on\n\nthe end") and view.reasoning_text == plain.text
        block.collapsed = False
        await wait_until(pilot, lambda: plain.region.height > 1, what="the plain reasoning")
        # a new run starts in Markdown again
        view.reset()
        await wait_until(pilot, lambda: not block.query(PlainText), what="plain view gone")
        view.apply(ReasoningDelta(0.0, "new *run*"))
        await view.flush()
        await settle(pilot)
        assert markdown.display and markdown.children and not block.query(PlainText)
