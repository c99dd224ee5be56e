"""Sessions added, copied and removed from the main screen's keys (``+``, ``D``, ``-``),
against the real simulator and tokentop's own sessions file."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from tests.ui.conftest import app_config, sim_session, wait_until
from tui.config.overlay import LocalFile
from tui.ui.app import TokentopApp
from tui.ui.screens.add_session import AddSessionScreen, RemoveSessionConfirm
from tui.ui.sessions_edit import SessionsEditor


async def test_add_copy_and_remove_a_session_with_the_keys(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], tmp_path: Path
) -> None:
    local = LocalFile(tmp_path / "local.toml")
    config = app_config(sim_session(sim_url, "first", key=sim_key))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.main_screen is not None, what="the main screen")
        main = app.main_screen
        assert main is not None
        await wait_until(pilot, lambda: app.sessions[0].state == "done", what="the first run")
        # without an editor the keys say that this dashboard cannot
        main.editor = None
        await pilot.press("plus")
        await pilot.pause()
        assert not isinstance(app.screen, AddSessionScreen)
        main.editor = editor = SessionsEditor(app.runtime, local)

        await pilot.press("plus")  # an empty form; escape closes it
        await wait_until(pilot, lambda: isinstance(app.screen, AddSessionScreen), what="form")
        form = app.screen
        assert isinstance(form, AddSessionScreen) and form.duplicate_of is None
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is main, what="the form closed")

        await pilot.press("D")  # a copy of the overview's selected session
        await wait_until(pilot, lambda: isinstance(app.screen, AddSessionScreen), what="copy")
        form = app.screen
        assert isinstance(form, AddSessionScreen) and form.duplicate_of is not None
        form.query_one("#model", Input).value = "sim-fast"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(main.sessions) == 2, what="the new session")
        added = main.sessions[1]
        assert added.name == "first · 2" and main.tabs.active == "session-1"
        await wait_until(pilot, lambda: added.state == "done", what="its first run")

        await pilot.press("minus")
        await wait_until(pilot, lambda: isinstance(app.screen, RemoveSessionConfirm), what="ask")
        await pilot.press("y")
        await wait_until(pilot, lambda: len(main.sessions) == 1, what="the removal")
        assert main.overview.visible_names == ["first"]
        await editor.aclose()
    assert local.session_names() == []
