"""CompareColumn: one session in the compare screen (header, metrics, badges, transcript or
one side of a word diff), following its :class:`~tui.session.SessionController`.

A column opened on a session that has a run shows that run from the screen's first frame:
its outcome and metrics at once, and its answer as plain text (cheap at any length) laid
over the transcript until the transcript has rendered it as Markdown, which takes a moment
(seconds for long answers on a busy loop); the transcript renders in its own place and size
meanwhile (Markdown laid out before the screen's first layout costs several times more). A
note above the transcript says what the column waits for (no run yet, or the first token).

Whether the next prompt goes to the column is said in words under its header ("✓ in next
prompt" on the accent band, "○ not in next prompt" muted) and an unchecked column is
dimmed, in every theme (Textual's own theme variables).

The transcript holds the whole conversation, as a session pane's does: the earlier turns
(:class:`~tui.ui.widgets.turns.EarlierTurns`, each rendered once) above the live turn. The
word diff compares the live (latest) turn's answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Container, Horizontal, Vertical
from textual.message import Message
from textual.widgets import Checkbox, Static

from tui.session import SessionController, SessionRun
from tui.stream.events import Finished, RawEvent, RunEvent
from tui.ui.diff import SideKind
from tui.ui.ticker import Ticker
from tui.ui.widgets.badges import FinishBadge, ReconnectStatus
from tui.ui.widgets.diff_text import DiffScroll, DiffText
from tui.ui.widgets.metrics_bar import MetricsBar
from tui.ui.widgets.transcript import TranscriptView
from tui.ui.widgets.transcript_items import ReasoningBlock, catch_up_events
from tui.ui.widgets.turns import EarlierTurns, turns_shown

METRICS_HZ = 5.0
"""How often each column's metrics bar gets a new snapshot."""

NO_RUN = "no run yet: type a prompt below"
"""The column's note while its session has had no run."""

WAITING = "waiting for the first token…"
"""The column's note while its run has shown nothing yet."""

PREVIEW_CHARS = 6_000
"""The most of an answer the plain preview holds (more than a column shows)."""

IN_NEXT_PROMPT = "✓ in next prompt"
NOT_IN_NEXT_PROMPT = "○ not in next prompt"
"""What the line under the header says, checked and unchecked."""


class CompareColumn(Vertical):
    """One session in the compare screen: header, metrics, badges, transcript or diff."""

    DEFAULT_CSS = """
    CompareColumn {
        width: 1fr;
        min-width: 30;
        height: 1fr;
        border-right: vkey $panel;
    }
    CompareColumn.-diff-side { border-right: vkey $accent; }
    CompareColumn > .column-head { height: 1; background: $primary 30%; }
    CompareColumn > .send-state {
        height: 1; padding: 0 1; background: $primary 30%; color: $foreground; text-style: bold;
    }
    CompareColumn.-unchecked > .column-head { background: $surface; }
    CompareColumn.-unchecked > .send-state {
        background: $surface; color: $text-muted; text-style: italic;
    }
    CompareColumn.-unchecked > MetricsBar,
    CompareColumn.-unchecked > .run-note,
    CompareColumn.-unchecked > .answer-area { opacity: 60%; }
    CompareColumn > .column-head > Checkbox {
        border: none; padding: 0; height: 1; width: 1fr; background: transparent;
    }
    CompareColumn > .column-head > FinishBadge { dock: right; }
    CompareColumn > MetricsBar { height: auto; max-height: 3; }
    CompareColumn > .run-note { height: 1; padding: 0 1; color: $text-muted; }
    CompareColumn > DiffScroll { display: none; height: 1fr; }
    CompareColumn.-diff-side > DiffScroll { display: block; }
    CompareColumn.-diff-side > .answer-area, CompareColumn.-diff-side TranscriptView {
        display: none;
    }
    CompareColumn > .answer-area { height: 1fr; layers: transcript preview; }
    CompareColumn .preview {
        layer: preview; position: absolute; width: 100%; height: 100%;
        padding: 0 1; overflow: hidden; background: $background; display: none;
    }
    CompareColumn.-previewing .preview { display: block; }
    """

    @dataclass
    class RunStarted(Message):
        """The column's session started a new run (its old answer is gone)."""

        column: CompareColumn

    @dataclass
    class SelectionChanged(Message):
        """The column was checked or unchecked for the next prompt."""

        column: CompareColumn

    def __init__(self, live: SessionController, index: int) -> None:
        super().__init__(id=f"column-{index}")
        self.live = live
        self.index = index
        self.run: SessionRun | None = None
        """The run shown (the session's current run once this column saw it start)."""
        self._unsubscribe: Callable[[], None] | None = None
        self._previewing = False
        self.turns = EarlierTurns()
        """The conversation's turns before the live one (at the top of the transcript)."""
        self._blank_for: str | None = None
        """The conversation id whose empty start the column shows (a new conversation
        before its first turn), else None."""

    @property
    def session_name(self) -> str:
        """The session this column follows."""
        return self.live.name

    def compose(self) -> ComposeResult:
        session = self.live.session
        with Horizontal(classes="column-head"):
            yield Checkbox(f"{session.name} · {session.model}", value=True, classes="send")
            yield FinishBadge()
        yield Static(IN_NEXT_PROMPT, classes="send-state", markup=False)
        yield MetricsBar()
        yield ReconnectStatus(idle_timeout_s=session.reconnect.idle_timeout_s)
        yield Static(NO_RUN, classes="run-note", markup=False)
        # a run so far, as plain text, until the transcript has rendered it
        # the run so far as plain text, laid over the transcript until it has rendered it
        preview = _preview_text(self.live.current)
        self._previewing = bool(preview)
        self.set_class(self._previewing, "-previewing")
        with Container(classes="answer-area"):
            yield TranscriptView(placeholder="")
            yield Static(preview, classes="preview", markup=False)
        with DiffScroll():
            yield DiffText()

    def on_mount(self) -> None:
        """Follow the session's events and show its current run, if any (its answer as a
        plain preview until the transcript has rendered it)."""
        view = self.query_one(TranscriptView)
        view.mount(self.turns, before=view.query_one("#reasoning", ReasoningBlock))
        self._unsubscribe = self.live.subscribe(self)
        self._untick = Ticker.of(self.app).subscribe(self, self.publish_metrics, METRICS_HZ)
        run = self.live.current
        if run is None:
            self.query_one(FinishBadge).clear("idle")
            self._show_note()
            return
        # A run already happened or is going on: show what it has so far, then follow it.
        self.run = run
        for event in catch_up_events(run.accumulator):
            view.apply(event)
        if run.finished is not None:
            view.apply(run.finished)
            self.query_one(FinishBadge).set_finished(run.finished)
        else:
            self.query_one(FinishBadge).clear(self.live.state)
        self.publish_metrics()
        self._show_note()

    def sync_turns(self) -> None:
        """Bring the earlier turns and the live turn's heading up to the conversation
        (cheap when nothing changed); a new conversation before its first turn empties the
        column."""
        conv = self.live.conversation
        shown = turns_shown(conv, self.run)
        self.turns.sync(shown.earlier, shown.live)
        if not shown.fresh:
            self._blank_for = None
        elif self._blank_for != conv.conversation_id:
            self._blank_for = conv.conversation_id
            self._end_preview()
            self.query_one(TranscriptView).reset()
            self.query_one(FinishBadge).clear(self.live.state)
            self.query_one(MetricsBar).show_run(None, None)

    def _show_note(self) -> None:
        """Say what the column waits for: a first run, or its first token (else nothing)."""
        note = self.query_one(".run-note", Static)
        run = self.run
        if run is None:
            text: str | None = NO_RUN
        elif run.done or self._previewing or self.query_one(TranscriptView).has_output:
            text = None
        else:
            text = WAITING
        if text is not None:
            note.update(text)
        note.display = text is not None

    def on_unmount(self) -> None:
        """Stop following the session (its run goes on)."""
        self._untick()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- SessionListener ---------------------------------------------------------------------

    def run_started(self, live: SessionController, run: SessionRun) -> None:
        """A new run of the session: clear the column for it."""
        self.run = run
        self._end_preview()
        self.query_one(TranscriptView).reset()
        self.query_one(FinishBadge).clear("connecting")
        self.query_one(ReconnectStatus).clear()
        self.query_one(MetricsBar).show_run(None, None)
        self.show_diff(None)
        self.sync_turns()
        self._show_note()
        self.post_message(self.RunStarted(self))

    def _end_preview(self) -> None:
        """The transcript shows the run now (or a new run began): the preview goes."""
        if self._previewing:
            self._previewing = False
            self.remove_class("-previewing")
            self.query_one(".preview", Static).update("")

    def run_events(
        self, live: SessionController, run: SessionRun, events: Sequence[RunEvent]
    ) -> None:
        """Events of the session's current run (cheap: the widgets batch)."""
        if run is not self.run or not self.is_attached:
            return
        transcript = self.query_one(TranscriptView)
        status = self.query_one(ReconnectStatus)
        badge = self.query_one(FinishBadge)
        for event in events:
            if type(event) is RawEvent:
                continue
            transcript.apply(event)
            status.apply(event)
            if isinstance(event, Finished):
                badge.set_finished(event)
                self.publish_metrics()
        if badge.status is None and badge.live_label != live.state:
            badge.live_label = live.state

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        """Checked or unchecked: say so under the header, dim or undim the column."""
        event.stop()
        selected = event.value
        self.set_class(not selected, "-unchecked")
        state = self.query_one(".send-state", Static)
        state.update(IN_NEXT_PROMPT if selected else NOT_IN_NEXT_PROMPT)
        self.post_message(self.SelectionChanged(self))

    @property
    def selected(self) -> bool:
        """True when the next broadcast goes to this session."""
        return self.query_one(Checkbox).value

    @selected.setter
    def selected(self, value: bool) -> None:
        self.query_one(Checkbox).value = value

    @property
    def views(self) -> tuple[TranscriptView, DiffScroll]:
        """The column's two scrolling views: the transcript and the diff side."""
        return self.query_one(TranscriptView), self.query_one(DiffScroll)

    @property
    def shown_view(self) -> TranscriptView | DiffScroll:
        """The view that shows the answer now: the diff side in diff mode, else the
        transcript."""
        transcript, diff = self.views
        return diff if self.has_class("-diff-side") else transcript

    @property
    def done(self) -> bool:
        """True when the run shown has finished."""
        return self.run is not None and self.run.done

    @property
    def output_text(self) -> str:
        """The answer of the run shown (the latest turn's), as the engine received it."""
        return "" if self.run is None else self.run.accumulator.output_text

    def start(self, prompt: str) -> None:
        """Start a new run of this session with ``prompt`` (:meth:`run_started` clears)."""
        self.live.start(prompt)

    def publish_metrics(self) -> None:
        """Hand the metrics bar a fresh snapshot (a few times a second), update the note
        (the first token has been rendered, or the run ended), and let the transcript show
        once it has rendered what the preview shows."""
        if self.run is not None and self.run is self.live.current:
            self.sync_turns()
            if self._blank_for is None:
                self.query_one(MetricsBar).show_run(self.live.snapshot(), self.run)
            self._show_note()
        if self._previewing:
            view = self.query_one(TranscriptView)
            if not view.has_pending and view.rendered_text == view.text:
                self.call_after_refresh(self._end_preview)  # once its blocks are laid out

    def show_diff(self, pieces: list[tuple[str, SideKind]] | None) -> None:
        """Show a side of a diff instead of the transcript (None: back to the transcript)."""
        self.set_class(pieces is not None, "-diff-side")
        if pieces is not None:
            self.query_one(DiffText).show(pieces)


def _preview_text(run: SessionRun | None) -> str:
    """A run's answer so far as plain text (its tool calls when it has no text yet)."""
    if run is None:
        return ""
    acc = run.accumulator
    if acc.output_text:
        text = acc.output_text
        return text[:PREVIEW_CHARS] + ("…" if len(text) > PREVIEW_CHARS else "")
    return "\n".join(f"⚙ {call.name or '?'}({call.arguments})" for call in acc.tool_calls)
