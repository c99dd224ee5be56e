"""Long Markdown answers: closed segments far from the view hide their blocks behind their
measured height (layouts stay small), and show them again when the view comes near."""

from __future__ import annotations

from textual.app import App, ComposeResult

from tests.ui.conftest import settle, wait_until
from tui.stream.events import TextDelta
from tui.ui.widgets.answer import PLAIN_AFTER_CHARS, SEGMENT_CHARS
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


async def test_far_segments_hide_their_blocks_and_come_back_near_the_view() -> None:
    text = long_markdown(min(PLAIN_AFTER_CHARS - 2_000, 5 * SEGMENT_CHARS))
    app = ViewApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(TranscriptView)
        for start in range(0, len(text), 1_500):  # streamed in pieces, as a run would
            view.apply(TextDelta(0.0, text[start : start + 1_500]))
            await view.flush()
            await pilot.pause()
        await settle(pilot)
        assert len(view._answer.segments) >= 3
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
