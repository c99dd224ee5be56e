"""A three-turn conversation in compare: two sessions on the real simulator, the first turn
and two follow-ups broadcast from the prompt box; every column shows all three turns' prompts
and answers (the earlier ones rendered once above the live turn), also when compare is opened
again on them, and the word diff compares the latest turn."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Markdown, Static

from tests.ui.conftest import app_config, paste, sim_session, wait_until
from tui.ui.app import TokentopApp
from tui.ui.screens.compare import CompareScreen
from tui.ui.widgets.compare_column import CompareColumn
from tui.ui.widgets.transcript import TranscriptView
from tui.ui.widgets.turns import TurnBlock

FAST = "ttft=0.01,tps=0,tokens=20"
PROMPTS = ("Name a river.", "Now shorter.", "In Korean.")


def _shown(column: CompareColumn) -> list[tuple[str, str]]:
    """(prompt line, answer) of every turn the column shows: the earlier blocks, then the
    live turn's heading and its transcript."""
    shown = []
    for block in column.turns.query(TurnBlock):
        prompt = str(block.query_one(".turn-prompt", Static).content)
        shown.append((prompt, block.query_one(".turn-answer", Markdown).source))
    live = str(column.turns.query_one("#live-prompt", Static).content)
    shown.append((live, column.query_one(TranscriptView).text))
    return shown


def _settled(column: CompareColumn, turns: int) -> bool:
    live = column.live
    return (
        len(live.conversation.turns) == turns
        and not live.running
        and len(column.turns.shown) == turns - 1
        and column.turns.has_class("-live") == (turns > 1)
        and not column.query_one(TranscriptView).has_pending
    )


async def test_every_column_shows_every_turn_of_its_conversation(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(sim_url, "left", key=sim_key, timing=FAST),
        sim_session(sim_url, "right", key=sim_key, timing=FAST, api="chat"),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs, autostart=False)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: app.begun, what="start")
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen), what="compare")
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        columns = compare.columns
        for turns, prompt in enumerate(PROMPTS, 1):
            compare.set_focus(compare.prompt_box)
            await paste(pilot, prompt)
            await pilot.press("enter")
            await wait_until(
                pilot,
                lambda n=turns: all(_settled(c, n) for c in columns),  # type: ignore[misc]
                what=f"turn {turns} in both columns",
                within=30,
            )
        for column in columns:
            view = column.live.conversation
            assert [t.prompt for t in view.turns] == list(PROMPTS)
            assert view.turns[2].answer.startswith('(turn 3) Following up on "Now shorter."')
            assert _shown(column) == [(f"› {t.prompt}", t.answer) for t in view.turns]
            assert column.turns.shown == [(t.turn, t.run_id) for t in view.turns[:2]]
            heading = str(column.turns.query_one("#live-turn", Static).content)
            assert heading.startswith("turn 3 · ")
        # the word diff compares the latest turn's answers
        compare.focus_columns()
        await pilot.press("d")
        await wait_until(pilot, lambda: compare.diff is not None, what="the diff")
        diff = compare.diff
        assert diff is not None
        left, right = (c.live.conversation.turns[2].answer for c in columns)
        assert (diff.left_text(), diff.right_text()) == (left, right)

        # compare opened again on the conversations: every turn from the start
        await pilot.press("d", "escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, CompareScreen), what="back")
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen), what="again")
        again = app.screen
        assert isinstance(again, CompareScreen)
        await wait_until(
            pilot, lambda: all(_settled(c, 3) for c in again.columns), what="the turns shown"
        )
        for column in again.columns:
            kept = column.live.conversation.turns
            assert _shown(column) == [(f"› {t.prompt}", t.answer) for t in kept]
