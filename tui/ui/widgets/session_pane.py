"""SessionPane: everything about one session in one tab.

Header line (finish badge, reconnect status, model and api), metrics bar, run history for
``repeat`` sessions, an error banner, either the transcript (the conversation's earlier
turns, each rendered once, above the live turn) or the raw event log, and the prompt line
of the next turn (:class:`~tui.ui.widgets.follow_up.FollowUpLine`).

The pane is a :class:`~tui.session.SessionListener`: it receives every event of its session
and hands it on to the cheap ``apply`` of its widgets. Rendering happens on the app's
:class:`~tui.ui.ticker.Ticker` and only while the pane is on screen, so a background tab
costs a list append per token; :meth:`SessionPane.catch_up` brings a pane that is about to
be shown up to date at once.
Attributes down, messages up: the pane posts :class:`SessionPane.RunStarted`,
:class:`SessionPane.RunFinished` and :class:`SessionPane.UnreadChanged` so the screen can
update the tab label and the overview, and notify.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from tui.session import SessionController, SessionRun
from tui.session.conversation_view import TurnRefused
from tui.stream.events import Finished, RawEvent, RunEvent, TextDelta, ToolCallDelta
from tui.ui.keymap import BINDING_IDS
from tui.ui.ticker import Ticker, not_subscribed
from tui.ui.widgets.badges import FinishBadge, ReconnectStatus
from tui.ui.widgets.follow_up import FollowUpLine, follow_up_hint
from tui.ui.widgets.metrics_bar import MetricsBar
from tui.ui.widgets.raw_log import RawEventLog
from tui.ui.widgets.run_history import RunHistory
from tui.ui.widgets.transcript import TranscriptView
from tui.ui.widgets.transcript_items import ReasoningBlock, catch_up_events
from tui.ui.widgets.turns import EarlierTurns
from tui.vocab import TONE_GLYPHS

METRICS_HZ = 5.0
"""How often the visible pane pulls a metrics snapshot."""

WIDE_COLUMNS = 160
"""From this width on, the raw event view opens beside the transcript."""


def _nothing() -> None:
    """Placeholder unsubscribe before the pane is mounted."""


class SessionPane(Vertical):
    """One session: transcript (or raw events), metrics, badges; follows a SessionController."""

    DEFAULT_CSS = """
    SessionPane { height: 1fr; }
    SessionPane #pane-header { height: 1; }
    SessionPane #pane-title { width: 1fr; height: 1; padding: 0 1; }
    SessionPane #pane-error { display: none; height: auto; padding: 0 1; }
    SessionPane.-failed #pane-error { display: block; }
    SessionPane #pane-body { height: 1fr; layout: vertical; }
    SessionPane RawEventLog { display: none; }
    SessionPane.-raw RawEventLog { display: block; }
    SessionPane.-raw TranscriptView { display: none; }
    SessionPane.-wide #pane-body { layout: horizontal; }
    SessionPane.-wide.-raw TranscriptView { display: block; width: 1fr; }
    SessionPane.-wide.-raw RawEventLog { width: 1fr; }
    SessionPane RunHistory { display: none; }
    SessionPane.-repeat RunHistory { display: block; }
    """

    BINDING_GROUP_TITLE = "Session"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "t",
            "toggle_thinking",
            "Thinking",
            id="pane.thinking",
            tooltip=BINDING_IDS["pane.thinking"],
        ),
        Binding(
            "enter",
            "focus_follow_up",
            "Reply",
            id="pane.follow_up",
            tooltip=BINDING_IDS["pane.follow_up"],
            show=False,
        ),
    ]

    @dataclass
    class RunStarted(Message):
        """A new run of this pane's session began (a start, a restart, a repeat)."""

        pane: SessionPane
        live: SessionController

    @dataclass
    class RunFinished(Message):
        """A run of this pane's session ended (any status)."""

        pane: SessionPane
        live: SessionController
        event: Finished

    @dataclass
    class UnreadChanged(Message):
        """The pane got unread output while hidden, or was read."""

        pane: SessionPane
        unread: bool

    raw: reactive[bool] = reactive(False)
    """Show the raw event log: instead of the transcript, or beside it on wide terminals."""
    unread: reactive[bool] = reactive(False)
    """Output arrived while the pane was not on screen."""

    def __init__(
        self,
        live: SessionController,
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.live = live
        self._unsubscribe: Callable[[], None] = _nothing
        self._untick: Callable[[], None] = not_subscribed
        # Built here (not queried) because run_events touches them for every event.
        self.transcript = TranscriptView(id="transcript", show_errors=False)
        """The pane's transcript view."""
        self.raw_log = RawEventLog(id="raw-log")
        """The pane's raw event log."""
        self.badge = FinishBadge(id="badge")
        """The pane's finish badge."""
        self.reconnect_status = ReconnectStatus(
            idle_timeout_s=live.session.reconnect.idle_timeout_s, id="reconnect"
        )
        """The pane's reconnect status line."""
        self.turns = EarlierTurns(id="turns")
        """The conversation's turns before the live one (at the top of the transcript)."""
        self.follow_up = FollowUpLine(id="follow-up")
        """The prompt line of the next turn."""
        self.metrics = MetricsBar(id="metrics")
        """The run's metrics line."""
        self._error = Static("", id="pane-error", markup=False)
        self._history = RunHistory(id="history")
        self._visible = False
        self._blank_for: str | None = None
        """The conversation id whose empty start the transcript shows (a new conversation
        before its first turn), else None."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="pane-header"):
            yield self.badge
            yield self.reconnect_status
            yield Static(self._title(), id="pane-title", markup=False)
        yield self.metrics
        yield self._history
        yield self._error
        with Container(id="pane-body"):
            yield self.transcript
            yield self.raw_log
        yield self.follow_up

    def _title(self) -> str:
        s = self.live.session
        where = "built-in simulator" if s.is_simulated else s.base_url
        return f"{s.name} ─ {s.model} · {s.api} · {where}"

    def on_mount(self) -> None:
        reasoning = self.transcript.query_one("#reasoning", ReasoningBlock)
        reasoning.key = self._thinking_key()
        self.transcript.mount(self.turns, before=reasoning)
        self.set_class(self.live.session.repeat is not None, "-repeat")
        self._unsubscribe = self.live.subscribe(self)
        run = self.live.current
        if run is not None:  # the run started before this pane existed: catch up
            self.run_started(self.live, run)
        self._untick = Ticker.of(self.app).subscribe(self, self._refresh_shown, METRICS_HZ)

    def on_unmount(self) -> None:
        self._unsubscribe()
        self._untick()

    # -- SessionListener ----

    def run_started(self, live: SessionController, run: SessionRun) -> None:
        """Reset every view for the new run (and replay what it already received)."""
        self.transcript.reset()
        self.reconnect_status.clear()
        self.badge.clear(live.state)
        self.raw_log.follow_run(run)
        self.remove_class("-failed")
        self._error.update("")
        self.metrics.snapshot = None
        # A pane mounted mid-run catches up from the accumulator's state.
        for event in catch_up_events(run.accumulator):
            self.transcript.apply(event)
        if run.finished is not None:
            self._show_finished(run.finished)
        self._blank_for = None
        self.sync_turns()
        self.post_message(self.RunStarted(self, live))

    def sync_turns(self) -> None:
        """Bring the earlier turns, the live turn's heading and the prompt line's hint up
        to the conversation (cheap when nothing changed: the view is cached per batch)."""
        conv = self.live.conversation
        run = self.live.current
        if run is not None and run.done and run.conversation_id != conv.conversation_id:
            # a new conversation, before its first turn: the last run is not part of it
            self.turns.sync(conv.turns, None)
            if self._blank_for != conv.conversation_id:
                self._blank_for = conv.conversation_id
                self.transcript.reset()
                self.badge.clear(self.live.state)
                self.remove_class("-failed")
                self.metrics.snapshot = None
        else:
            # the live run's turn may not be in the view yet (it is told before it begins)
            turn = run.turn if run is not None else 1
            earlier = [t for t in conv.turns if t.turn < turn]
            shown = next(
                (t for t in conv.turns if run is not None and t.run_id == run.run_id), None
            )
            self.turns.sync(earlier, shown)
        self.follow_up.show_hint(follow_up_hint(conv))

    def run_events(
        self, live: SessionController, run: SessionRun, events: Sequence[RunEvent]
    ) -> None:
        """Forward the events to the widgets (cheap: they buffer)."""
        transcript = self.transcript.apply
        text = False
        for event in events:
            cls = type(event)
            if cls is RawEvent:  # the most frequent event; only the raw log shows it
                continue
            transcript(event)
            if cls is TextDelta or cls is ToolCallDelta:
                text = True
                continue
            self.reconnect_status.apply(event)
            if isinstance(event, Finished):
                self._show_finished(event)
                self.post_message(self.RunFinished(self, live, event))
        if text and not self.unread and not (self._visible and self.screen is self.app.screen):
            self.unread = True

    def _show_finished(self, event: Finished) -> None:
        self.badge.set_finished(event)
        if event.error is not None:
            self.add_class("-failed")
            status = f" (HTTP {event.error.http_status})" if event.error.http_status else ""
            self._error.update(
                f"{TONE_GLYPHS['failed']} {event.error.kind}{status}: {event.error.message}"
            )

    # -- periodic ----

    def refresh_metrics(self) -> None:
        """Pull the session's metrics snapshot (only while on screen)."""
        self._visible = self.is_on_screen
        if self._visible:
            self._refresh_shown()

    def catch_up(self) -> None:
        """Bring every view of the pane up to its session now (the screen calls it just
        before the pane is shown, so its first frame is current)."""
        Ticker.of(self.app).catch_up(self)

    def _refresh_shown(self) -> None:
        # The ticker calls this only while the pane is on screen (or about to be).
        self._visible = True
        self.sync_turns()
        if self._blank_for is None:
            self.metrics.show_run(self.live.snapshot(), self.live.current)
        if self.badge.status is None:
            self.badge.live_label = self.live.state
        if self.live.session.repeat is not None or len(self.live.history) > 1:
            self.add_class("-repeat")
            self._history.show(self.live.history)
        if self.unread:
            self.unread = False
        self.set_class(not self.follow, "-unfollowed")

    def on_resize(self) -> None:
        # Wide terminals show the raw events next to the transcript instead of over it.
        self.set_class(self.size.width >= WIDE_COLUMNS, "-wide")

    def mark_hidden(self) -> None:
        """The pane is (about to be) hidden: new output counts as unread from now on."""
        self._visible = False

    # -- actions (called by the screen) ------------------------------------------------------

    @property
    def follow(self) -> bool:
        """True while the transcript stays pinned to the end (scrolling up releases it)."""
        return self.transcript.following

    def toggle_follow(self) -> bool:
        """Follow the tail, or stop following; returns the new state."""
        following = not self.follow
        self.transcript.set_following(following)
        self.set_class(not following, "-unfollowed")
        return following

    def focus_follow_up(self, prompt: str | None = None) -> None:
        """Focus the prompt line (``prompt``: put that text in it)."""
        if prompt is not None:
            self.follow_up.input.value = prompt
        self.follow_up.input.focus()

    def action_focus_follow_up(self) -> None:
        """Focus the prompt line of the next turn."""
        self.focus_follow_up()

    def on_follow_up_line_sent(self, event: FollowUpLine.Sent) -> None:
        """Send the prompt as the conversation's next turn, or say why it cannot go."""
        event.stop()
        live = self.live
        try:
            live.send(event.prompt)
        except (TurnRefused, ValueError) as exc:
            self.follow_up.refuse(str(exc))
            return
        self.follow_up.refuse(None)
        self.follow_up.input.value = ""
        self.transcript.set_following(True)

    def on_follow_up_line_left(self, event: FollowUpLine.Left) -> None:
        event.stop()
        self.transcript.focus()

    def _thinking_key(self) -> str:
        """The key of :meth:`action_toggle_thinking` as displayed, ``[keymap]`` remaps
        included (the app's ``config.keymap``, when it has one)."""
        keymap = getattr(getattr(self.app, "config", None), "keymap", None) or {}
        keys = keymap.get("pane.thinking") or "t"
        return self.app.get_key_display(Binding(keys.split(",")[0].strip(), "toggle_thinking"))

    def action_toggle_thinking(self) -> None:
        """Open or close the run's reasoning block."""
        if self.transcript.toggle_reasoning() is None:
            self.notify(f"{self.live.name}: no reasoning in this run.", timeout=2)

    def watch_raw(self, raw: bool) -> None:
        self.set_class(raw, "-raw")
        if raw and self.is_mounted:
            self.call_after_refresh(self.raw_log.pull)

    def watch_unread(self, unread: bool) -> None:
        self.post_message(self.UnreadChanged(self, unread))
