"""A compare replayed: two turns broadcast from the compare screen to two sessions (the
simulator, a real SQLite file) are stored linked, and History's ``c`` replays both columns
side by side on one clock, timed and instantly, each turn's text as stored; a conversation
that no broadcast sent with others says so."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from tests.ui.conftest import app_config, paste, sim_session, wait_until
from tui.store import Store
from tui.ui.app import TokentopApp
from tui.ui.screens.compare import CompareScreen
from tui.ui.screens.compare_replay import CompareReplayScreen
from tui.ui.screens.history import HistoryScreen
from tui.ui.screens.replay import ReplayScreen

FAST = "ttft=0.01,tps=0,tokens=20"
PROMPTS = ("Name a river.", "Now shorter.")


def _notes(app: TokentopApp, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    notes: list[str] = []
    original = app.notify

    def recording_notify(message: str, **kwargs: Any) -> None:
        notes.append(message)
        original(message, **kwargs)

    monkeypatch.setattr(app, "notify", recording_notify)
    return notes


async def _stored_answers(store: Store, conversation_id: str) -> list[str]:
    record = await store.get_conversation(conversation_id)
    assert record is not None
    return [turn.run.output_text for turn in record.turns]


async def test_a_compare_broadcast_is_stored_linked_and_replays_side_by_side(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], tmp_path: Path
) -> None:
    config = app_config(
        sim_session(sim_url, "left", key=sim_key, timing=FAST),
        sim_session(sim_url, "right", key=sim_key, timing=FAST, api="chat"),
    )
    db = tmp_path / "t.db"
    app = TokentopApp(config, db_path=db, theme_dirs=theme_dirs, autostart=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(pilot, lambda: app.begun, what="start")
        left, right = app.sessions
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen), what="compare")
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        for turns, prompt in enumerate(PROMPTS, 1):
            compare.set_focus(compare.prompt_box)
            await paste(pilot, prompt)
            await pilot.press("enter")
            await wait_until(
                pilot,
                lambda n=turns: all(  # type: ignore[misc]
                    len(s.conversation.turns) == n and not s.running for s in (left, right)
                ),
                what=f"turn {turns} in both columns",
                within=30,
            )
        store = app.database.store
        assert store is not None
        await store.flush()
        cids = [s.conversation.conversation_id for s in (left, right)]
        columns = await store.compared_conversations(cids[1])
        assert [(c.conversation_id, c.session) for c in columns] == list(
            zip(cids, ("left", "right"), strict=True)
        )
        with sqlite3.connect(db) as conn:  # one broadcast per send, a run of each column
            sent = conn.execute(
                "SELECT broadcast_id, count(*), count(DISTINCT session_name) FROM runs "
                "GROUP BY broadcast_id ORDER BY min(id)"
            ).fetchall()
        assert [(n, s) for _, n, s in sent] == [(2, 2), (2, 2)] and sent[0][0] != sent[1][0]
        answers = [await _stored_answers(store, cid) for cid in cids]

        compare.focus_columns()
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.main_screen, what="back")
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        await wait_until(pilot, lambda: len(history.runs) == 4, what="the four runs")
        await pilot.press("C")
        await wait_until(
            pilot, lambda: isinstance(app.screen, CompareReplayScreen), what="compare replay"
        )
        replay = app.screen
        assert isinstance(replay, CompareReplayScreen)
        await pilot.press("plus", "plus")  # 4x: the pause between the turns is up to 2 s
        await wait_until(pilot, lambda: replay.done, what="the timed replay", within=30)
        assert replay.error is None and not replay.clock.instant  # played with its timing
        assert replay.clock.speed == 4.0
        shown = replay.columns
        assert [c.column.session for c in shown] == ["left", "right"]
        for column, expected in zip(shown, answers, strict=True):
            assert [t.prompt for t in column.played] == list(PROMPTS)
            assert column.answers == expected
            assert expected[1].startswith('(turn 2) Following up on "Name a river."')

        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is history, what="history again")
        instant = CompareReplayScreen(store, cids[0], None)
        await app.push_screen(instant)
        await wait_until(pilot, lambda: instant.done, what="the instant replay")
        for column, expected in zip(instant.columns, answers, strict=True):
            assert column.answers == expected and column.stored is not None
        instant.action_restart()  # again, instantly, from the start
        await wait_until(pilot, lambda: instant.done, what="the instant replay again")
        assert [c.answers for c in instant.columns] == answers
        await pilot.press("escape")
        slow = CompareReplayScreen(store, cids[0], 0.25)  # i while it plays: the rest whole
        await app.push_screen(slow)
        await wait_until(pilot, lambda: bool(slow.columns), what="the slow replay")
        await pilot.press("i")
        await wait_until(pilot, lambda: slow.done, what="the rest at once")
        assert slow.clock.instant and [c.answers for c in slow.columns] == answers

        # a conversation's own replay (as `tokentop replay ID` opens it) names its compare,
        # and C replays the columns from there
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is history, what="history again")
        app.open_replay(cids[1], None, cids[1])
        await wait_until(pilot, lambda: isinstance(app.screen, ReplayScreen), what="replay")
        alone = app.screen
        assert isinstance(alone, ReplayScreen)
        await wait_until(pilot, lambda: alone.done, what="the conversation replayed")
        line = str(alone.query_one("#replay-compared", Static).render())
        assert "a column of a compare: left (sim), right (sim)" in line
        await pilot.press("C")
        await wait_until(
            pilot, lambda: isinstance(app.screen, CompareReplayScreen), what="its columns"
        )
        columns_screen = app.screen
        assert isinstance(columns_screen, CompareReplayScreen)
        await wait_until(pilot, lambda: columns_screen.done, what="the columns, instantly")
        assert [c.answers for c in columns_screen.columns] == answers


async def test_a_conversation_held_alone_says_it_has_no_columns(
    sim_url: str,
    sim_key: str,
    theme_dirs: list[Path | None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = app_config(sim_session(sim_url, "solo", key=sim_key, timing=FAST))
    app = TokentopApp(config, db_path=tmp_path / "t.db", theme_dirs=theme_dirs, autostart=False)
    notes = _notes(app, monkeypatch)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.begun, what="start")
        (solo,) = app.sessions
        solo.start("Alone.")
        await wait_until(pilot, lambda: bool(solo.history) and not solo.running, what="run")
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        await wait_until(pilot, lambda: len(history.runs) == 1, what="the run")
        await pilot.press("C")
        await wait_until(pilot, lambda: any("no columns" in n for n in notes), what="the note")
        assert app.screen is history  # nothing to open
        cid = solo.conversation.conversation_id
        (note,) = [n for n in notes if "no columns" in n]
        assert cid in note and "not sent in a compare broadcast" in note
        store = app.database.store
        assert store is not None
        opened = CompareReplayScreen(store, cid)  # opened anyway: the screen says so too
        await app.push_screen(opened)
        await wait_until(pilot, lambda: opened.error is not None, what="the reason")
        assert opened.error is not None and "no columns to replay" in opened.error
        assert opened.columns == []
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is history, what="history again")
        await pilot.press("enter")  # its own replay names no compare; c says why
        await wait_until(pilot, lambda: isinstance(app.screen, ReplayScreen), what="replay")
        replay = app.screen
        assert isinstance(replay, ReplayScreen)
        await wait_until(pilot, lambda: replay.compared is not None, what="the store read")
        assert not replay.has_class("-compared")
        notes.clear()
        await pilot.press("C")
        await wait_until(pilot, lambda: any("no columns" in n for n in notes), what="the note")
        assert app.screen is replay
