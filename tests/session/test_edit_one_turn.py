"""``edit_last`` on a conversation of one turn does what it does on a longer one: the turn is
sent again in the same conversation and the old answer stays in the store as a branch of
turn 1; the new prompt is the session's from then on, and a repeat schedule goes on with it
(against the real simulator and a real SQLite file)."""

from __future__ import annotations

from dataclasses import replace

import httpx

from tests.session.helpers import controller_for, until
from tests.stream.helpers import make_session
from tui.config import Repeat
from tui.store import Store

QUICK = "ttft=0.01,tps=0,tokens=20"


async def test_editing_a_one_turn_conversation_keeps_the_old_answer_as_a_branch(
    client: httpx.AsyncClient, sim_url: str, sim_key: str, store: Store
) -> None:
    session = make_session("chat", key=sim_key, timing=QUICK, prompt="First try?")
    controller = controller_for(session, client, sim_url, store=store)
    await controller.start()
    first = controller.conversation
    assert [t.prompt for t in first.turns] == ["First try?"]
    await controller.edit_last("Second try?")
    after = controller.conversation
    assert after.conversation_id == first.conversation_id
    assert [(t.turn, t.prompt) for t in after.turns] == [(1, "Second try?")]
    assert controller.prompt == "Second try?" and controller.script == ("Second try?",)
    stored = await store.get_conversation(first.conversation_id)
    assert stored is not None and len(stored.turns) == 1
    assert stored.turns[0].run.prompt == "Second try?"
    assert [b.run_id for b in stored.turns[0].branches] == [first.turns[0].run_id]
    # the next conversation sends the edited prompt
    await controller.start()
    assert controller.conversation.conversation_id != first.conversation_id
    assert [t.prompt for t in controller.conversation.turns] == ["Second try?"]


async def test_a_repeat_schedule_goes_on_with_the_edited_prompt(
    client: httpx.AsyncClient, sim_url: str, sim_key: str, store: Store
) -> None:
    session = replace(
        make_session("chat", key=sim_key, timing=QUICK, prompt="Old?"),
        repeat=Repeat(every_s=0.2, count=3),
    )
    controller = controller_for(session, client, sim_url, store=store)
    controller.start()
    await until(lambda: len(controller.conversation.turns) == 1, "the first conversation")
    edited = controller.conversation.conversation_id
    await controller.edit_last("New?")  # the branch, then two more conversations
    stored = await store.get_conversation(edited)
    assert stored is not None and stored.turns[0].run.prompt == "New?"
    assert len(stored.turns[0].branches) == 1
    prompts = [r.prompt for r in await store.list_runs(session=session.name, limit=10)]
    assert sorted(prompts) == ["New?", "New?", "New?", "Old?"]
