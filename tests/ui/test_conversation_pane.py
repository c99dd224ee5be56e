"""Conversations in a session pane, against the real simulator: the prompt line sends each
next turn, the transcript shows every turn (earlier ones rendered once), the headings and
the overview show the turn and the context's growth, a follow-up while a turn runs is
refused with its sentence, ``e`` edits the last turn (a branch in the store), a turn after
tool calls is sent as their output, ``N`` begins a new conversation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.coordinate import Coordinate
from textual.widgets import Input, TextArea

from tests.ui.conftest import app_config, paste, sim_session, wait_until
from tui.store import Store
from tui.ui.app import TokentopApp
from tui.ui.screens.main import MainScreen
from tui.ui.screens.prompt import PromptEditor
from tui.ui.widgets.session_pane import SessionPane
from tui.ui.widgets.turns import TurnBlock


def _main(app: TokentopApp) -> MainScreen:
    screen = app.main_screen
    assert screen is not None
    return screen


async def _open(app: TokentopApp, pilot: Any, name: str) -> SessionPane:
    await wait_until(pilot, lambda: app.main_screen is not None and bool(app.sessions))
    main = _main(app)
    await wait_until(pilot, lambda: bool(main.panes), what="the panes")
    main.show_session(name)
    await pilot.pause()
    pane = main.current_pane
    assert pane is not None and pane.live.name == name
    return pane


async def _say(pilot: Any, pane: SessionPane, text: str) -> None:
    """Type ``text`` on the pane's prompt line (``i`` focuses it) and press Enter."""
    if not pane.follow_up.input.has_focus:
        await pilot.press("i")
    assert pane.follow_up.input.has_focus
    await paste(pilot, text)
    await pilot.press("enter")


def _done(pane: SessionPane, turn: int) -> bool:
    run = pane.live.current
    return (
        run is not None and run.turn == turn and run.done and not pane.live.running
    ) and not pane.transcript.has_pending


async def test_three_turns_typed_into_a_pane(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], tmp_path: Path
) -> None:
    db = tmp_path / "tokentop.db"
    config = app_config(sim_session(sim_url, "chat", key=sim_key, prompt="First question?"))
    app = TokentopApp(config, db_path=db, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await _open(app, pilot, "chat")
        live = pane.live
        await wait_until(pilot, lambda: _done(pane, 1), what="turn 1")
        await wait_until(
            pilot,
            lambda: pane.follow_up.hint.startswith("turn 2: a follow-up"),
            what="the prompt line's hint",
        )
        assert not pane.turns.has_class("-live")  # one turn: no heading, as before

        await _say(pilot, pane, "Second question?")
        await wait_until(pilot, lambda: _done(pane, 2), what="turn 2")
        assert pane.follow_up.input.value == ""  # sent: the line is empty again
        assert "(turn 2)" in pane.transcript.text
        await _say(pilot, pane, "Third question?")
        await wait_until(pilot, lambda: _done(pane, 3), what="turn 3")
        await wait_until(pilot, lambda: len(pane.turns.shown) == 2, what="earlier turns")
        assert "(turn 3)" in pane.transcript.text
        conv = live.conversation
        assert [t.turn for t in conv.turns] == [1, 2, 3] and all(t.kept for t in conv.turns)
        assert pane.turns.shown == [(t.turn, t.run_id) for t in conv.turns[:2]]
        blocks = list(pane.turns.query(TurnBlock))
        assert [b.turn.prompt for b in blocks] == ["First question?", "Second question?"]
        # context growth: the live heading names the turn, its input and the total so far
        pane.refresh_metrics()
        await pilot.pause()
        third = conv.turns[2]
        assert third.input_tokens and third.input_tokens_so_far
        heading = str(pane.turns.query_one("#live-turn").render())
        assert heading.startswith(f"turn 3 · {third.input_tokens:,} in")
        assert f"({third.input_tokens_so_far:,} so far)" in heading
        # earlier blocks were rendered once: the same widgets after more refreshes
        pane.refresh_metrics()
        assert list(pane.turns.query(TurnBlock)) == blocks
        # the overview shows the turn next to the name
        main = _main(app)
        main.action_overview()
        await pilot.pause()
        assert main.overview.visible_names == ["chat"]
        cell = main.overview.table.get_cell_at(Coordinate(0, 1))
        assert str(cell) == "chat t3"
        conversation_id = conv.conversation_id
    store = await Store.open(db, readonly=True)
    try:
        stored = await store.get_conversation(conversation_id)
    finally:
        await store.close()
    assert stored is not None
    assert [t.turn for t in stored.turns] == [1, 2, 3]
    assert [t.run.prompt for t in stored.turns][1:] == ["Second question?", "Third question?"]


async def test_a_follow_up_while_a_turn_runs_is_refused_with_its_sentence(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    slow = "ttft=0.02,tps=40,tokens=4000"
    config = app_config(sim_session(sim_url, "slow", key=sim_key, timing=slow))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await _open(app, pilot, "slow")
        live = pane.live
        await wait_until(pilot, lambda: live.state == "streaming", what="streaming")
        await _say(pilot, pane, "Too early?")
        await wait_until(pilot, lambda: pane.follow_up.has_class("-refused"), what="refusal")
        await wait_until(
            pilot,
            lambda: "turn 1 is still running" in pane.follow_up.hint,
            what="the prompt line's hint",
        )
        assert pane.follow_up.input.value == "Too early?"  # kept for later
        assert live.runs_started == 1
        # Escape leaves the line with its text; the pane's keys work again
        await pilot.press("escape")
        await pilot.pause()
        assert not pane.follow_up.input.has_focus
        assert pane.follow_up.input.value == "Too early?"
        await pilot.press("x")
        await wait_until(pilot, lambda: not live.running, what="cancelled")


async def test_edit_last_turn_is_a_branch_and_new_conversation(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], tmp_path: Path
) -> None:
    db = tmp_path / "tokentop.db"
    config = app_config(sim_session(sim_url, "chat", key=sim_key, api="chat"))
    app = TokentopApp(config, db_path=db, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await _open(app, pilot, "chat")
        live = pane.live
        await wait_until(pilot, lambda: _done(pane, 1), what="turn 1")
        await _say(pilot, pane, "A follow-up?")
        await wait_until(pilot, lambda: _done(pane, 2), what="turn 2")
        first_try = live.conversation.turns[1].run_id
        await pilot.press("escape")
        await pilot.press("e")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, PromptEditor) and editor.text == "A follow-up?"
        editor.query_one(TextArea).text = "A better follow-up?"
        await pilot.press("ctrl+s")
        await wait_until(
            pilot,
            lambda: _done(pane, 2) and live.conversation.turns[1].run_id != first_try,
            what="the edited turn",
        )
        conv = live.conversation
        assert [t.prompt for t in conv.turns][1:] == ["A better follow-up?"]
        assert len(pane.turns.shown) == 1  # turn 1 stays, rendered once
        assert "(turn 2)" in pane.transcript.text
        conversation_id = conv.conversation_id

        # N: a new conversation; the transcript is emptied and the line says turn 1
        await pilot.press("N")
        await wait_until(pilot, lambda: live.conversation.conversation_id != conversation_id)
        pane.refresh_metrics()
        await pilot.pause()
        assert pane.turns.shown == [] and pane.transcript.text == ""
        await wait_until(
            pilot,
            lambda: pane.follow_up.hint.startswith("turn 1 of a new conversation"),
            what="the prompt line's hint",
        )
        await pilot.press("enter")  # Enter in the pane goes to the prompt line too
        assert pane.follow_up.input.has_focus
        await _say(pilot, pane, "Fresh start?")
        await wait_until(pilot, lambda: _done(pane, 1), what="the new turn 1")
        assert "(turn" not in pane.transcript.text
    store = await Store.open(db, readonly=True)
    try:
        stored = await store.get_conversation(conversation_id)
    finally:
        await store.close()
    assert stored is not None and [t.turn for t in stored.turns] == [1, 2]
    second = stored.turns[1]
    assert second.run.prompt == "A better follow-up?"
    assert [b.run_id for b in second.branches] == [first_try]


async def test_the_turn_after_tool_calls_is_sent_as_their_output(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(sim_session(sim_url, "tools", key=sim_key, model="sim-tools"))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await _open(app, pilot, "tools")
        live = pane.live
        await wait_until(pilot, lambda: _done(pane, 1), what="turn 1")
        assert live.conversation.pending_tool_calls
        pane.refresh_metrics()
        await wait_until(
            pilot,
            lambda: "sent as the output of the tool call get_weather" in pane.follow_up.hint,
            what="the prompt line's hint",
        )
        await _say(pilot, pane, '{"temperature": 21}')
        await wait_until(pilot, lambda: _done(pane, 2), what="turn 2")
        second = live.conversation.turns[1]
        assert second.answers_tools and second.status == "completed"
        pane.refresh_metrics()
        await pilot.pause()
        assert "tool output" in str(pane.turns.query_one("#live-turn").render())
        assert pane.query_one("#follow-up-input", Input) is pane.follow_up.input


async def test_a_scripted_conversation_that_outgrows_the_context_names_the_turn(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    script = ("Tell me about rivers.", "And lakes?", "And the sea?")
    fast = "ttft=0.01,tps=4000,tokens=120"
    session = sim_session(
        sim_url, "small", key=sim_key, model="sim-small-context", turns=script, timing=fast
    )
    app = TokentopApp(app_config(session), theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await _open(app, pilot, "small")
        live = pane.live
        await wait_until(pilot, lambda: not live.running and live.current is not None)
        assert live.current is not None and live.current.turn == 3
        acc = live.current.accumulator
        assert acc.status == "failed", (acc.status, acc.usage, acc.output_text[:80])
        banner = str(pane.query_one("#pane-error").render())
        assert "turn 3 no longer fits the model's context window" in banner
        await wait_until(pilot, lambda: len(pane.turns.shown) == 2, what="earlier turns")
        pane.refresh_metrics()
        await pilot.pause()
        assert "turn 3" in str(pane.turns.query_one("#live-turn").render())
        # the failed turn is not kept: the line offers turn 3 again
        await wait_until(
            pilot,
            lambda: pane.follow_up.hint.startswith("turn 3 again, in place of the try that ended"),
            what="the prompt line's hint",
        )
