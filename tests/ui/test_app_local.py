"""The dashboard keeps what is changed in it in tokentop's own file (``TOKENTOP_LOCAL_CONFIG``,
a path of its own per test): a session added through the app, and the theme chosen with
ctrl+t, are there after a restart; the user's sessions file is never written; the own
file's problems are said at start-up. Real sessions file, real simulator, real app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import wait_until
from tui import paths
from tui.cli_common import EXIT_BAD_CONFIG, load_dashboard_config_or_exit
from tui.config import SessionConfig
from tui.config.overlay import LoadedConfig, load_with_local
from tui.ui.app import TokentopApp
from tui.ui.screens.main import MainScreen


def _sessions_file(tmp_path: Path, sim_url: str) -> Path:
    path = tmp_path / "sessions.toml"
    path.write_text(
        "[[sessions]]\n"
        'name = "mine"\n'
        'model = "sim"\n'
        f'base_url = "{sim_url}"\n'
        'prompt = "Say something."\n'
        'headers = { "X-Sim-Timing" = "ttft=0,tps=4000,tokens=8" }\n',
        encoding="utf-8",
    )
    return path


def _load(path: Path) -> LoadedConfig:
    return load_with_local(path, paths.local_config_path())


def _app(loaded: LoadedConfig) -> TokentopApp:
    return TokentopApp(loaded.config, local=loaded, autostart=False)


async def test_a_session_added_and_the_theme_chosen_are_kept_after_a_restart(
    tmp_path: Path, sim_url: str
) -> None:
    sessions_file = _sessions_file(tmp_path, sim_url)
    written = sessions_file.read_text(encoding="utf-8")
    app = _app(_load(sessions_file))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.begun, what="the app to begin")
        main = app.main_screen
        assert isinstance(main, MainScreen) and main.editor is app.sessions_edit
        added = SessionConfig(name="added", model="sim-fast", prompt="Hi.", base_url=sim_url)
        await app.sessions_edit.add(added)
        assert [s.name for s in app.sessions] == ["mine", "added"]
        before = app.theme
        await pilot.press("ctrl+t")
        chosen = app.theme
        assert chosen != before
    # the app wrote its last theme before it closed: nothing waits for a writer now
    assert sessions_file.read_text(encoding="utf-8") == written
    loaded = _load(sessions_file)
    assert loaded.local_error is None
    assert [s.name for s in loaded.config.sessions] == ["mine", "added"]
    assert loaded.own == {"added"} and loaded.config.ui.theme == chosen
    again = _app(loaded)
    async with again.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: again.begun, what="the app to begin again")
        assert [s.name for s in again.sessions] == ["mine", "added"]
        assert again.theme == chosen
        assert again.sessions_edit.is_own("added") and not again.sessions_edit.is_own("mine")


async def test_the_own_files_problems_are_said_at_start_up(
    tmp_path: Path, sim_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths.local_config_path().write_text(
        '[[sessions]]\nname = "broken"\nmodel = "sim"\n', encoding="utf-8"
    )
    loaded = _load(_sessions_file(tmp_path, sim_url))
    assert loaded.local_error is not None
    app = _app(loaded)
    said: list[tuple[str, Any]] = []
    original = app.notify

    def notify(message: str, **kwargs: Any) -> None:
        said.append((message, kwargs.get("title")))
        original(message, **kwargs)

    monkeypatch.setattr(app, "notify", notify)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.begun, what="the app to begin")
        own = [message for message, title in said if title == "tokentop's own file"]
        assert len(own) == 1 and "broken" in own[0] and "left out" in own[0]
        assert [s.name for s in app.sessions] == ["mine"]


def test_the_dashboard_command_loads_the_sessions_file_with_the_own_file(
    tmp_path: Path, sim_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    paths.local_config_path().write_text(
        f'[ui]\ntheme = "nord"\n\n[[sessions]]\nname = "kept"\nmodel = "sim"\n'
        f'base_url = "{sim_url}"\nprompt = "Hi."\n',
        encoding="utf-8",
    )
    loaded = load_dashboard_config_or_exit(_sessions_file(tmp_path, sim_url))
    assert [s.name for s in loaded.config.sessions] == ["mine", "kept"]
    assert loaded.config.ui.theme == "nord" and loaded.own == {"kept"}
    broken = tmp_path / "broken.toml"
    broken.write_text("[[sessions]]\nname = 3\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        load_dashboard_config_or_exit(broken)
    assert exited.value.code == EXIT_BAD_CONFIG
    assert "broken.toml" in capsys.readouterr().err
