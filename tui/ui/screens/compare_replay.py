"""Replay a stored compare: the conversations that compare broadcasts sent side by side,
each in a column, on one timeline (from History: ``c`` on a run of one of them).

The store says which conversations were columns of one compare
(``store.compared_conversations``: they share a broadcast) and plays them together
(``store.replay_columns``), paced by the screen's one
:class:`~tui.store.replay.ReplayClock`: the columns keep their original relative timing,
turns that were sent together start together, and only the pauses in which no column ran
are shortened (to at most 2 s). Each column is read-only and shows what a conversation's
replay shows: the turns played so far above the live one, the live turn's transcript in a
fold of its own (so its metrics bar shows the original TTFT and tokens/s), its finish and
reconnect badges. Instantly (``i``, or opened so) every turn is shown whole, its figures as
stored. The keys are the replay's (:mod:`tui.ui.screens.replay_keys`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, HorizontalScroll, Vertical
from textual.widgets import Static

from tui.session.conversation_view import TurnView
from tui.store.broadcasts import column_offsets
from tui.store.errors import StoreError
from tui.store.replay import ReplayClock, TurnStart
from tui.store.whole import stored_metrics
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import Api, RunEvent
from tui.stream.metrics import MetricsSnapshot
from tui.ui.screens.replay_keys import PUBLISH_HZ, SPEEDS, ReplayControls
from tui.ui.screens.replay_turns import (
    YIELD_EVERY_S,
    show_recorded,
    stored_lag_ms,
    turn_ended,
    turn_started,
)
from tui.ui.ticker import Ticker
from tui.ui.widgets.badges import FinishBadge, ReconnectStatus
from tui.ui.widgets.footer import KeysFooter
from tui.ui.widgets.metrics_bar import MetricsBar
from tui.ui.widgets.transcript import TranscriptView
from tui.ui.widgets.transcript_items import ReasoningBlock
from tui.ui.widgets.turns import EarlierTurns

if TYPE_CHECKING:
    from tui.store import ComparedConversation, ConversationRecord, RunDetail, Store

__all__ = ["CompareReplayScreen", "ReplayColumn", "no_columns_message"]


def no_columns_message(column: ComparedConversation) -> str:
    """What to say of a conversation that no compare broadcast sent with others."""
    return (
        f"Conversation {column.conversation_id} ({column.session}) was not sent in a compare "
        "broadcast with other sessions: there are no columns to replay side by side. "
        "Enter in History replays it alone."
    )


class ReplayColumn(Vertical):
    """One stored conversation of a compare, replayed turn by turn (read-only)."""

    DEFAULT_CSS = """
    ReplayColumn { width: 1fr; min-width: 30; height: 1fr; border-right: solid $panel; }
    ReplayColumn .-title { height: 1; padding: 0 1; text-style: bold; background: $boost; }
    ReplayColumn .-prompt { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    ReplayColumn .-badges { height: 1; padding: 0 1; }
    ReplayColumn MetricsBar { height: auto; }
    ReplayColumn TranscriptView { height: 1fr; }
    """

    def __init__(
        self,
        column: ComparedConversation,
        record: ConversationRecord,
        position: Callable[[], float],
    ) -> None:
        """Replay ``record`` (the conversation of ``column``); ``position`` is the screen's
        clock position (seconds on the shared timeline)."""
        super().__init__()
        self.column = column
        self.record = record
        self._position = position
        self.turns = EarlierTurns()
        self.played: list[TurnView] = []
        """The turns played so far (the live one last)."""
        self.accumulator: RunAccumulator | None = None
        self.stored: MetricsSnapshot | None = None
        self.done = False
        self._offset = 0.0
        self._last_t = 0.0
        self._applying: float | None = None
        self._runs = {turn.run.run_id: turn.run for turn in record.turns}

    def compose(self) -> ComposeResult:
        """Title, the live turn's prompt, badges, metrics, the transcript."""
        first = self.record.turns[0].run
        title = f"{self.column.session}  ·  {first.model}  ·  {len(self.record.turns)} turns"
        yield Static(title, classes="-title", markup=False)
        yield Static("", classes="-prompt", markup=False)
        with Horizontal(classes="-badges"):
            yield FinishBadge()
            yield ReconnectStatus()
        yield MetricsBar()
        yield TranscriptView()

    def on_mount(self) -> None:
        """The earlier turns go at the top of the transcript, above the live answer."""
        view = self.query_one(TranscriptView)
        view.mount(self.turns, before=view.query_one("#reasoning", ReasoningBlock))

    @property
    def answers(self) -> list[str]:
        """The answer of each turn played so far (the live one as far as it got)."""
        texts = [turn.answer for turn in self.played]
        if texts and self.accumulator is not None:
            texts[-1] = self.accumulator.output_text
        return texts

    def reset(self) -> None:
        """Empty, before playing from the start."""
        self.query_one(TranscriptView).reset()
        self.query_one(FinishBadge).clear("waiting")
        self.query_one(ReconnectStatus).clear()
        self.played, self.accumulator, self.stored, self.done = [], None, None, False
        self._offset = self._last_t = 0.0
        self.turns.sync([], None)

    def run_now(self) -> float:
        """The live turn's fold's clock: its own seconds (the timeline's minus its start)."""
        if self._applying is not None:
            return self._applying
        if self.done or (self.accumulator is not None and self.accumulator.done):
            return self._last_t
        return max(self._last_t, self._position() - self._offset)

    def start_turn(self, start: TurnStart, *, whole: bool) -> None:
        """A new turn: the last one goes above, a fresh transcript and fold begin."""
        if self.accumulator is not None:
            self.end_turn()
        run: RunDetail = self._runs[start.run_id]
        head = " ".join(start.prompt.split())
        prompt = self.query_one(".-prompt", Static)
        prompt.update(f"turn {start.turn} of {len(self.record.turns)} › {head}")
        self.query_one(TranscriptView).reset()
        self.query_one(FinishBadge).clear("replaying")
        self.query_one(ReconnectStatus).clear()
        self.query_one(MetricsBar).client_bound_ms = stored_lag_ms(run)
        self._offset, self._last_t = start.offset_s, 0.0
        live = turn_started(start, run)
        self.turns.sync(self.played, live)
        self.turns.set_live(live)
        self.played.append(live)
        api: Api = "chat" if run.api == "chat" else "responses"
        self.accumulator = RunAccumulator(
            run.run_id, run.session, api, run.model, start.prompt, clock=self.run_now
        )
        self.stored = stored_metrics(run) if whole else None

    def apply(self, event: RunEvent) -> None:
        """One recorded event of the live turn into its fold and the widgets."""
        acc = self.accumulator
        if acc is None:
            return
        self._applying = event.t
        try:
            acc.apply(event)
        finally:
            self._applying = None
        self._last_t = max(self._last_t, event.t)
        show_recorded(self, event)

    def end_turn(self) -> None:
        """The live turn as it ended."""
        if self.accumulator is not None and self.played:
            earlier = self.played[-2] if len(self.played) > 1 else None
            self.played[-1] = turn_ended(self.played[-1], self.accumulator, earlier)

    def finish(self) -> None:
        """Everything of this column has been played."""
        self.end_turn()
        self.done = True
        if self.accumulator is not None and not self.accumulator.done:
            self.query_one(FinishBadge).clear("the recording ends here")
        self.publish()

    def publish(self) -> None:
        """The live turn's figures (stored ones when it was shown whole)."""
        if self.stored is not None:
            self.query_one(MetricsBar).snapshot = self.stored
        elif self.accumulator is not None:
            self.query_one(MetricsBar).snapshot = self.accumulator.metrics()


class CompareReplayScreen(ReplayControls):
    """A stored compare's conversations side by side, replayed on one clock."""

    TITLE = "Compare replay"

    DEFAULT_CSS = """
    CompareReplayScreen { layout: vertical; }
    CompareReplayScreen #compare-replay-head { height: 1; padding: 0 1; background: $boost; }
    CompareReplayScreen #compare-replay-title { width: 1fr; text-style: bold; }
    CompareReplayScreen #compare-replay-state { width: auto; padding: 0 1; color: $text-accent; }
    CompareReplayScreen #compare-replay-columns { height: 1fr; }
    CompareReplayScreen #compare-replay-columns.-many > ReplayColumn { width: 25%; }
    CompareReplayScreen #compare-replay-error { color: $error; padding: 1 2; display: none; }
    CompareReplayScreen.-error #compare-replay-error { display: block; }
    """

    def __init__(
        self,
        store: Store,
        conversation_id: str,
        speed: float | None = 1.0,
        *,
        columns: Sequence[ComparedConversation] | None = None,
    ) -> None:
        """Replay the compare that the conversation ``conversation_id`` (or a run of it,
        or a unique prefix) was a column of: every conversation that shares a broadcast
        with it. ``speed``: the playback factor (clamped to 0.25-10); None plays instantly.
        ``columns``: those conversations when the caller has read them already."""
        super().__init__()
        self.store = store
        self.conversation_id = conversation_id
        self.compared: list[ComparedConversation] | None = None if columns is None else [*columns]
        """The compare's conversations, in column order (None: not read yet)."""
        self.records: list[ConversationRecord] = []
        self.clock = ReplayClock(1.0 if speed is None else min(max(speed, SPEEDS[0]), SPEEDS[-1]))
        if speed is None:
            self.clock.go_instant()
        self.done = False
        self.error: str | None = None
        self._total_s: float | None = None

    def compose(self) -> ComposeResult:
        """Title and state line, the columns (once read), footer."""
        with Horizontal(id="compare-replay-head"):
            title = f"replay compare of {self.conversation_id}"
            yield Static(title, id="compare-replay-title", markup=False)
            yield Static("", id="compare-replay-state")
        yield Static("", id="compare-replay-error", markup=False)
        yield HorizontalScroll(id="compare-replay-columns")
        yield KeysFooter()

    def on_mount(self) -> None:
        """Start playing, and refresh the figures and state line a few times a second."""
        self._untick = Ticker.of(self.app).subscribe(self, self._publish, PUBLISH_HZ)
        self.play()

    def on_unmount(self) -> None:
        self._untick()

    @property
    def columns(self) -> list[ReplayColumn]:
        """The columns, in the compare's order."""
        return list(self.query(ReplayColumn))

    async def _read(self) -> bool:
        """Read the compare's conversations and mount their columns (once); False, with
        the reason shown, when there is nothing to replay side by side."""
        if self.records:
            return True
        compared = self.compared
        if compared is None:
            compared = self.compared = await self.store.compared_conversations(self.conversation_id)
        if len(compared) < 2:
            self._show_error(no_columns_message(compared[0]))
            return False
        for column in compared:
            record = await self.store.get_conversation(column.conversation_id)
            if record is None:
                raise StoreError(f"conversation {column.conversation_id} is no longer stored")
            self.records.append(record)
        offsets = column_offsets([[t.run for t in r.turns] for r in self.records])
        ends = [at + (turn.run.ended_s or 0.0) for r, o in zip(self.records, offsets, strict=True)
                for turn, at in zip(r.turns, o, strict=True)]  # fmt: skip
        self._total_s = max(ends, default=0.0)
        names = ", ".join(c.session for c in compared)
        self.query_one("#compare-replay-title", Static).update(
            f"replay compare  ·  {len(compared)} columns: {names}"
        )
        holder = self.query_one("#compare-replay-columns")
        holder.set_class(len(compared) > 4, "-many")
        await holder.mount_all(
            ReplayColumn(c, r, self._position) for c, r in zip(compared, self.records, strict=True)
        )
        return True

    def _position(self) -> float:
        """The clock's position (the current clock: playing again replaces it)."""
        return self.clock.position

    @work(exclusive=True, group="compare-replay", exit_on_error=False)
    async def play(self) -> None:
        """Feed the columns' recorded events, paced on the shared timeline."""
        self.done = False
        try:
            if not await self._read():
                return
            columns = self.columns
            for column in columns:
                column.reset()
            whole = self.clock.instant
            last_yield = time.monotonic()
            async for entry in self.store.replay_columns(self.records, self.clock, whole=whole):
                column = columns[entry.column]
                if isinstance(entry.item, TurnStart):
                    column.start_turn(entry.item, whole=whole)
                else:
                    column.apply(entry.item)
                if time.monotonic() - last_yield > YIELD_EVERY_S:
                    await asyncio.sleep(0)  # instant mode never sleeps: let the screen breathe
                    last_yield = time.monotonic()
        except StoreError as exc:
            self._show_error(str(exc))
            return
        except Exception as exc:  # any other store failure is shown, never fatal
            self._show_error(f"replay stopped: {exc}")
            return
        for column in columns:
            column.finish()
        self.done = True
        self._publish()

    def _show_error(self, message: str) -> None:
        """Put an error in place of the columns."""
        self.error = message
        self.query_one("#compare-replay-error", Static).update(message)
        self.add_class("-error")

    def _publish(self) -> None:
        """Every column's figures and the state line (a few times a second)."""
        for column in self.columns:
            column.publish()
        clock = self.clock
        label = self.query_one("#compare-replay-state", Static)
        if self.error is not None:
            label.update("error")
            return
        if self.done:
            state = "done"
        elif clock.instant:
            state = "instant"
        elif clock.paused:
            state = f"paused {clock.speed:g}x"
        else:
            state = f"▶ {clock.speed:g}x"
        total = f" / {self._total_s:.1f}" if self._total_s is not None else ""
        now = self._total_s if self.done and self._total_s is not None else clock.position
        label.update(f"{state}  {min(now, self._total_s or now):.1f}{total} s")
