"""Replay a saved run, or a whole conversation turn by turn, with its original timing
(``tokentop replay ID`` or from history).

The store hands back the recorded events (each with its original offset ``t``), paced by the
screen's :class:`~tui.store.replay.ReplayClock` at 0.25x-10x or instantly, with pause, and
speed changes while it plays. Every event goes through a :class:`RunAccumulator` whose clock
*is* the replay position in original run time, so the metrics bar shows the TTFT and
tokens/s of the original run whatever the playback speed.

A run that answers a turn of a conversation of several turns replays the conversation (one
timeline: ``store.replay_conversation``): each turn's prompt as a heading, then its answer
in a fold of its own (its clock is the replay's position minus the turn's ``offset_s``),
finished turns above the live one (``EarlierTurns``); the keys act on the whole timeline.

A conversation that a compare broadcast sent with others (``store.compared_conversations``)
is said to be a column of that compare, and ``c`` replays the compare's columns side by side
(:class:`~tui.ui.screens.compare_replay.CompareReplayScreen`).

Instantly (``--instant``, or ``i`` while it plays) a run is shown whole: its events without
the text deltas, its text in one piece, its figures as stored (``store.whole_events``,
:func:`~tui.store.whole.stored_metrics`), so a million-token run is on screen in seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from tui.session.conversation_view import TurnView
from tui.store.errors import StoreError
from tui.store.replay import ReplayClock
from tui.store.whole import stored_metrics
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import Api, RunEvent
from tui.stream.metrics import MetricsSnapshot
from tui.ui.commands import shown_key
from tui.ui.screens.replay_keys import PUBLISH_HZ, SPEEDS, ReplayControls
from tui.ui.screens.replay_turns import (
    YIELD_EVERY_S,
    ConversationPlayer,
    show_recorded,
    stored_lag_ms,
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

__all__ = ["SPEEDS", "YIELD_EVERY_S", "ReplayScreen"]


class ReplayScreen(ConversationPlayer):
    """Streams a saved run back into a transcript with its original timing, or shows it
    whole at once (instant: its text in one piece, its figures as stored)."""

    TITLE = "Replay"
    BINDINGS: ClassVar[list[BindingType]] = [
        *ReplayControls.BINDINGS,
        Binding(
            "C",
            "columns",
            "Columns",
            id="replay.columns",
            tooltip="Replay the compare this conversation was a column of: all side by side",
        ),
    ]

    DEFAULT_CSS = """
    ReplayScreen { layout: vertical; }
    ReplayScreen #replay-head { height: auto; padding: 0 1; background: $boost; }
    ReplayScreen #replay-titlebar { height: 1; }
    ReplayScreen #replay-title { width: 1fr; height: 1; text-style: bold; }
    ReplayScreen #replay-prompt { height: auto; max-height: 3; color: $text-muted; }
    ReplayScreen #replay-state { width: auto; height: 1; padding: 0 1; color: $text-accent; }
    ReplayScreen #replay-state.-paused { color: $warning; text-style: bold; }
    ReplayScreen #replay-state.-done { color: $success; }
    ReplayScreen #replay-compared { height: auto; color: $text-accent; display: none; }
    ReplayScreen.-compared #replay-compared { display: block; }
    ReplayScreen #replay-badges { height: 1; }
    ReplayScreen MetricsBar { height: auto; }
    ReplayScreen TranscriptView { height: 1fr; }
    ReplayScreen #replay-error { color: $error; padding: 1 2; display: none; }
    ReplayScreen.-error #replay-error { display: block; }
    ReplayScreen.-error TranscriptView { display: none; }
    ReplayScreen.-error #replay-badges { display: none; }
    ReplayScreen.-error MetricsBar { display: none; }
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        speed: float | None = 1.0,
        *,
        conversation_id: str | None = None,
    ) -> None:
        """Replay ``run_id`` (a unique prefix is enough) from ``store``: the whole
        conversation when it answers a turn of a conversation of several turns.

        ``speed`` is the playback factor (clamped to 0.25-10); ``None`` plays instantly.
        ``conversation_id``: replay that conversation (``run_id`` names it in the title
        until it is read).
        """
        super().__init__()
        self.store = store
        self.run_id = run_id
        self.conversation_id = conversation_id
        self.conversation: ConversationRecord | None = None
        """The conversation being replayed (None: a single run)."""
        self.turns = EarlierTurns(id="replay-turns")
        """The turns played before the live one, and the live turn's heading."""
        self.played: list[TurnView] = []
        """The turns of the conversation played so far (the live one last)."""
        self._offset = 0.0
        self._initial_speed = speed
        self.clock = self._new_clock()
        self.accumulator: RunAccumulator | None = None
        self.done = False
        """True once the whole run has been played."""
        self.error: str | None = None
        """Why the run could not be replayed (unknown id, store error)."""
        self._last_t = 0.0
        self._applying: float | None = None
        self._plays = 0
        """Plays started (``i`` and ``r`` start another): an older play stops at once."""
        self._total_s: float | None = None
        self.stored: MetricsSnapshot | None = None
        self.compared: list[ComparedConversation] | None = None
        """The columns of the compare the replayed conversation was part of (itself alone
        when none; None: not read)."""

    def _new_clock(self) -> ReplayClock:
        speed = self._initial_speed
        clock = ReplayClock(1.0 if speed is None else min(max(speed, SPEEDS[0]), SPEEDS[-1]))
        if speed is None:
            clock.go_instant()
        return clock

    def compose(self) -> ComposeResult:
        """Title and state line, prompt, badges, metrics, the transcript, footer."""
        with Vertical(id="replay-head"):
            with Horizontal(id="replay-titlebar"):
                yield Static(f"replay {self.run_id}", id="replay-title", markup=False)
                yield Static("", id="replay-state")
            yield Static("", id="replay-prompt", markup=False)
            yield Static("", id="replay-compared", markup=False)
            with Horizontal(id="replay-badges"):
                yield FinishBadge()
                yield ReconnectStatus()
            yield MetricsBar()
        yield Static("", id="replay-error", markup=False)
        yield TranscriptView()
        yield KeysFooter()

    def on_mount(self) -> None:
        """Start playing, and refresh the metrics and state line a few times a second."""
        view = self.query_one(TranscriptView)
        view.mount(self.turns, before=view.query_one("#reasoning", ReasoningBlock))
        self._untick = Ticker.of(self.app).subscribe(self, self._publish, PUBLISH_HZ)
        self.play()

    def on_unmount(self) -> None:
        self._untick()

    # -- the player ---------------------------------------------------------------------

    def _run_now(self) -> float:
        """The accumulator's clock: the replay position in original run seconds."""
        if self._applying is not None:
            return self._applying
        if self.done or (self.accumulator is not None and self.accumulator.done):
            return self._last_t  # between two turns too: the turn's time ends with it
        return max(self._last_t, self.clock.position - self._offset)

    @work(exclusive=True, group="replay", exit_on_error=False)
    async def play(self) -> None:
        """Feed the recorded events, paced by their original offsets, to the widgets."""
        self._plays += 1
        play = self._plays
        view = self.query_one(TranscriptView)
        view.reset()
        self.query_one(FinishBadge).clear("replaying")
        self.query_one(ReconnectStatus).clear()
        self.done = False
        self._last_t = 0.0
        self._offset = 0.0
        self._applying = None
        self.played, self.accumulator, self.stored = [], None, None
        self.turns.sync([], None)
        try:
            await self._read_compared()
            self.conversation = await self._conversation()
            if self.conversation is not None:
                await self._play_conversation(self.conversation, play)
                return
            run = await self.store.get_run(self.run_id)
        except StoreError as exc:  # unknown or ambiguous id: the message says which
            self._show_error(str(exc))
            return
        except Exception as exc:  # any other store failure is shown, never fatal
            self._show_error(f"cannot read run {self.run_id}: {exc}")
            return
        self.query_one("#replay-title", Static).update(
            f"replay {run.run_id}  ·  {run.session}  ·  {run.model}  ·  {run.api}"
        )
        self.query_one("#replay-prompt", Static).update(run.prompt)
        self.query_one(MetricsBar).client_bound_ms = stored_lag_ms(run)
        self._total_s = run.ended_s
        api: Api = "chat" if run.api == "chat" else "responses"
        acc = RunAccumulator(
            run.run_id, run.session, api, run.model, run.prompt, clock=self._run_now
        )
        self.accumulator = acc
        try:
            if self.clock.instant:
                await self._show_whole(acc, run)
            else:
                await self._play_timed(acc, run)
        except Exception as exc:
            self._show_error(f"replay stopped: {exc}")
            return
        if play != self._plays:  # a newer play took over
            return
        self.done = True
        if not acc.done:
            # The recording has no final event (the process died mid-run): say so.
            self.query_one(FinishBadge).clear(f"{run.status}: the recording ends here")
        self._publish()

    async def _read_compared(self) -> None:
        """Which conversations a compare broadcast sent with the replayed one (once): a
        line names them, and the ``replay.columns`` key replays them side by side."""
        if self.compared is not None:
            return
        try:
            compared = await self.store.compared_conversations(self.conversation_id or self.run_id)
        except StoreError:
            return  # the replay itself says what is wrong with the id
        self.compared = compared
        if len(compared) > 1:
            names = ", ".join(f"{c.session} ({c.model})" for c in compared)
            key = shown_key(self, "columns", "C")
            line = f"a column of a compare: {names}  ·  {key} replays them side by side"
            self.query_one("#replay-compared", Static).update(line)
            self.add_class("-compared")

    def action_columns(self) -> None:
        """Replay the compare the conversation was a column of, its columns side by side
        at the current speed (or say that no broadcast sent it with others)."""
        from tui.ui.screens.compare_replay import CompareReplayScreen, no_columns_message

        compared = self.compared
        if not compared:
            self.notify("The replay is still reading the store.", markup=False)
        elif len(compared) < 2:
            self.notify(no_columns_message(compared[0]), title="Compare replay", markup=False)
        else:
            speed = None if self.clock.instant else self.clock.speed
            cid = compared[0].conversation_id
            self.app.push_screen(CompareReplayScreen(self.store, cid, speed, columns=compared))

    async def _show_whole(self, acc: RunAccumulator, run: RunDetail) -> None:
        """The run at once: its events without the deltas, its text in one piece, and its
        figures as stored (a fold of one piece of text cannot time the pieces)."""
        for event in await self.store.whole_events(run):
            self._apply(acc, event)
        self.stored = stored_metrics(run)

    async def _play_timed(self, acc: RunAccumulator, run: RunDetail) -> None:
        """Every recorded event, each when the clock reaches its original offset."""
        last_yield = time.monotonic()
        async for event in self.store.replay(run.run_id, self.clock):
            self._apply(acc, event)
            if time.monotonic() - last_yield > YIELD_EVERY_S:
                # Instant mode (or catching up) never sleeps: let the screen breathe.
                await asyncio.sleep(0)
                last_yield = time.monotonic()

    async def _conversation(self) -> ConversationRecord | None:
        """The conversation to replay: the one asked for, else that of the run when it
        answers a turn of a conversation of several turns; None: replay the run alone."""
        if self.conversation_id is not None:
            record = await self.store.get_conversation(self.conversation_id)
            if record is None:
                raise StoreError(f"no conversation {self.conversation_id!r}")
            return record
        try:
            record = await self.store.get_conversation(self.run_id)
        except StoreError:  # an ambiguous prefix: the run's own lookup says so
            return None
        found = None if record is None or len(record.turns) < 2 else record.turn_of(self.run_id)
        # a branch (a failed try, an edited answer) is replayed alone
        return record if found is not None and not found[1] else None

    def _apply(self, acc: RunAccumulator, event: RunEvent) -> None:
        """One recorded event into the accumulator and the widgets; none from a play that
        a newer one replaced (``i`` or ``r``: the old worker's cancel lands at its next
        suspension, and an instant clock lets it run on through a batch after the new
        play has cleared the view)."""
        if acc is not self.accumulator:
            return
        self._applying = event.t
        try:
            acc.apply(event)
        finally:
            self._applying = None
        self._last_t = max(self._last_t, event.t)
        show_recorded(self, event)

    def _show_error(self, message: str) -> None:
        """Put an error in place of the transcript."""
        self.error = message
        self.query_one("#replay-error", Static).update(message)
        self.add_class("-error")

    def _publish(self) -> None:
        """Metrics snapshot and state line (a few times a second, never per event)."""
        if self.stored is not None:
            self.query_one(MetricsBar).snapshot = self.stored
        elif self.accumulator is not None:
            self.query_one(MetricsBar).snapshot = self.accumulator.metrics()
        clock = self.clock
        if self.error is not None:
            state = "error"
        elif self.done:
            state = "done"
        elif clock.instant:
            state = "instant"
        elif clock.paused:
            state = f"paused {clock.speed:g}x"
        else:
            state = f"▶ {clock.speed:g}x"
        label = self.query_one("#replay-state", Static)
        if self.error is not None:
            label.update(state)
        else:
            total = f" / {self._total_s:.1f}" if self._total_s is not None else ""
            label.update(f"{state}  {self._run_now():.1f}{total} s")
        label.set_class(clock.paused and not self.done, "-paused")
        label.set_class(self.done, "-done")
