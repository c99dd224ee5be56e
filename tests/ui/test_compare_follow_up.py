"""Compare is a conversation with every checked column: the prompt box's first prompt is
turn 1 of each, the next one a follow-up that each column continues in its own
conversation (the simulator's answers say which turn they answer)."""

from __future__ import annotations

from pathlib import Path

from tests.ui.conftest import app_config, paste, sim_session, wait_until
from tui.ui.app import TokentopApp
from tui.ui.screens.compare import CompareScreen

FAST = "ttft=0.01,tps=0,tokens=20"


async def test_the_prompt_box_sends_a_follow_up_to_each_checked_column(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(sim_url, "left", key=sim_key, timing=FAST),
        sim_session(sim_url, "right", key=sim_key, timing=FAST, api="chat"),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs, autostart=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(pilot, lambda: app.begun, what="start")
        left, right = app.sessions
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen), what="compare")
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        for prompt, turns in (("Name a river.", 1), ("Now shorter.", 2)):
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
        for session in (left, right):
            view = session.conversation
            assert [t.prompt for t in view.turns] == ["Name a river.", "Now shorter."]
            assert view.turns[1].answer.startswith('(turn 2) Following up on "Name a river."')
            assert len({t.run_id for t in view.turns}) == 2
