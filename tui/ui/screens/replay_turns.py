"""The conversation half of the replay screen: every turn of a conversation on one
timeline (``store.replay_conversation``), each turn's prompt as a heading and its answer in
a fold of its own, the turns played so far above the live one.

:class:`ConversationPlayer` is a base of :class:`~tui.ui.screens.replay.ReplayScreen`, which
owns the widgets, the clock and the single-run player; this module only knows turns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING

from textual.dom import DOMNode
from textual.widgets import Static

from tui.session.conversation_view import TurnView
from tui.store.replay import TurnStart
from tui.store.whole import stored_metrics
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import Api, Finished, RunEvent
from tui.stream.metrics import MetricsSnapshot
from tui.ui.screens.replay_keys import ReplayControls
from tui.ui.widgets.badges import FinishBadge, ReconnectStatus
from tui.ui.widgets.metrics_bar import MetricsBar
from tui.ui.widgets.transcript import TranscriptView
from tui.ui.widgets.turns import EarlierTurns

if TYPE_CHECKING:
    from tui.store import ConversationRecord, RunDetail, RunSummary, Store

YIELD_EVERY_S = 0.02
"""Longest stretch the player feeds events without giving the event loop a turn."""


def stored_lag_ms(run: RunSummary) -> float | None:
    """The metrics bar's client-bound mark of a stored run: tokentop's own loop lag p99
    (ms) when its timing was the client's, else None."""
    return run.client_lag_p99_ms if run.client_bound else None


def turn_started(start: TurnStart, run: RunDetail) -> TurnView:
    """The view of a replayed turn as it begins (nothing answered yet)."""
    return TurnView(
        start.turn, run.run_id, start.prompt, "", status=None, finish_reason=None,
        error=None, input_tokens=None, output_tokens=None, input_tokens_so_far=None,
        kept=False, tool_calls=(), answers_tools=False,
    )  # fmt: skip


def turn_ended(live: TurnView, acc: RunAccumulator, earlier: TurnView | None) -> TurnView:
    """The view of the replayed turn ``live`` as its fold ``acc`` ended it (``earlier``:
    the turn before it, whose total of input tokens it adds to)."""
    usage = acc.usage
    before = earlier.input_tokens_so_far if earlier is not None else 0
    tokens_in = usage.input_tokens if usage is not None else None
    so_far = None if before is None or tokens_in is None else before + tokens_in
    return dataclasses.replace(
        live, answer=acc.output_text, status=acc.status, finish_reason=acc.finish_reason,
        error=acc.error.message if acc.error else None, input_tokens=tokens_in,
        output_tokens=usage.output_tokens if usage else None, input_tokens_so_far=so_far,
        kept=acc.status in ("completed", "incomplete"), tool_calls=tuple(acc.tool_calls),
    )  # fmt: skip


def show_recorded(node: DOMNode, event: RunEvent) -> None:
    """One recorded event into the widgets under ``node`` that show a replayed run: its
    transcript, reconnect status and finish badge (the replay screen, a compare column)."""
    node.query_one(TranscriptView).apply(event)
    node.query_one(ReconnectStatus).apply(event)
    if isinstance(event, Finished):
        node.query_one(FinishBadge).set_finished(event)


class ConversationPlayer(ReplayControls):
    """Plays a conversation's turns into the replay screen's widgets (see the module)."""

    store: Store
    turns: EarlierTurns
    played: list[TurnView]
    accumulator: RunAccumulator | None
    stored: MetricsSnapshot | None
    """The figures of the run shown whole (instant: its record's, not a fold's)."""
    _plays: int
    _offset: float
    _last_t: float
    _total_s: float | None

    def _apply(self, acc: RunAccumulator, event: RunEvent) -> None:
        raise NotImplementedError

    def _show_error(self, message: str) -> None:
        raise NotImplementedError

    def _run_now(self) -> float:
        raise NotImplementedError

    async def _play_conversation(self, record: ConversationRecord, play: int) -> None:
        """Every turn of ``record`` on one timeline, each in its own fold; instantly, each
        turn shown whole (its text at once, its figures as stored). ``play``: this play's
        number; it stops as soon as a newer play started (``i``, ``r``)."""
        first = record.turns[0].run
        self.query_one("#replay-title", Static).update(
            f"replay conversation {record.id}  ·  {first.session}  ·  {first.model}  ·  "
            f"{first.api}  ·  {len(record.turns)} turns"
        )
        runs = {t.run.run_id: t.run for t in record.turns}
        whole = self.clock.instant
        acc: RunAccumulator | None = None
        last_yield = time.monotonic()
        try:
            async for item in self.store.replay_conversation(record.id, self.clock, whole=whole):
                if play != self._plays:
                    return
                if isinstance(item, TurnStart):
                    if acc is not None:
                        self._end_turn(acc)
                    run = runs[item.run_id]
                    acc = self._start_turn(item, len(record.turns), run)
                    self.stored = stored_metrics(run) if whole else None
                elif acc is not None:
                    self._apply(acc, item)
                if time.monotonic() - last_yield > YIELD_EVERY_S:
                    await asyncio.sleep(0)
                    last_yield = time.monotonic()
        except Exception as exc:
            self._show_error(f"replay stopped: {exc}")
            return
        self.done = True
        if acc is not None:
            self._end_turn(acc)
            if not acc.done:
                self.query_one(FinishBadge).clear("the recording ends here")
        self._publish()

    def _start_turn(self, start: TurnStart, turns: int, run: RunDetail) -> RunAccumulator:
        """A new turn: its heading, a fresh transcript and fold, its clock at ``offset_s``."""
        head = " ".join(start.prompt.split())
        self.query_one("#replay-prompt", Static).update(f"turn {start.turn} of {turns} › {head}")
        self.query_one(TranscriptView).reset()
        self.query_one(FinishBadge).clear("replaying")
        self.query_one(ReconnectStatus).clear()
        self._offset = start.offset_s
        self._last_t = 0.0
        self._total_s = run.ended_s
        live = turn_started(start, run)
        self.query_one(MetricsBar).client_bound_ms = stored_lag_ms(run)
        self.turns.sync(self.played, live)
        self.turns.set_live(live)
        self.played.append(live)
        api: Api = "chat" if run.api == "chat" else "responses"
        acc = RunAccumulator(
            run.run_id, run.session, api, run.model, start.prompt, clock=self._run_now
        )
        self.accumulator = acc
        return acc

    def _end_turn(self, acc: RunAccumulator) -> None:
        """The live turn as it ended (the next turn shows it above itself)."""
        earlier = self.played[-2] if len(self.played) > 1 else None
        self.played[-1] = turn_ended(self.played[-1], acc, earlier)
