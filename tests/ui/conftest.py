"""Helpers for the dashboard tests: configs on the simulator, polling waits, theme dirs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot

from tui.config import AppConfig, ReconnectPolicy, SessionConfig, UiConfig

SHIPPED_THEMES = Path(__file__).resolve().parents[2] / "themes"


def sim_session(
    sim_url: str,
    name: str,
    *,
    model: str = "sim",
    api: str = "responses",
    prompt: str = "Say something.",
    timing: str | None = "ttft=0.02,tps=400,tokens=60",
    key: str | None = None,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> SessionConfig:
    """A session on the test simulator, with fast timing by default."""
    all_headers = dict(headers or {})
    if timing is not None:
        all_headers["X-Sim-Timing"] = timing
    if key is not None:
        all_headers["X-Sim-Key"] = f"{key}-{name}"
    kwargs.setdefault(
        "reconnect", ReconnectPolicy(max_retries=1, backoff_initial_s=0.05, backoff_max_s=0.1)
    )
    return SessionConfig(
        name=name,
        model=model,
        prompt=prompt,
        base_url=sim_url,
        api=api,  # type: ignore[arg-type]
        headers=all_headers,
        **kwargs,
    )


def app_config(
    *sessions: SessionConfig, theme: str | None = None, keymap: Mapping[str, str] | None = None
) -> AppConfig:
    """An AppConfig built in code."""
    return AppConfig(
        path=None, sessions=sessions, ui=UiConfig(theme=theme), keymap=dict(keymap or {})
    )


async def wait_until(
    pilot: Pilot[Any], predicate: Callable[[], bool], *, within: float = 20.0, what: str = ""
) -> None:
    """Poll ``predicate`` between short pilot pauses until it holds (fails after ``within`` s)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.05)


async def paste(pilot: Pilot[Any], text: str) -> None:
    """Give ``text`` to the focused widget as one paste, as a terminal delivers pasted text.

    ``pilot.press`` waits after every key until the process is idle, at most about 2 s; with
    streams running the process is never idle, so typing a word key by key takes seconds per
    character. A paste is one event and one wait.
    """
    await wait_until(pilot, lambda: pilot.app.focused is not None, what="a focused widget")
    focused = pilot.app.focused
    assert focused is not None
    focused.post_message(events.Paste(text))
    await pilot.pause()


async def quit_app(pilot: Pilot[Any]) -> None:
    """Press ``q`` as a person would, and answer ``y`` when the quit guard asks (runs are
    active or repeats scheduled); returns once the app has stopped running."""
    from tui.ui.screens.quit import QuitConfirm

    app = pilot.app
    await pilot.press("q")
    if app.is_running and isinstance(app.screen, QuitConfirm):
        await pilot.press("y")
    await wait_until(pilot, lambda: not app.is_running, what="the app to quit")


async def settle(pilot: Pilot[Any]) -> None:
    """Let timers fire and pending flushes complete (a few short pauses)."""
    for _ in range(3):
        await pilot.pause(0.06)
    await asyncio.sleep(0)


@pytest.fixture
def theme_dirs(tmp_path: Path) -> list[Path | None]:
    """Shipped themes plus an empty user theme dir (tests write into ``[1]``)."""
    user = tmp_path / "user-themes"
    user.mkdir()
    return [SHIPPED_THEMES, user]
