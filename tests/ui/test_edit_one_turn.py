"""``e`` on a conversation of one turn edits that turn as ``e`` does on a longer one: the
turn runs again in the same conversation and the old answer stays in the store (a real
SQLite file) as a branch of turn 1; the edited prompt is the session's from then on."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import TextArea

from tests.ui.conftest import app_config, sim_session, wait_until
from tui.store import Store
from tui.ui.app import TokentopApp
from tui.ui.screens.prompt import PromptEditor


async def test_e_on_one_turn_keeps_the_old_answer_as_a_branch(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], tmp_path: Path
) -> None:
    db = tmp_path / "tokentop.db"
    session = sim_session(sim_url, "one", key=sim_key, prompt="First try?", api="chat")
    app = TokentopApp(app_config(session), db_path=db, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.main_screen is not None and app.begun)
        main = app.main_screen
        assert main is not None
        live = app.sessions[0]
        await wait_until(pilot, lambda: live.state == "done", what="turn 1")
        main.show_session("one")
        await pilot.pause()
        conv = live.conversation
        first_try = conv.turns[0].run_id
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptEditor), what="editor")
        editor = app.screen
        assert isinstance(editor, PromptEditor) and editor.text == "First try?"
        editor.query_one(TextArea).text = "Second try?"
        await pilot.press("ctrl+s")
        await wait_until(
            pilot,
            lambda: (
                live.state == "done"
                and bool(live.conversation.turns)
                and live.conversation.turns[0].run_id != first_try
            ),
            what="the edited turn",
        )
        after = live.conversation
        assert after.conversation_id == conv.conversation_id
        assert [t.prompt for t in after.turns] == ["Second try?"]
        assert live.prompt == "Second try?"
    store = await Store.open(db, readonly=True)
    try:
        stored = await store.get_conversation(conv.conversation_id)
    finally:
        await store.close()
    assert stored is not None and [t.turn for t in stored.turns] == [1]
    assert stored.turns[0].run.prompt == "Second try?"
    assert [b.run_id for b in stored.turns[0].branches] == [first_try]
