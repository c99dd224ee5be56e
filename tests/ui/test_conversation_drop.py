"""A drop inside turn 2 of a conversation in the dashboard, resumed (chat: Last-Event-ID;
Responses: a background response streamed again): the pane shows turns 1 and 2 once each and
turn 2's answer whole, with nothing doubled; the conversation stored in a real SQLite file is
what the pane showed, and its replay (the dashboard's ReplayScreen) plays those very turns.
The simulator drops turn 2 alone (``X-Sim-Fault: turn=2,...``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Markdown, Static

from tests.ui.conftest import app_config, sim_session, wait_until
from tui.ui.app import TokentopApp
from tui.ui.screens.replay import ReplayScreen
from tui.ui.widgets.session_pane import SessionPane
from tui.ui.widgets.transcript import TranscriptView
from tui.ui.widgets.turns import TurnBlock

SCRIPT = ("Name a river.", "How long is it?")


def _shown(root: SessionPane | ReplayScreen) -> list[tuple[str, str]]:
    """(prompt line, answer) of every turn shown: the earlier blocks, then the live one."""
    shown = []
    for block in root.query(TurnBlock):
        prompt = str(block.query_one(".turn-prompt", Static).content)
        shown.append((prompt, block.query_one(".turn-answer", Markdown).source))
    live = str(root.query_one("#live-prompt", Static).content)
    shown.append((live, root.query_one(TranscriptView).text))
    return shown


@pytest.mark.parametrize(
    ("api", "fault", "background"),
    [("chat", "turn=2,ids,drop=12", False), ("responses", "turn=2,drop=12", True)],
    ids=["chat-last-event-id", "responses-background"],
)
async def test_a_drop_in_turn_2_is_shown_stored_and_replayed_once(
    api: str,
    fault: str,
    background: bool,
    sim_url: str,
    sim_key: str,
    theme_dirs: list[Path | None],
    tmp_path: Path,
) -> None:
    session = sim_session(
        sim_url,
        "talk",
        key=sim_key,
        api=api,
        prompt="",
        turns=SCRIPT,
        timing="ttft=0.01,tps=2000,tokens=60",
        headers={"X-Sim-Fault": fault},
        background=background,
    )
    app = TokentopApp(app_config(session), db_path=tmp_path / "t.db", theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 50)) as pilot:
        await wait_until(pilot, lambda: app.main_screen is not None and app.begun)
        main = app.main_screen
        assert main is not None
        live = app.sessions[0]
        await wait_until(pilot, lambda: bool(main.panes), what="the panes")
        main.show_session("talk")
        await pilot.pause()
        pane = main.current_pane
        assert pane is not None
        await wait_until(
            pilot,
            lambda: (
                len(live.conversation.turns) == 2
                and not live.running
                and len(pane.turns.shown) == 1
                and not pane.transcript.has_pending
            ),
            what="both turns",
            within=30,
        )
        conv = live.conversation
        first, second = conv.turns
        assert [t.status for t in conv.turns] == ["completed", "completed"]
        # turn 1 ran clean; turn 2 dropped and resumed (no restart: nothing given up)
        runs = live.conv.runs
        assert [len(r.accumulator.attempts) for r in runs] == [1, 2]
        assert [a.mode for a in runs[1].accumulator.attempts] == [None, "resume"]
        # turn 2's answer is whole, once: one marker, the text the engine received
        assert second.answer.startswith(f'(turn 2) Following up on "{SCRIPT[0]}".')
        assert second.answer.count("(turn ") == 1
        shown = _shown(pane)
        assert shown == [(f"› {t.prompt}", t.answer) for t in conv.turns]
        assert pane.turns.shown == [(1, first.run_id)]

        # the stored conversation is what was shown
        store = app.database.store
        assert store is not None
        stored = await store.get_conversation(conv.conversation_id)
        assert stored is not None
        assert [(t.turn, t.run.run_id) for t in stored.turns] == [
            (1, first.run_id),
            (2, second.run_id),
        ]
        assert [(f"› {t.run.prompt}", t.run.output_text) for t in stored.turns] == shown
        assert all(not t.branches for t in stored.turns)  # a resume is no second try

        # its replay plays those turns
        app.database.open_replay(second.run_id, None)
        await wait_until(pilot, lambda: isinstance(app.screen, ReplayScreen), what="replay")
        replay = app.screen
        assert isinstance(replay, ReplayScreen)
        await wait_until(
            pilot,
            lambda: (
                replay.done
                and len(replay.query(TurnBlock)) == 1
                and not replay.query_one(TranscriptView).has_pending
            ),
            what="the replay of both turns",
        )
        assert replay.error is None
        assert [(t.turn, t.prompt, t.answer) for t in replay.played] == [
            (t.turn, t.run.prompt, t.run.output_text) for t in stored.turns
        ]
        assert _shown(replay) == shown
