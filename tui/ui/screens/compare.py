"""Compare: sessions side by side (up to four share the width, more scroll), one prompt
broadcast to all, and a word-level diff.

Each :class:`CompareColumn` follows one :class:`SessionController`: a checkbox header (is this
session part of the next broadcast?), a metrics bar, finish badge and reconnect status
over a :class:`TranscriptView`. Columns share the width up to four; more scroll
horizontally. The prompt box at the bottom starts a new run in every checked session.

Diff mode (``d``) replaces the transcripts of two columns (the first two by default, any two
picked in the diff bar) with their answers highlighted word by word, using
:func:`tui.ui.diff.word_diff`; the styles are component classes on theme variables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import Horizontal, HorizontalScroll, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.style import Style as VisualStyle
from textual.widget import Widget
from textual.widgets import Checkbox, Footer, Input, Select, Static

from tui.session import SessionController, SessionRun
from tui.stream.events import (
    Finished,
    RawEvent,
    ReasoningDelta,
    RunEvent,
    TextDelta,
    ToolCallDelta,
)
from tui.ui.commands import ScreenBindingCommands
from tui.ui.diff import SideKind, WordDiff, word_diff
from tui.ui.widgets.badges import FinishBadge, ReconnectStatus
from tui.ui.widgets.metrics_bar import MetricsBar
from tui.ui.widgets.transcript import TranscriptView

METRICS_HZ = 5.0
"""How often each column's metrics bar gets a new snapshot."""

_SIDE_CLASS: dict[SideKind, str] = {
    "equal": "",
    "insert": "diff--insert",
    "delete": "diff--delete",
}


class DiffText(Widget):
    """One side of a word diff, with changed words highlighted.

    The highlight styles are the component classes ``diff--insert`` and ``diff--delete``
    (theme variables), resolved at render time so that a theme switch restyles them.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"diff--insert", "diff--delete"}
    DEFAULT_CSS = """
    DiffText { width: 1fr; height: auto; padding: 0 1; }
    DiffText > .diff--insert { background: $success-muted; color: $text; text-style: bold; }
    DiffText > .diff--delete { background: $error-muted; color: $text; text-style: strike; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.pieces: list[tuple[str, SideKind]] = []
        """The text to show, as (text, kind) pieces."""

    def show(self, pieces: list[tuple[str, SideKind]]) -> None:
        """Show these pieces (from :meth:`WordDiff.left_pieces` / ``right_pieces``)."""
        self.pieces = pieces
        self.refresh(layout=True)

    @property
    def highlighted(self) -> list[tuple[str, SideKind]]:
        """The pieces that are highlighted (inserted or deleted text)."""
        return [(text, kind) for text, kind in self.pieces if kind != "equal"]

    def change_lines(self) -> list[int]:
        """The line (at the current width) where each highlighted region starts."""
        width = self.content_region.width
        if width <= 0:
            return []
        starts: list[int] = []
        previous = False
        for number, line in enumerate(self.render().wrap(width)):
            if not line.plain.strip():
                continue  # a blank line inside a change does not end it
            # Only highlighted pieces carry a style (see render), so any span is a change.
            highlighted = bool(line.spans)
            if highlighted and not previous:
                starts.append(number)
            previous = highlighted
        return starts

    def render(self) -> Content:
        """The pieces as one Content, changed words in their component style."""
        styles = {
            kind: self.get_visual_style(cls) if cls else None for kind, cls in _SIDE_CLASS.items()
        }
        parts: list[str | tuple[str, VisualStyle]] = []
        for text, kind in self.pieces:
            style = styles[kind]
            parts.append(text if style is None else (text, style))
        return Content.assemble(*parts)


def catch_up_events(run: SessionRun) -> list[RunEvent]:
    """Events that rebuild what ``run`` shows so far: its reasoning, tool calls and answer
    folded into one delta each (a column can open in the middle of a run)."""
    acc = run.accumulator
    events: list[RunEvent] = []
    if acc.reasoning_text:
        events.append(ReasoningDelta(0.0, acc.reasoning_text))
    for call in acc.tool_calls:
        events.append(ToolCallDelta(0.0, call.index, call.arguments, call.name, call.call_id))
    if acc.output_text:
        events.append(TextDelta(0.0, acc.output_text))
    return events


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
    CompareColumn > .column-head { height: 1; }
    CompareColumn > .column-head > Checkbox {
        border: none; padding: 0; height: 1; width: 1fr; background: transparent;
    }
    CompareColumn > .column-head > FinishBadge { dock: right; }
    CompareColumn > MetricsBar { height: auto; max-height: 3; }
    CompareColumn > DiffScroll { display: none; height: 1fr; }
    CompareColumn.-diff-side > DiffScroll { display: block; }
    CompareColumn.-diff-side > TranscriptView { display: none; }
    """

    @dataclass
    class RunStarted(Message):
        """The column's session started a new run (its old answer is gone)."""

        column: CompareColumn

    def __init__(self, live: SessionController, index: int) -> None:
        super().__init__(id=f"column-{index}")
        self.live = live
        self.index = index
        self.run: SessionRun | None = None
        """The run shown (the session's current run once this column saw it start)."""
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def session_name(self) -> str:
        """The session this column follows."""
        return self.live.name

    def compose(self) -> ComposeResult:
        session = self.live.session
        with Horizontal(classes="column-head"):
            yield Checkbox(f"{session.name} · {session.model}", value=True, classes="send")
            yield FinishBadge()
        yield MetricsBar()
        yield ReconnectStatus(idle_timeout_s=session.reconnect.idle_timeout_s)
        yield TranscriptView(placeholder="no run yet: type a prompt below")
        with DiffScroll():
            yield DiffText()

    def on_mount(self) -> None:
        """Follow the session's events and show its current run, if any."""
        self._unsubscribe = self.live.subscribe(self)
        self.set_interval(1 / METRICS_HZ, self.publish_metrics)
        run = self.live.current
        if run is None:
            self.query_one(FinishBadge).clear("idle")
            return
        # A run already happened or is going on: show what it has so far, then follow it.
        self.run = run
        view = self.query_one(TranscriptView)
        for event in catch_up_events(run):
            view.apply(event)
        if run.finished is not None:
            view.apply(run.finished)
            self.query_one(FinishBadge).set_finished(run.finished)
        else:
            self.query_one(FinishBadge).clear(self.live.state)
        self.publish_metrics()

    def on_unmount(self) -> None:
        """Stop following the session (its run goes on)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- SessionListener ---------------------------------------------------------------------

    def run_started(self, live: SessionController, run: SessionRun) -> None:
        """A new run of the session: clear the column for it."""
        self.run = run
        self.query_one(TranscriptView).reset()
        self.query_one(FinishBadge).clear("connecting")
        self.query_one(ReconnectStatus).clear()
        self.query_one(MetricsBar).snapshot = None
        self.show_diff(None)
        self.post_message(self.RunStarted(self))

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

    @property
    def selected(self) -> bool:
        """True when the next broadcast goes to this session."""
        return self.query_one(Checkbox).value

    @selected.setter
    def selected(self, value: bool) -> None:
        self.query_one(Checkbox).value = value

    @property
    def done(self) -> bool:
        """True when the run shown has finished."""
        return self.run is not None and self.run.done

    @property
    def output_text(self) -> str:
        """The answer of the run shown, as the engine received it."""
        return "" if self.run is None else self.run.accumulator.output_text

    def start(self, prompt: str) -> None:
        """Start a new run of this session with ``prompt`` (:meth:`run_started` clears)."""
        self.live.start(prompt)

    def publish_metrics(self) -> None:
        """Hand the metrics bar a fresh snapshot (a few times a second)."""
        if self.run is not None and self.run is self.live.current:
            self.query_one(MetricsBar).snapshot = self.live.snapshot()

    def show_diff(self, pieces: list[tuple[str, SideKind]] | None) -> None:
        """Show a side of a diff instead of the transcript (None: back to the transcript)."""
        self.set_class(pieces is not None, "-diff-side")
        if pieces is not None:
            self.query_one(DiffText).show(pieces)


class DiffScroll(VerticalScroll):
    """Scrolls a :class:`DiffText`."""


class CompareScreen(Screen[None]):
    """Sessions side by side (four share the width, more scroll), one prompt, word diff."""

    TITLE = "Compare"
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {ScreenBindingCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "p",
            "focus_prompt",
            "Prompt",
            id="compare.prompt",
            tooltip="Type a prompt for the checked sessions",
        ),
        Binding(
            "d",
            "toggle_diff",
            "Diff",
            id="compare.diff",
            tooltip="Highlight where two finished answers differ, word by word",
        ),
        Binding(
            "l",
            "toggle_link",
            "Link scroll",
            id="compare.link",
            tooltip="Scroll all columns together",
        ),
        Binding(
            "a",
            "select_all",
            "All/none",
            id="compare.select_all",
            tooltip="Check or uncheck every session for the next prompt",
        ),
        Binding(
            "ctrl+x",
            "cancel_runs",
            "Cancel",
            id="compare.cancel",
            tooltip="Cancel the running runs of the checked sessions",
        ),
        Binding(
            "right_square_bracket",
            "next_column",
            "Next column",
            id="compare.next_column",
            tooltip="Focus the next column (scrolls it into view)",
            key_display="]",
        ),
        Binding(
            "left_square_bracket",
            "previous_column",
            "Previous column",
            id="compare.previous_column",
            tooltip="Focus the previous column",
            show=False,
        ),
        Binding(
            "n",
            "next_change",
            "Next change",
            id="compare.next_change",
            tooltip="Scroll both diffed answers to their next difference",
        ),
        Binding("escape", "close", "Back", id="compare.close"),
    ]

    DEFAULT_CSS = """
    CompareScreen { layout: vertical; }
    CompareScreen #compare-columns { height: 1fr; }
    CompareScreen #compare-columns.-many > CompareColumn { width: 25%; }
    CompareScreen #diff-bar { height: auto; display: none; padding: 0 1; background: $boost; }
    CompareScreen.-diff #diff-bar { display: block; }
    CompareScreen #diff-bar > Select { width: 30; }
    CompareScreen #diff-summary { width: 1fr; height: 3; content-align: left middle; padding: 0 1; }
    CompareScreen #compare-prompt { dock: bottom; margin-bottom: 1; }
    """

    diff_mode: reactive[bool] = reactive(False)
    """True while two columns show their word diff."""
    linked: reactive[bool] = reactive(False)
    """True while scrolling one column scrolls the others to the same line."""

    def __init__(self, sessions: Sequence[SessionController]) -> None:
        """Compare ``sessions`` (up to four fit side by side; more scroll horizontally)."""
        super().__init__()
        self.sessions = list(sessions)
        self.diff: WordDiff | None = None
        """The diff shown in diff mode."""
        self.diff_pair: tuple[int, int] = (0, 1 if len(self.sessions) > 1 else 0)
        """Indexes of the two columns diffed (left, right)."""
        self._syncing = False
        self._typing_ahead = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="diff-bar"):
            options = [(live.name, i) for i, live in enumerate(self.sessions)]
            yield Select[int](options, value=self.diff_pair[0], allow_blank=False, id="diff-left")
            yield Select[int](options, value=self.diff_pair[1], allow_blank=False, id="diff-right")
            yield Static("", id="diff-summary")
        with HorizontalScroll(id="compare-columns"):
            for index, live in enumerate(self.sessions):
                yield CompareColumn(live, index)
        yield Input(
            placeholder="prompt for the checked sessions (enter sends)",
            id="compare-prompt",
            select_on_focus=False,
        )
        yield Footer()

    def on_mount(self) -> None:
        columns = self.query_one("#compare-columns")
        columns.set_class(len(self.sessions) > 4, "-many")
        for column in self.columns:
            for scroller in (column.query_one(TranscriptView), column.query_one(DiffScroll)):
                self.watch(scroller, "scroll_y", self._make_sync(scroller), init=False)
        if any(live.current is not None for live in self.sessions):
            self.focus_columns()  # there are answers to look at: the screen's keys work
        else:
            self.query_one("#compare-prompt", Input).focus()

    @property
    def columns(self) -> list[CompareColumn]:
        """The columns, in session order."""
        return list(self.query(CompareColumn))

    # -- broadcast ------------------------------------------------------------------------

    @on(Input.Submitted, "#compare-prompt")
    def _prompt_submitted(self, event: Input.Submitted) -> None:
        prompt = event.value.strip()
        if prompt:
            self.broadcast(prompt)
            event.input.value = ""
            self.focus_columns()

    def on_key(self, event: events.Key) -> None:
        """Type-ahead: printable text that does not start with one of the screen's keys
        goes to the prompt box, so typing a question never fires commands letter by letter
        (keys that arrive before the focus has moved go to the prompt too)."""
        prompt = self.query_one("#compare-prompt", Input)
        if prompt.has_focus or not event.is_printable or event.character is None:
            return
        if not self._typing_ahead and (
            event.key in self.active_bindings or isinstance(self.focused, Checkbox | Select)
        ):
            return
        event.stop()
        event.prevent_default()
        self._typing_ahead = True
        prompt.focus()
        prompt.insert_text_at_cursor(event.character)

    @on(Input.Blurred, "#compare-prompt")
    def _prompt_left(self) -> None:
        self._typing_ahead = False

    def focus_columns(self) -> None:
        """Focus the first column's transcript, so the screen's keys work."""
        columns = self.columns
        if columns:
            columns[0].query_one(TranscriptView).focus()

    def broadcast(self, prompt: str) -> list[str]:
        """Start a run with ``prompt`` in every checked session; returns their names."""
        targets = [column for column in self.columns if column.selected]
        if not targets:
            self.notify("No session is checked: check one in a column header.", severity="warning")
            return []
        self.diff_mode = False
        for column in targets:
            column.start(prompt)
        names = [column.session_name for column in targets]
        self.notify(f"sent to {', '.join(names)}", timeout=2)
        return names

    # -- diff -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``next_change`` only exists in diff mode."""
        if action == "next_change":
            return self.diff_mode
        return True

    def action_next_change(self) -> None:
        """Scroll each diffed answer to its next highlighted region (wraps around)."""
        for index in sorted(set(self.diff_pair)):
            column = self.columns[index]
            scroller = column.query_one(DiffScroll)
            starts = column.query_one(DiffText).change_lines()
            if not starts:
                continue
            target = next((line for line in starts if line > scroller.scroll_y), starts[0])
            scroller.scroll_to(y=target, animate=False, immediate=True)

    def watch_diff_mode(self, diff_mode: bool) -> None:
        self.refresh_bindings()
        self.set_class(diff_mode, "-diff")
        if diff_mode:
            self.refresh_diff()
        else:
            self.diff = None
            for column in self.columns:
                column.show_diff(None)

    def refresh_diff(self) -> None:
        """Diff the two picked columns' answers and show the highlighted sides."""
        left_index, right_index = self.diff_pair
        columns = self.columns
        left, right = columns[left_index], columns[right_index]
        self.diff = diff = word_diff(left.output_text, right.output_text)
        for column in columns:
            column.show_diff(None)
        left.show_diff(diff.left_pieces())
        right.show_diff(diff.right_pieces())
        if diff.identical:
            summary = "identical answers"
        else:
            changes = diff.changed
            plural = "" if changes == 1 else "s"
            summary = (
                f"{changes} difference{plural} · {diff.similarity():.0%} similar · "
                "[strike on $error-muted] removed [/] [b on $success-muted] added [/]"
            )
        self.query_one("#diff-summary", Static).update(Content.from_markup(summary))

    @on(CompareColumn.RunStarted)
    def leave_diff_for_new_run(self, message: CompareColumn.RunStarted) -> None:
        """A diffed answer is being replaced by a new run: the diff no longer holds."""
        if self.diff_mode and message.column.index in self.diff_pair:
            self.diff_mode = False

    @on(Select.Changed, "#diff-bar Select")
    def _pick_diff_columns(self) -> None:
        left = self.query_one("#diff-left", Select).value
        right = self.query_one("#diff-right", Select).value
        if isinstance(left, int) and isinstance(right, int):
            self.diff_pair = (left, right)
            if self.diff_mode:
                self.refresh_diff()

    def action_toggle_diff(self) -> None:
        """Highlight where the two picked answers differ (when their runs are done)."""
        if self.diff_mode:
            self.diff_mode = False
            return
        if len(self.sessions) < 2:
            self.notify("Diff needs two sessions.", severity="warning")
            return
        pending = [
            self.columns[i].session_name for i in set(self.diff_pair) if not self.columns[i].done
        ]
        if pending:
            self.notify(f"Still streaming or not run: {', '.join(pending)}", severity="warning")
            return
        self.diff_mode = True

    # -- linked scrolling ----------------------------------------------------------------

    def _make_sync(self, source: Widget) -> Callable[[float], None]:
        def sync(scroll_y: float) -> None:
            if not self.linked or self._syncing:
                return
            self._syncing = True
            try:
                for column in self.columns:
                    for target in (column.query_one(TranscriptView), column.query_one(DiffScroll)):
                        if target is not source and target.display:
                            target.scroll_to(y=scroll_y, animate=False, immediate=True)
            finally:
                self._syncing = False

        return sync

    def action_toggle_link(self) -> None:
        """Link or unlink the columns' scrolling."""
        self.linked = not self.linked
        self.notify("scrolling linked" if self.linked else "scrolling unlinked", timeout=1.5)

    # -- other actions --------------------------------------------------------------------

    def _focused_column(self) -> int:
        """Index of the column that holds the focus (-1: none does)."""
        node = self.focused
        while node is not None and not isinstance(node, CompareColumn):
            node = node.parent if isinstance(node.parent, Widget) else None
        return -1 if node is None else node.index

    def _go_to_column(self, step: int) -> None:
        columns = self.columns
        if not columns:
            return
        current = self._focused_column()
        index = (max(current, 0) + step) % len(columns) if current >= 0 else 0
        column = columns[index]
        scroller = column.query_one(
            DiffScroll if column.has_class("-diff-side") else TranscriptView
        )
        scroller.focus()
        self.query_one("#compare-columns").scroll_to_widget(column, animate=False)

    def action_next_column(self) -> None:
        """Focus the next column (scrolls it into view when there are many)."""
        self._go_to_column(+1)

    def action_previous_column(self) -> None:
        """Focus the previous column."""
        self._go_to_column(-1)

    def action_focus_prompt(self) -> None:
        """Move the focus to the prompt box."""
        self.query_one("#compare-prompt", Input).focus()

    def action_select_all(self) -> None:
        """Check every session, or uncheck them all when all are checked."""
        columns = self.columns
        value = not all(column.selected for column in columns)
        for column in columns:
            column.selected = value

    def action_cancel_runs(self) -> None:
        """Cancel the running runs of the checked sessions."""
        for column in self.columns:
            if column.selected and not column.done:
                column.live.cancel()

    def action_close(self) -> None:
        """Leave the prompt box, or go back to the dashboard (the runs go on)."""
        prompt = self.query_one("#compare-prompt", Input)
        if prompt.has_focus:
            self.focus_columns()
            return
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        else:
            self.app.exit()
