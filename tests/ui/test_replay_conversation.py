"""Replaying a conversation in the dashboard: three real simulator turns recorded in a real
SQLite file as the session layer records them, replayed by ``TokentopApp(replay_...)`` and
from a run of the conversation (as History opens it): every prompt as a heading, every
answer, the turns in order on the conversation's timeline, and the keys across turns."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from textual.app import App
from textual.widgets import Markdown, Static

from tests.ui.conftest import app_config, wait_until
from tui.config import SessionConfig
from tui.store import Store, TurnStart
from tui.store.replay import ReplayClock
from tui.stream.history import Conversation, Turn
from tui.stream.runner import StreamRun
from tui.ui.app import TokentopApp
from tui.ui.screens.replay import ReplayScreen
from tui.ui.widgets.transcript import TranscriptView
from tui.ui.widgets.turns import TurnBlock

PROMPTS = ("Tell me about the sea.", "Now shorter.", "In Korean, about 바다.")


@dataclass(frozen=True)
class Recorded:
    """The conversation in the store: its id, each turn's run id, prompt and answer."""

    db: Path
    conversation_id: str
    run_ids: list[str]
    answers: list[str]
    offsets: list[float]
    """Where each turn starts on the replay's timeline."""
    ends: list[float]
    """Where each turn's last event is on it."""


async def _talk(store: Store, sim_url: str, session: SessionConfig) -> tuple[str, list[str]]:
    """Three turns, each a real run carrying the turns before it (client history)."""
    cid = uuid.uuid4().hex
    kept: list[Turn] = []
    run_ids = []
    async with httpx.AsyncClient(timeout=30) as client:
        for number, prompt in enumerate(PROMPTS, 1):
            history = Conversation(turns=tuple(kept), mode="client") if kept else None
            run = StreamRun(
                session, client=client, base_url=sim_url, prompt=prompt, history=history
            )
            run_id = await store.start_run(session, prompt=prompt, conversation_id=cid, turn=number)
            async for batch in run.batches():
                store.add_events(run_id, batch)
            await store.flush()
            kept.append(Turn(prompt, (await store.get_run(run_id)).output_text))
            run_ids.append(run_id)
    return cid, run_ids


@pytest.fixture
async def recorded(sim_url: str, sim_key: str, tmp_path: Path) -> Recorded:
    session = SessionConfig(
        name="talk",
        model="sim",
        prompt="unused",
        base_url="sim",
        api="chat",
        headers={"X-Sim-Timing": "ttft=0,tps=4000,tokens=16", "X-Sim-Key": sim_key},
    )
    db = tmp_path / "runs.db"
    async with await Store.open(db) as store:
        cid, run_ids = await _talk(store, sim_url, session)
        runs = [await store.get_run(r) for r in run_ids]
        answers = [run.output_text for run in runs]
        offsets = [
            item.offset_s
            async for item in store.replay_conversation(cid)
            if isinstance(item, TurnStart)
        ]
    assert all(answers) and len(offsets) == 3
    ends = [offset + (run.ended_s or 0.0) for offset, run in zip(offsets, runs, strict=True)]
    return Recorded(db, cid, run_ids, answers, offsets, ends)


def _turns_on_screen(screen: ReplayScreen) -> list[tuple[str, str]]:
    """(prompt line, answer) of every turn shown: the earlier blocks, then the live one."""
    shown = []
    for block in screen.query(TurnBlock):
        prompt = str(block.query_one(".turn-prompt", Static).content)
        answer = block.query_one(".turn-answer", Markdown).source
        shown.append((prompt, answer))
    live = str(screen.query_one("#live-prompt", Static).content)
    shown.append((live, screen.query_one(TranscriptView).text))
    return shown


async def test_a_conversation_replayed_instantly_shows_every_prompt_and_answer(
    recorded: Recorded,
) -> None:
    app = TokentopApp(
        app_config(),
        db_path=recorded.db,
        replay_run_id=recorded.run_ids[-1],
        replay_conversation_id=recorded.conversation_id,
        replay_speed=None,
        autostart=False,
    )
    async with app.run_test(size=(110, 50)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ReplayScreen), what="the replay")
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        await wait_until(pilot, lambda: screen.done, what="the end of the replay")
        await wait_until(
            pilot,
            lambda: (
                len(screen.query(TurnBlock)) == 2
                and not screen.query_one(TranscriptView).has_pending
            ),
            what="turns 1 and 2 above the live turn 3",
        )
        assert screen.error is None
        assert [t.turn for t in screen.played] == [1, 2, 3]
        assert _turns_on_screen(screen) == [
            (f"› {p}", a) for p, a in zip(PROMPTS, recorded.answers, strict=True)
        ]
        title = str(screen.query_one("#replay-title", Static).content)
        assert recorded.conversation_id in title and "3 turns" in title
        headings = [str(s.content) for s in screen.query(".turn-heading").results(Static)]
        assert [h.split(" · ")[0] for h in headings] == ["turn 1", "turn 2"]
        assert str(screen.query_one("#live-turn", Static).content).startswith("turn 3")
        await pilot.press("escape")  # closing the replay quits a command-line replay
        await wait_until(pilot, lambda: not app.is_running, what="the app to quit")


class _Host(App[None]):
    def __init__(self, screen: ReplayScreen) -> None:
        super().__init__()
        self.replay = screen

    def on_mount(self) -> None:
        self.push_screen(self.replay)


async def test_a_run_of_a_conversation_replays_its_turns_in_order_at_speed(
    recorded: Recorded,
) -> None:
    """Opened on turn 2's run (as History opens a run), on a clock whose wall time the test
    moves: a turn starts only when the clock reaches its place, after the one before it."""
    wall = [0.0]
    async with await Store.open(recorded.db, readonly=True) as store:
        screen = ReplayScreen(store, recorded.run_ids[1], 1.0)
        screen.clock = ReplayClock(1.0, now=lambda: wall[0])
        app = _Host(screen)

        def move_to(position: float) -> None:
            wall[0] = position
            screen.clock.set_paused(False)  # wakes the player to read the new position

        def played(turns: int) -> Callable[[], bool]:
            return lambda: len(screen.played) == turns

        async with app.run_test(size=(110, 50)) as pilot:
            await wait_until(pilot, lambda: bool(screen.played), what="turn 1 to start")
            assert screen.conversation is not None
            assert screen.conversation.id == recorded.conversation_id
            seen: list[list[int]] = []
            for number, start in enumerate(recorded.offsets[1:], 2):
                # between two turns: the one before is whole, the next not begun
                move_to((recorded.ends[number - 2] + start) / 2)
                await wait_until(
                    pilot,
                    lambda: screen.accumulator is not None and screen.accumulator.done,
                    what=f"turn {number - 1} to end",
                )
                seen.append([t.turn for t in screen.played])
                assert screen.accumulator is not None
                assert screen.accumulator.output_text == recorded.answers[number - 2]
                move_to(start + 0.0005)
                await wait_until(pilot, played(number), what=f"turn {number}")
                seen.append([t.turn for t in screen.played])
            assert seen == [[1], [1, 2], [1, 2], [1, 2, 3]]
            assert not screen.done
            await pilot.press("plus")
            assert screen.clock.speed == 2.0
            await pilot.press("i")  # the rest at once, across the turn that plays
            await wait_until(pilot, lambda: screen.done, what="the end of the replay")
            assert [t.answer for t in screen.played[:2]] == recorded.answers[:2]
            assert screen.accumulator is not None
            assert screen.accumulator.output_text == recorded.answers[2]
