"""``tokentop replay ID --columns``: the compare a conversation was a column of, its columns
side by side (the app gets the conversation and the flag); a conversation held alone is an
error line that says so, and no dashboard opens."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.store.test_broadcasts import _compare
from tui.store import Store


def _stored(tmp_path: Path) -> Path:
    db = tmp_path / "t.db"

    async def write() -> None:
        store = await Store.open(db)
        try:
            await _compare(store)
        finally:
            await store.close()

    asyncio.run(write())
    return db


def test_replay_columns_opens_the_compare_of_a_conversation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tui.ui.app
    from tui.cli import main

    db = _stored(tmp_path)
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(tui.ui.app, "run_dashboard", lambda config, **kw: calls.append(kw))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["replay", "conv-right", "--columns", "--db", str(db)])
    assert result.exit_code == 0, result.output
    (call,) = calls
    assert call["replay_columns"] is True and call["replay_conversation_id"] == "conv-right"
    # without the flag the conversation plays alone
    result = runner.invoke(main, ["replay", "conv-right", "--db", str(db)])
    assert result.exit_code == 0 and calls[-1]["replay_columns"] is False
    # a conversation no compare sent with others: said, exit 1, no dashboard
    result = runner.invoke(main, ["replay", "conv-alone", "--columns", "--db", str(db)])
    assert result.exit_code == 1 and len(calls) == 2
    assert "was not sent in a compare" in result.output and "conv-alone" in result.output


async def test_the_app_asked_for_columns_shows_the_compare_replay(
    tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    from tests.ui.conftest import app_config, wait_until
    from tui.ui.app import TokentopApp
    from tui.ui.screens.compare_replay import CompareReplayScreen

    db = tmp_path / "t.db"
    store = await Store.open(db)
    try:
        await _compare(store)
    finally:
        await store.close()
    app = TokentopApp(
        app_config(),
        db_path=db,
        theme_dirs=theme_dirs,
        replay_conversation_id="conv-left",
        replay_speed=None,
        replay_columns=True,
    )
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(
            pilot, lambda: isinstance(app.screen, CompareReplayScreen), what="the columns"
        )
