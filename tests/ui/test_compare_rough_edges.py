"""Compare screen rough edges (issue 14): what a column shows when it opens, which columns
the next prompt goes to, and Escape in the prompt box."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import events
from textual.app import App
from textual.widgets import Input, Static

from tests.ui.conftest import SHIPPED_THEMES, app_config, sim_session, wait_until
from tui.config import SessionConfig
from tui.session import SessionRuntime
from tui.ui.app import TokentopApp
from tui.ui.screens.compare import CompareColumn, CompareScreen
from tui.ui.themes import app_variable_defaults, load_themes
from tui.ui.widgets.badges import FinishBadge
from tui.ui.widgets.transcript import TranscriptView

NO_RUN = "no run yet: type a prompt below"


async def test_columns_opened_on_finished_runs_show_them_from_the_first_frame(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(sim_url, "left", key=sim_key),
        sim_session(sim_url, "right", key=sim_key, api="chat"),
        sim_session(sim_url, "never", key=sim_key),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs, autostart=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: app.begun, what="start")
        left, right, never = app.sessions
        left.start()
        right.start()
        await wait_until(pilot, lambda: left.state == right.state == "done", what="two runs")
        screen = CompareScreen(app.sessions)
        # The screen paints once its columns are mounted: at that moment each column holds
        # its session's outcome and its answer (plain text until the Markdown is rendered),
        # with no "no run yet" over a finished run.
        await app.push_screen(screen)
        for column in screen.columns[:2]:
            run = column.live.current
            assert run is not None and run.done and column.run is run
            answer = run.accumulator.output_text
            preview = column.query_one(".preview", Static)
            assert preview.display and str(preview.render()) == answer != ""
            assert column.query_one(FinishBadge).reason == "stop"
            assert not column.query_one(".run-note", Static).display
        idle = screen.columns[2]
        assert idle.run is None and never.current is None
        note = idle.query_one(".run-note", Static)
        assert note.display and str(note.render()) == NO_RUN

        # then the transcript renders the answers in place of the preview
        def rendered() -> bool:
            return all(
                column.query_one(TranscriptView).rendered_text == column.output_text
                and not column.query_one(".preview").display
                for column in screen.columns[:2]
            )

        await wait_until(pilot, rendered, what="the transcripts")
        # a new run: the old answer's preview does not stand in for it
        screen.columns[1].selected = screen.columns[2].selected = False
        assert screen.broadcast("another question") == ["left"]
        await wait_until(
            pilot,
            lambda: left.current is not None and left.current.prompt == "another question",
            what="the new run",
        )
        first = screen.columns[0]
        await wait_until(pilot, lambda: first.run is left.current, what="the column follows")
        assert not first.query_one(".preview").display


class ThemedCompare(App[None]):
    """The compare screen alone, with tokentop's themes (switching themes restyles only it)."""

    def __init__(self, sessions: list[SessionConfig]) -> None:
        super().__init__()
        self.runtime = SessionRuntime(sessions)
        self.catalog = load_themes([SHIPPED_THEMES])
        for theme in self.catalog.themes.values():
            self.register_theme(theme)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return app_variable_defaults(self.current_theme)

    async def on_mount(self) -> None:
        await self.push_screen(CompareScreen(self.runtime.controllers))


def _look(column: CompareColumn) -> tuple[Any, ...]:
    """What tells a column's send state apart: its words, the band's colours, its dimming."""
    state = column.query_one(".send-state", Static)
    style = state.rich_style
    return (
        str(state.render()),
        style.bgcolor,
        style.color,
        column.query_one(TranscriptView).opacity,
    )


async def test_checked_and_unchecked_columns_differ_in_words_colour_and_dimming(
    sim_url: str,
) -> None:
    sessions = [sim_session(sim_url, name) for name in ("alpha", "beta", "gamma")]
    app = ThemedCompare(sessions)
    async with app.run_test(size=(120, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        prompt = screen.query_one("#compare-prompt", Input)
        assert prompt.placeholder == "prompt for alpha, beta and gamma (enter sends)"
        checked, unchecked, _ = screen.columns
        unchecked.selected = False
        await wait_until(pilot, lambda: unchecked.has_class("-unchecked"), what="unchecked")
        await wait_until(pilot, lambda: "beta" not in prompt.placeholder, what="placeholder")
        assert prompt.placeholder == "prompt for alpha and gamma (enter sends)"
        for theme in [*sorted(app.catalog.themes), "textual-dark", "textual-light"]:
            app.theme = theme
            await pilot.pause()
            words, band, colour, opacity = _look(checked)
            other_words, other_band, other_colour, other_opacity = _look(unchecked)
            assert (words, opacity) == ("✓ in next prompt", 1.0), theme
            assert other_words == "○ not in next prompt" and other_opacity < 0.8, theme
            assert band != other_band and colour != other_colour, theme
        screen.action_select_all()  # all checked again
        await wait_until(pilot, lambda: not unchecked.has_class("-unchecked"), what="checked")
        for column in screen.columns:
            column.selected = False
        await wait_until(pilot, lambda: prompt.placeholder.startswith("no session"), what="none")


def burst(app: App[Any], *keys: str) -> None:
    """Keys as a terminal delivers a burst (a fast typist, a busy loop): every one queued
    before the app handles the first."""
    for key in keys:
        app.post_message(events.Key(key, "\x1b" if key == "escape" else key))


async def test_escape_in_the_prompt_box_leaves_the_box_and_keeps_the_text(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(sim_url, "left", key=sim_key), sim_session(sim_url, "right", key=sim_key)
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: app.begun and not any(s.running for s in app.sessions))
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await wait_until(pilot, lambda: screen.is_mounted, what="compare")
        prompt = screen.query_one("#compare-prompt", Input)
        assert screen.focused is not prompt  # answers to look at: the columns have the focus
        # p, then a word, then Escape, all at once: the word is in the box, the box is left,
        # the screen stays.
        burst(app, "p", "h", "i", "escape")
        await wait_until(pilot, lambda: prompt.value == "hi" and screen.focused is not prompt)
        assert app.screen is screen and screen.focused is not None
        # A letter that is no command starts typing; Escape right after it leaves the box.
        burst(app, "x", "y", "escape")
        await wait_until(pilot, lambda: prompt.value == "hixy" and screen.focused is not prompt)
        await pilot.pause(0.1)
        assert app.screen is screen
        # Escape outside the box closes compare; the draft comes back with the next compare.
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.main_screen, what="the dashboard")
        await pilot.press("c")
        again = app.screen
        assert isinstance(again, CompareScreen) and again is not screen
        await wait_until(pilot, lambda: again.is_mounted, what="compare again")
        box = again.query_one("#compare-prompt", Input)
        assert box.value == "hixy"
        await wait_until(pilot, lambda: again.focused is box, what="the box")
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: all(s.current is not None and s.current.prompt == "hixy" for s in app.sessions),
            what="the draft sent",
        )
        assert box.value == ""
