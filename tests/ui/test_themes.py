"""Theme files: loading, validation, user overrides, runtime switching, broken files reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.color import Color

from tests.ui.conftest import SHIPPED_THEMES, app_config
from tui.ui.themes import APP_VARIABLES, load_theme_file, load_themes


def test_shipped_themes_are_valid_and_cover_dark_and_light() -> None:
    catalog = load_themes([SHIPPED_THEMES])
    assert catalog.problems == []
    assert len(catalog.themes) >= 4
    assert {t.dark for t in catalog.themes.values()} == {True, False}
    for theme in catalog.themes.values():
        # Every shipped theme sets every tokentop variable, and each one is a colour.
        assert set(APP_VARIABLES) <= set(theme.variables), theme.name
        for value in theme.variables.values():
            Color.parse(value)


def test_broken_files_are_all_reported_and_the_rest_load(tmp_path: Path) -> None:
    (tmp_path / "bad-colour.toml").write_text('name = "x1"\nprimary = "#12345z"\n')
    (tmp_path / "bad-toml.toml").write_text("name = \n")
    (tmp_path / "no-primary.toml").write_text('name = "x3"\n[variables]\nstatus-ok = "nope"\n')
    (tmp_path / "good.toml").write_text('name = "fine"\nprimary = "#102030"\ndark = false\n')
    catalog = load_themes([tmp_path])
    assert list(catalog.themes) == ["fine"]
    messages = {p.path.name: p.message for p in catalog.problems}
    assert set(messages) == {"bad-colour.toml", "bad-toml.toml", "no-primary.toml"}
    assert "'#12345z' is not a colour" in messages["bad-colour.toml"]
    assert "not valid TOML" in messages["bad-toml.toml"]
    assert "'primary' is required" in messages["no-primary.toml"]
    assert "variables.status-ok" in messages["no-primary.toml"]


def test_user_theme_overrides_shipped_theme_by_name(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('name = "tokentop-dark"\nprimary = "#ff0000"\n')
    catalog = load_themes([SHIPPED_THEMES, tmp_path])
    assert catalog.themes["tokentop-dark"].primary == "#ff0000"
    assert catalog.sources["tokentop-dark"] == tmp_path / "mine.toml"


def test_unknown_keys_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text('name = "t"\nprimary = "#000000"\nprimery = "#111111"\n')
    with pytest.raises(ValueError, match="unknown key"):
        load_theme_file(path)


def _record_notifications(app: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    notes: list[str] = []
    original = app.notify

    def recording_notify(message: str, **kwargs: Any) -> None:
        notes.append(message)
        original(message, **kwargs)

    monkeypatch.setattr(app, "notify", recording_notify)
    return notes


async def test_app_uses_config_theme_and_switches_at_runtime(
    theme_dirs: list[Path | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.ui.app import TokentopApp

    app = TokentopApp(app_config(theme="tokentop-light"), theme_dirs=theme_dirs)
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.theme == "tokentop-light"
        assert app.current_theme.dark is False
        light_bg = app.screen.styles.background
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.theme != "tokentop-light"
        assert app.screen.styles.background != light_bg
        # The app variables resolve in every theme, including Textual's built-ins.
        app.theme = "textual-dark"
        await pilot.pause()
        assert "status-failed" in app.get_css_variables()


async def test_broken_theme_file_is_reported_in_one_notification_not_fatal(
    theme_dirs: list[Path | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.ui.app import TokentopApp

    user = theme_dirs[1]
    assert user is not None
    (user / "broken1.toml").write_text('name = "b1"\nprimary = "not-a-colour"\n')
    (user / "broken2.toml").write_text("this is = = not toml\n")
    (user / "override.toml").write_text('name = "tokentop-midnight"\nprimary = "#00ff00"\n')
    app = TokentopApp(app_config(), theme="tokentop-midnight", theme_dirs=theme_dirs)
    notes = _record_notifications(app, monkeypatch)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        theme_notes = [n for n in notes if "theme file" in n]
        assert len(theme_notes) == 1
        assert "broken1.toml" in theme_notes[0] and "broken2.toml" in theme_notes[0]
        assert app.theme == "tokentop-midnight"
        assert app.current_theme.primary == "#00ff00"


async def test_unknown_theme_name_falls_back_with_a_warning(
    theme_dirs: list[Path | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.ui.app import TokentopApp

    app = TokentopApp(app_config(), theme="no-such-theme", theme_dirs=theme_dirs)
    notes = _record_notifications(app, monkeypatch)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.theme == "tokentop-dark"
        assert any("no-such-theme" in n for n in notes)
