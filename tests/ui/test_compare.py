"""CompareScreen: broadcast one prompt to simulated sessions, compare answers, word diff."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import httpx
import pytest
from textual import events
from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Select

from tests.ui.conftest import settle, wait_until
from tui.config import SessionConfig
from tui.session import SessionController, SessionRuntime
from tui.ui.diff import word_diff
from tui.ui.screens.compare import CompareColumn, CompareScreen, DiffScroll, DiffText
from tui.ui.widgets.badges import FinishBadge
from tui.ui.widgets.metrics_bar import MetricsBar
from tui.ui.widgets.transcript import TranscriptView


def session(name: str, *, tokens: int, seed: int, model: str = "sim-fast") -> SessionConfig:
    """A fast simulated session; the same seed and prompt give the same words, so a session
    with more tokens answers with a longer version of the same text."""
    return SessionConfig(
        name=name,
        model=model,
        prompt="unused: the compare screen sends its own prompt",
        base_url="sim",
        headers={"X-Sim-Timing": f"ttft=0.02,tps=400,jitter=0,tokens={tokens},seed={seed}"},
    )


class CompareApp(App[None]):
    """Opens a CompareScreen over LiveSessions that talk to the test simulator."""

    def __init__(
        self, sim_url: str, sessions: Sequence[SessionConfig], *, open_compare: bool = True
    ) -> None:
        super().__init__()
        self.sim_url = sim_url
        self.configs = sessions
        self.open_compare = open_compare
        self.client = httpx.AsyncClient(timeout=30)
        self.live: list[SessionController] = []

    async def on_mount(self) -> None:
        self.runtime = SessionRuntime(
            self.configs, client=self.client, simulator=lambda: self.sim_url
        )
        self.live = self.runtime.controllers
        await self.runtime.start()
        if self.open_compare:
            await self.push_screen(CompareScreen(self.live))

    async def on_unmount(self) -> None:
        await self.runtime.close()
        await self.client.aclose()


@pytest.fixture
async def three(sim_url: str) -> AsyncIterator[CompareApp]:
    """Three sessions: b is a longer version of a's answer, c is a different answer."""
    yield CompareApp(
        sim_url,
        [
            session("a", tokens=40, seed=1),
            session("b", tokens=70, seed=1),
            session("c", tokens=50, seed=2, model="sim"),
        ],
    )


async def wait_for_runs(app: CompareApp) -> None:
    """Wait until every stream worker ended and every transcript rendered what it got."""
    await app.runtime.wait_idle()
    screen = app.screen
    assert isinstance(screen, CompareScreen)
    for column in screen.columns:
        await column.query_one(TranscriptView).flush()


async def test_broadcast_reaches_every_session(three: CompareApp) -> None:
    async with three.run_test(size=(160, 40)) as pilot:
        screen = three.screen
        assert isinstance(screen, CompareScreen)
        await pilot.pause()
        assert len(screen.columns) == 3
        prompt_box = screen.query_one("#compare-prompt", Input)
        assert prompt_box.has_focus
        prompt_box.value = "explain streaming latency"
        await pilot.press("enter")
        await wait_for_runs(three)
        await pilot.pause()

        for column, live in zip(screen.columns, three.live, strict=True):
            run = live.current
            assert run is not None and run.done
            assert run.prompt == "explain streaming latency"
            assert column.run is run
            view = column.query_one(TranscriptView)
            assert run.accumulator.output_text  # the simulator answered
            assert view.text == run.accumulator.output_text
            assert view.rendered_text == run.accumulator.output_text
            badge = column.query_one(FinishBadge)
            assert badge.status == "completed" and badge.reason == "stop"
            column.publish_metrics()
            snapshot = column.query_one(MetricsBar).snapshot
            assert snapshot is not None and snapshot.output_tokens
        # b's answer is a's answer continued; c's is another answer.
        a, b, c = (live.current.accumulator.output_text for live in three.live if live.current)
        assert b.startswith(a.rstrip()) and len(b) > len(a)
        assert not c.startswith(a[:40])
        assert prompt_box.value == ""


async def test_broadcast_only_to_checked_sessions(three: CompareApp) -> None:
    async with three.run_test(size=(160, 40)) as pilot:
        screen = three.screen
        assert isinstance(screen, CompareScreen)
        await pilot.pause()
        screen.columns[1].selected = False
        assert screen.broadcast("only a and c") == ["a", "c"]
        await wait_for_runs(three)
        assert three.live[0].current is not None and three.live[0].current.prompt == "only a and c"
        assert three.live[1].current is None
        assert three.live[2].current is not None and three.live[2].current.done

        screen.focus_columns()  # keys typed in the prompt box are text, not commands
        await pilot.press("a")  # not all checked -> check all
        assert all(column.selected for column in screen.columns)
        await pilot.press("a")  # all checked -> uncheck all
        assert not any(column.selected for column in screen.columns)
        assert screen.broadcast("nobody") == []


async def test_diff_mode_highlights_word_differences(three: CompareApp) -> None:
    async with three.run_test(size=(160, 40)) as pilot:
        screen = three.screen
        assert isinstance(screen, CompareScreen)
        await pilot.pause()
        screen.focus_columns()
        await pilot.press("d")  # nothing ran yet: refused, no diff
        assert not screen.diff_mode

        screen.broadcast("how do retries work")
        await wait_for_runs(three)
        await pilot.press("d")
        assert screen.diff_mode
        await pilot.pause()
        a, b, c = screen.columns
        assert a.has_class("-diff-side") and b.has_class("-diff-side")
        assert not c.has_class("-diff-side")
        assert not a.query_one(TranscriptView).display

        left, right = a.query_one(DiffText), b.query_one(DiffText)
        assert "".join(text for text, _ in left.pieces) == a.output_text
        assert "".join(text for text, _ in right.pieces) == b.output_text
        # b continues a: what b adds is highlighted as inserted, at the end.
        assert right.highlighted and all(kind == "insert" for _, kind in right.highlighted)
        assert right.pieces[-1][1] == "insert"
        assert b.output_text.endswith(right.pieces[-1][0])
        assert screen.diff is not None and not screen.diff.identical
        # The highlight styles resolve from the theme (not plain text).
        assert left.render().plain == a.output_text
        rendered = right.render()
        assert any(span.style for span in rendered.spans)

        # Pick c as the right side: a completely different answer.
        screen.query_one("#diff-right", Select).value = 2
        await pilot.pause()
        assert screen.diff_pair == (0, 2)
        assert c.has_class("-diff-side") and not b.has_class("-diff-side")
        assert screen.diff is not None and screen.diff.similarity() < 0.9
        assert "".join(t for t, _ in c.query_one(DiffText).pieces) == c.output_text

        await pilot.press("d")
        assert not screen.diff_mode
        assert not any(col.has_class("-diff-side") for col in screen.columns)

        # A new run in a diffed session (a repeat, a restart elsewhere) ends diff mode.
        await pilot.press("d")
        assert screen.diff_mode
        three.live[2].start("c runs again")
        await wait_for_runs(three)
        await pilot.pause()
        assert not screen.diff_mode
        assert not c.has_class("-diff-side")


async def test_identical_answers_say_so(sim_url: str) -> None:
    app = CompareApp(sim_url, [session("x", tokens=30, seed=4), session("y", tokens=30, seed=4)])
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await pilot.pause()
        screen.broadcast("same question")
        await wait_for_runs(app)
        screen.action_toggle_diff()
        await pilot.pause()
        assert screen.diff is not None and screen.diff.identical
        x, y = screen.columns
        assert x.query_one(DiffText).highlighted == []
        assert y.query_one(DiffText).highlighted == []


async def test_many_sessions_scroll_horizontally_and_link(sim_url: str) -> None:
    # Every check waits on the state it needs (a layout, a scroll, a render), however long
    # a loaded machine takes to get there.
    configs = [session(f"s{i}", tokens=200, seed=i) for i in range(6)]
    app = CompareApp(sim_url, configs)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        columns_box = screen.query_one("#compare-columns")
        # six columns do not fit in 80 cells
        await wait_until(pilot, lambda: columns_box.max_scroll_x > 0, what="a wide layout")
        assert columns_box.has_class("-many")
        first: CompareColumn = screen.columns[0]
        assert first.size.width >= 20

        screen.broadcast("a long answer please")
        await wait_for_runs(app)
        views = [column.query_one(TranscriptView) for column in screen.columns]
        await wait_until(
            pilot, lambda: all(v.max_scroll_y > 3 for v in views[:2]), what="long answers"
        )
        screen.focus_columns()
        assert columns_box.scroll_x == 0
        await pilot.press(*"]" * 5)  # to the sixth column, out of view at first
        last = screen.columns[5]
        await wait_until(pilot, lambda: views[5].has_focus, what="the sixth column focused")
        await wait_until(
            pilot,
            lambda: columns_box.scroll_x > 0 and last.region.right <= columns_box.region.right,
            what="the sixth column scrolled into view",
        )
        await pilot.press("right_square_bracket")  # wraps around to the first
        await wait_until(pilot, lambda: views[0].has_focus, what="back to the first column")
        await pilot.press("left_square_bracket")
        await wait_until(pilot, lambda: views[5].has_focus, what="back to the last column")
        screen.focus_columns()
        await pilot.press("l")
        await wait_until(pilot, lambda: screen.linked, what="linked")
        views[0].scroll_to(y=3, animate=False, immediate=True)
        await wait_until(pilot, lambda: views[1].scroll_y == 3, what="the linked scroll")
        await pilot.press("l")
        await wait_until(pilot, lambda: not screen.linked, what="unlinked")
        views[0].scroll_to(y=0, animate=False, immediate=True)
        await wait_until(pilot, lambda: views[0].scroll_y == 0, what="the first column at 0")
        await settle(pilot)
        assert views[1].scroll_y == 3  # unlinked: the other column stays


async def test_columns_opened_after_the_runs_show_them(sim_url: str) -> None:
    tools = SessionConfig(
        name="tools",
        model="sim-tools",
        prompt="weather in Lisbon?",
        base_url="sim",
        api="chat",
        params={
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                        },
                    },
                }
            ]
        },
    )
    app = CompareApp(sim_url, [session("a", tokens=30, seed=1), tools], open_compare=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        for live in app.live:
            live.start("first prompt")
        await app.runtime.wait_idle()
        await app.push_screen(CompareScreen(app.live))
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await pilot.pause()
        text_column, tool_column = screen.columns
        for column in screen.columns:
            await column.query_one(TranscriptView).flush()
        assert text_column.output_text
        assert text_column.query_one(TranscriptView).rendered_text == text_column.output_text
        assert text_column.query_one(FinishBadge).reason == "stop"
        run = app.live[1].current
        assert run is not None and run.accumulator.tool_calls
        call = run.accumulator.tool_calls[0]
        shown = [str(w.render()) for w in tool_column.query(".tool-call")]
        assert len(shown) == 1 and call.name is not None and call.name in shown[0]
        assert tool_column.query_one(FinishBadge).reason == "tool_calls"
        # Answers to look at: the focus is on the columns, so the screen's keys work.
        assert not screen.query_one("#compare-prompt", Input).has_focus


async def test_typing_in_the_columns_starts_a_prompt(three: CompareApp) -> None:
    async with three.run_test(size=(120, 30)) as pilot:
        screen = three.screen
        assert isinstance(screen, CompareScreen)
        await pilot.pause()
        screen.focus_columns()
        await pilot.press(*"Tell me")  # "T" is no command: the prompt box takes over
        prompt_box = screen.query_one("#compare-prompt", Input)
        assert prompt_box.has_focus and prompt_box.value == "Tell me"
        assert not screen.linked  # the "l" of "Tell" went into the prompt, not to a command
        assert all(column.selected for column in screen.columns)  # nor did "a"s elsewhere
        await pilot.press("escape")
        assert not prompt_box.has_focus
        await pilot.press("l")  # a command key while the columns have the focus
        assert screen.linked

        # Keys that arrive together (a fast typist, a paste) all land in the prompt, even
        # those that come before the focus has moved.
        prompt_box.value = ""
        screen.focus_columns()
        await pilot.pause()
        for char in "Tell all":
            key = "space" if char == " " else char
            three.post_message(events.Key(key, char))
        await pilot.pause()
        assert prompt_box.value == "Tell all"
        assert screen.linked  # unchanged by the "l"s


class DiffPairApp(App[None]):
    """Two DiffText sides of a fixed diff (Korean prose and a code block), for a snapshot."""

    LEFT = (
        "## 스트리밍 지연\n\n첫 토큰까지의 시간은 250 ms 입니다. "
        "The stream keeps a steady pace.\n\n"
        "```python\ndef rate(tokens, elapsed):\n    return tokens / elapsed\n```\n"
    )
    RIGHT = (
        "## 스트리밍 지연\n\n첫 토큰까지의 시간은 310 ms 입니다. "
        "The stream keeps an even pace.\n\n"
        "```python\ndef rate(tokens, elapsed):\n    return tokens / max(elapsed, 1e-9)\n```\n"
    )

    def compose(self) -> ComposeResult:
        diff = word_diff(self.LEFT, self.RIGHT)
        left, right = DiffText(), DiffText()
        left.show(diff.left_pieces())
        right.show(diff.right_pieces())
        with Horizontal():
            yield left
            yield right


def test_diff_highlight_snapshot(snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(DiffPairApp(), terminal_size=(100, 14))


async def test_next_change_scrolls_to_the_difference(sim_url: str) -> None:
    app = CompareApp(
        sim_url, [session("short", tokens=150, seed=5), session("long", tokens=400, seed=5)]
    )
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await pilot.pause()
        screen.focus_columns()
        assert screen.check_action("next_change", ()) is False  # only in diff mode
        screen.broadcast("a long answer")
        await wait_for_runs(app)
        screen.focus_columns()
        await pilot.press("d")
        assert screen.diff_mode and screen.check_action("next_change", ())
        await pilot.pause()
        long = screen.columns[1]
        scroller = long.query_one(DiffScroll)
        starts = long.query_one(DiffText).change_lines()
        # "long" continues "short": its one highlighted region starts below the first screen.
        assert len(starts) == 1 and starts[0] > scroller.size.height
        assert scroller.scroll_y == 0
        await pilot.press("n")
        await pilot.pause()
        assert scroller.scroll_y == min(starts[0], scroller.max_scroll_y)
        await pilot.press("d")
        assert not screen.diff_mode
        await pilot.press("n")  # no command outside diff mode: it starts a prompt instead
        assert screen.query_one("#compare-prompt", Input).value == "n"
