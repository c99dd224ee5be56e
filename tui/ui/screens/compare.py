"""Compare: sessions side by side (up to four share the width, more scroll), one prompt
broadcast to all, and a word-level diff.

Each :class:`~tui.ui.widgets.compare_column.CompareColumn` follows one session: a checkbox
header (is this session part of the next broadcast?), a metrics bar, finish badge and
reconnect status over a :class:`TranscriptView`. Columns share the width up to four; more
scroll horizontally. The prompt box at the bottom starts a new run in every checked session.

Diff mode (``d``) replaces the transcripts of two columns (the first two by default, any two
picked in the diff bar) with their answers highlighted word by word, using
:func:`tui.ui.diff.word_diff`; the styles are component classes on theme variables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import Horizontal, HorizontalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Checkbox, Footer, Input, Select, Static

from tui.session import SessionController
from tui.ui.commands import ScreenBindingCommands
from tui.ui.diff import WordDiff, word_diff
from tui.ui.widgets.compare_column import CompareColumn
from tui.ui.widgets.diff_text import DiffScroll, DiffText, diff_summary
from tui.ui.widgets.transcript import TranscriptView

__all__ = ["CompareColumn", "CompareScreen", "DiffScroll", "DiffText", "prompt_placeholder"]


def prompt_placeholder(names: Sequence[str], total: int) -> str:
    """What the empty prompt box says: which of ``total`` sessions the prompt goes to."""
    if not names:
        return "no session checked: check one in a column header (a checks all)"
    if len(names) == total and total > 3:
        who = f"all {total} sessions"
    elif len(names) > 3:
        who = f"{', '.join(names[:3])} and {len(names) - 3} more"
    elif len(names) > 1:
        who = f"{', '.join(names[:-1])} and {names[-1]}"
    else:
        who = names[0]
    return f"prompt for {who} (enter sends)"


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
            placeholder=prompt_placeholder(
                [live.name for live in self.sessions], len(self.sessions)
            ),
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

    @on(CompareColumn.SelectionChanged)
    def _name_targets(self) -> None:
        """The prompt box names the sessions the next prompt goes to."""
        names = [column.session_name for column in self.columns if column.selected]
        prompt = self.query_one("#compare-prompt", Input)
        prompt.placeholder = prompt_placeholder(names, len(self.sessions))

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
        self.query_one("#diff-summary", Static).update(diff_summary(diff))

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
