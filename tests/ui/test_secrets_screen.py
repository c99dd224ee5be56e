"""The canary on the dashboard: servers that echo the API key (see
``tests/test_secrets_everywhere.py``) never get it, nor an 8-character fragment of it, onto
the screen (transcript, raw events, error lines), into a notification, or into the store's
files while the app has them open (the database and its WAL, as bytes). Both APIs."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest

from tests.test_secrets_everywhere import EXPECTED, KEY_ENV, EchoServers, assert_clean, canary_key
from tests.ui.conftest import app_config, settle, wait_until
from tui.config import load_config
from tui.session.redact import REDACTED
from tui.ui.app import TokentopApp

_TEXT = re.compile(r"<text[^>]*>(.*?)</text>", re.S)


def screen_text(app: TokentopApp) -> str:
    """The characters on the screen now, line by line as the SVG screenshot has them."""
    svg = app.export_screenshot()
    return "\n".join(html.unescape(t).replace("\xa0", " ") for t in _TEXT.findall(svg))


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.rglob("*") if p.is_file()}


async def test_the_dashboard_never_shows_or_stores_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, theme_dirs: list[Path | None]
) -> None:
    key = canary_key()
    monkeypatch.setenv(KEY_ENV, key)
    db = tmp_path / "runs.db"
    async with EchoServers(key, every_pair=False) as echo:
        path = tmp_path / "sessions.toml"
        path.write_text(echo.config_text(), encoding="utf-8")
        config = app_config(*load_config(path).sessions)
        app = TokentopApp(config, db_path=db, theme_dirs=theme_dirs)
        notes: list[str] = []
        original = app.notify

        def recording_notify(message: str, **kwargs: Any) -> None:
            notes.append(f"{kwargs.get('title', '')}: {message}")
            original(message, **kwargs)

        monkeypatch.setattr(app, "notify", recording_notify)
        async with app.run_test(size=(170, 45)) as pilot:
            await wait_until(
                pilot,
                lambda: (
                    len(app.sessions) == 4
                    and all(s.current is not None and s.current.done for s in app.sessions)
                ),
                what="every run ended",
            )
            await settle(pilot)
            states = {
                s.name: s.current.finished.status
                for s in app.sessions
                if s.current is not None and s.current.finished is not None
            }
            assert states == EXPECTED
            seen = [screen_text(app)]
            main = app.main_screen
            assert main is not None
            for live in app.sessions:
                main.show_session(live.name)
                await settle(pilot)
                pane = main.current_pane
                assert pane is not None
                if not pane.raw_log.region.width:
                    await pilot.press("v")  # the raw events, beside the transcript
                    await settle(pilot)
                seen.append(screen_text(app))
                # what the views hold beyond the visible rows
                run = live.current
                assert run is not None
                seen.append(run.accumulator.output_text + repr(list(run.debug_events)))
            # the store's files while it is open: the WAL holds the newest pages
            assert app.store is not None
            await app.store.flush()
            files = _files(tmp_path)
            assert {"runs.db", "runs.db-wal"} <= set(files)
    for name, data in files.items():
        if name != "sessions.toml":
            assert_clean(key, data, name)
    for i, text in enumerate(seen):
        assert_clean(key, text, f"screen {i}")
    assert_clean(key, "\n".join(notes), "notifications")
    assert any("failed" in n for n in notes)  # the two failed runs were announced
    assert any(REDACTED in text for text in seen[1:])  # the transcript shows the marker
    assert any("response.output_text.delta" in text for text in seen[1:])  # and raw events
