"""Compare: sessions side by side (up to four share the width, more scroll), one prompt
broadcast to all, and a word-level diff.

Each :class:`~tui.ui.widgets.compare_column.CompareColumn` follows one session: a checkbox
header (is this session part of the next broadcast?), a metrics bar, finish badge and
reconnect status over a :class:`TranscriptView`. Columns share the width up to four; more
scroll horizontally. The prompt box at the bottom starts a new run in every checked session.

Escape in the prompt box leaves the box and keeps its text (``p`` goes back to it); Escape
elsewhere closes the screen, and a draft left in the box is handed to ``keep_draft`` (the
app gives it back the next time compare opens). The screen moves the focus
itself with :meth:`Screen.set_focus`, at once, so keys that arrive together (a fast typist,
a busy loop) all see where the focus went: a ``p`` or a typed letter followed by Escape
leaves the box, never the screen.

Diff mode (``d``) replaces the transcripts of two columns (the first two by default, any two
picked in the diff bar) with their answers highlighted word by word, using
:func:`tui.ui.diff.word_diff`; the styles are component classes on theme variables.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import HorizontalScroll
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

from tui.session import SessionController
from tui.ui.commands import ScreenBindingCommands
from tui.ui.diff import WordDiff, word_diff
from tui.ui.key_routing import take_typed_key
from tui.ui.widgets.compare_column import CompareColumn
from tui.ui.widgets.compare_prompt import ComparePrompt
from tui.ui.widgets.diff_text import DiffBar, DiffScroll, DiffText
from tui.ui.widgets.footer import KeysFooter
from tui.ui.widgets.recording import RecordingStatus
from tui.ui.widgets.scroll_link import ScrollLink

__all__ = ["CompareColumn", "CompareScreen", "DiffScroll", "DiffText"]


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
            "ctrl+r",
            "round",
            "Round",
            id="compare.round",
            tooltip="Send a round of N runs to each checked session and rank them",
        ),
        Binding(
            "n",
            "next_change",
            "Next change",
            id="compare.next_change",
            tooltip="Scroll both diffed answers to their next difference",
        ),
        Binding(
            "escape",
            "close",
            "Back",
            id="compare.close",
            tooltip="Leave the prompt box (its text stays), or go back to the dashboard",
        ),
    ]

    DEFAULT_CSS = """
    CompareScreen { layout: vertical; }
    CompareScreen #compare-columns { height: 1fr; }
    CompareScreen #compare-columns.-many > CompareColumn { width: 25%; }
    CompareScreen #diff-bar { display: none; }
    CompareScreen.-diff #diff-bar { display: block; }
    """

    diff_mode: reactive[bool] = reactive(False)
    """True while two columns show their word diff."""

    def __init__(
        self,
        sessions: Sequence[SessionController],
        *,
        draft: str = "",
        keep_draft: Callable[[str], None] | None = None,
        recording: Callable[[], str | None] | None = None,
    ) -> None:
        """Compare ``sessions`` (up to four fit side by side; more scroll horizontally).

        ``draft``: the prompt box's text to start with (what an earlier compare left);
        ``keep_draft`` is called with the box's text when the screen closes, however it
        closes; ``recording`` says why runs are not saved (a line at the top while so)."""
        super().__init__()
        self.sessions = list(sessions)
        self._draft = draft
        self._keep_draft = keep_draft
        self._recording = recording
        self.diff: WordDiff | None = None
        """The diff shown in diff mode."""
        self.diff_pair: tuple[int, int] = (0, 1 if len(self.sessions) > 1 else 0)
        """Indexes of the two columns diffed (left, right)."""
        self.scroll_link = ScrollLink()
        """Links the columns' scrolling (``l``)."""

    def compose(self) -> ComposeResult:
        names = [live.name for live in self.sessions]
        if self._recording is not None:
            yield RecordingStatus(self._recording)
        yield DiffBar(names, self.diff_pair, id="diff-bar")
        with HorizontalScroll(id="compare-columns"):
            for index, live in enumerate(self.sessions):
                yield CompareColumn(live, index)
        yield ComparePrompt(names, value=self._draft, id="compare-prompt")
        yield KeysFooter()

    def on_mount(self) -> None:
        columns = self.query_one("#compare-columns")
        columns.set_class(len(self.sessions) > 4, "-many")
        self.scroll_link.follow(self, [view for c in self.columns for view in c.views])
        if any(live.current is not None for live in self.sessions) and not self._draft:
            self.focus_columns()  # there are answers to look at: the screen's keys work
        else:
            self.action_focus_prompt()

    def on_unmount(self) -> None:
        with contextlib.suppress(NoMatches):  # the box's very last keys, if it is still here
            self._draft = self.prompt_box.value
        if self._keep_draft is not None:
            self._keep_draft(self._draft)

    @on(Input.Changed, "#compare-prompt")
    def _draft_changed(self, event: Input.Changed) -> None:
        self._draft = event.value

    @property
    def prompt_box(self) -> ComparePrompt:
        """The prompt box."""
        return self.query_one("#compare-prompt", ComparePrompt)

    @property
    def linked(self) -> bool:
        """True while scrolling one column scrolls the others to the same line."""
        return self.scroll_link.linked

    @property
    def draft(self) -> str:
        """The text in the prompt box, not sent yet."""
        return self._draft

    @property
    def columns(self) -> list[CompareColumn]:
        """The columns, in session order."""
        return list(self.query(CompareColumn))

    @on(CompareColumn.SelectionChanged)
    def _name_targets(self) -> None:
        """The prompt box names the sessions the next prompt goes to."""
        self.prompt_box.name_targets([c.session_name for c in self.columns if c.selected])

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
        goes to the prompt box, so typing a question never fires commands letter by letter;
        keys that arrive together with ``p`` or a first letter go to the box too
        (:func:`~tui.ui.key_routing.take_typed_key`)."""
        take_typed_key(self, self.prompt_box, event, focus_action="focus_prompt", type_ahead=True)

    def focus_columns(self) -> None:
        """Focus the first column's transcript (or diff side), so the screen's keys work
        (nothing focused when it cannot take the focus: the next Escape still closes)."""
        columns = self.columns
        scroller = columns[0].shown_view if columns else None
        self.set_focus(scroller if scroller is not None and scroller.focusable else None)

    def broadcast(self, prompt: str) -> list[str]:
        """Send ``prompt`` to every checked session: a follow-up turn of its conversation when
        it has one (each column continues its own), else a first turn, all as one broadcast
        (the store links their conversations: History replays them side by side); returns
        the names of the sessions it went to (a session that cannot take it now says why)."""
        from tui.session.conversation_view import TurnRefused
        from tui.session.recording import new_broadcast_id

        targets = [column for column in self.columns if column.selected]
        if not targets:
            self.notify("No session is checked: check one in a column header.", severity="warning")
            return []
        self.diff_mode = False
        names: list[str] = []
        refused: list[str] = []
        broadcast_id = new_broadcast_id()  # links the columns' conversations in the store
        for column in targets:
            live = column.live
            if not live.conversation.turns:
                live.start(prompt, broadcast_id=broadcast_id)
            else:
                try:
                    live.send(prompt, broadcast_id=broadcast_id)
                except TurnRefused as exc:
                    refused.append(str(exc))
                    continue
            names.append(column.session_name)
        if names:
            self.notify(f"sent to {', '.join(names)}", timeout=2)
        if refused:
            self.notify("\n".join(refused), title="Not sent", severity="warning", markup=False)
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
        self.query_one(DiffBar).show_summary(diff)

    @on(CompareColumn.RunStarted)
    def leave_diff_for_new_run(self, message: CompareColumn.RunStarted) -> None:
        """A diffed answer is being replaced by a new run: the diff no longer holds."""
        if self.diff_mode and message.column.index in self.diff_pair:
            self.diff_mode = False

    @on(DiffBar.PairChanged)
    def _pick_diff_columns(self, message: DiffBar.PairChanged) -> None:
        self.diff_pair = message.pair
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

    def action_toggle_link(self) -> None:
        """Link or unlink the columns' scrolling."""
        link = self.scroll_link
        link.linked = not link.linked
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
        self.set_focus(column.shown_view)
        self.query_one("#compare-columns").scroll_to_widget(column, animate=False)

    def action_next_column(self) -> None:
        """Focus the next column (scrolls it into view when there are many)."""
        self._go_to_column(+1)

    def action_previous_column(self) -> None:
        """Focus the previous column."""
        self._go_to_column(-1)

    def action_focus_prompt(self) -> None:
        """Move the focus to the prompt box."""
        self.set_focus(self.prompt_box)

    def action_select_all(self) -> None:
        """Check every session, or uncheck them all when all are checked."""
        columns = self.columns
        value = not all(column.selected for column in columns)
        for column in columns:
            column.selected = value

    def action_round(self) -> None:
        """Ask for a round (runs per session, order, prompt) over the checked sessions, then
        run it on its own screen (:mod:`tui.ui.screens.rounds`)."""
        from tui.ui.screens.rounds import ask_for_round

        names = [column.session_name for column in self.columns if column.selected]
        ask_for_round(self, names, self.prompt_box.value or None)

    def action_cancel_runs(self) -> None:
        """Cancel the running runs of the checked sessions."""
        for column in self.columns:
            if column.selected and not column.done:
                column.live.cancel()

    def action_close(self) -> None:
        """Leave the prompt box (its text stays in it), or go back to the dashboard (the
        runs go on; a draft goes to ``keep_draft``)."""
        if self.focused is self.prompt_box:
            self.focus_columns()
            return
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        else:
            self.app.exit()
