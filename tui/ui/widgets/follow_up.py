"""FollowUpLine: the prompt line for a conversation's next turn, at the bottom of a pane.

A hint line over an :class:`~textual.widgets.Input`: which turn Enter sends (and, after a
turn that ended in tool calls, that the prompt goes as their output), or why the last
prompt was refused. Enter posts :class:`FollowUpLine.Sent`; the pane sends it (the line
does not know the session). Escape leaves the line and keeps its text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from tui.session.conversation_view import ConversationView
from tui.ui.keymap import BINDING_IDS
from tui.vocab import TONE_GLYPHS

__all__ = ["FollowUpLine", "follow_up_hint"]


def follow_up_hint(conversation: ConversationView) -> str:
    """What Enter sends now: the next turn's number, and for whom its prompt is meant."""
    turn = conversation.next_turn
    calls = conversation.pending_tool_calls
    if calls:
        names = ", ".join(dict.fromkeys(call.name or "?" for call in calls))
        return (
            f"turn {turn}: the prompt is sent as the output of the tool "
            f"call{'s' if len(calls) > 1 else ''} {names} · Enter sends"
        )
    last = conversation.turns[-1] if conversation.turns else None
    if last is not None and not last.kept and last.status is not None:
        ended = last.finish_reason or last.status
        return f"turn {turn} again, in place of the try that ended {ended} · Enter sends"
    if turn == 1:
        return "turn 1 of a new conversation · Enter sends"
    return f"turn {turn}: a follow-up · Enter sends · Esc leaves the line"


class FollowUpLine(Vertical):
    """The next turn's prompt line: a hint, then the input."""

    DEFAULT_CSS = """
    FollowUpLine { height: auto; padding: 0 1; }
    FollowUpLine #follow-up-hint { height: 1; color: $text-muted; }
    FollowUpLine.-refused #follow-up-hint { color: $error; }
    FollowUpLine Input { height: 1; border: none; padding: 0 1; background: $boost; }
    FollowUpLine Input:focus { border: none; background: $surface-lighten-1; }
    """

    BINDING_GROUP_TITLE = "Prompt line"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "leave",
            "Leave",
            id="follow_up.leave",
            tooltip=BINDING_IDS["follow_up.leave"],
        ),
    ]

    @dataclass
    class Sent(Message):
        """Enter was pressed on a prompt (not yet sent: the pane decides)."""

        line: FollowUpLine
        prompt: str

    @dataclass
    class Left(Message):
        """Escape left the line (its text stays)."""

        line: FollowUpLine

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.input = Input(placeholder="a follow-up…", id="follow-up-input")
        """The prompt input."""
        self._hint = ""
        self._refusal: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="follow-up-hint", markup=False)
        yield self.input

    @property
    def hint(self) -> str:
        """The line over the input as shown (a refusal while there is one)."""
        return self._refusal if self._refusal is not None else self._hint

    def show_hint(self, hint: str) -> None:
        """What Enter sends now (shown unless a refusal is)."""
        if hint != self._hint:
            self._hint = hint
            self._render_hint()

    def refuse(self, reason: str | None) -> None:
        """Show why the prompt was not sent (None: the refusal is over)."""
        self._refusal = None if reason is None else f"{TONE_GLYPHS['failed']} {reason}"
        self.set_class(reason is not None, "-refused")
        self._render_hint()

    def _render_hint(self) -> None:
        if self.is_mounted:
            self.query_one("#follow-up-hint", Static).update(self.hint)

    def on_mount(self) -> None:
        self._render_hint()

    @on(Input.Submitted, "#follow-up-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Sent(self, event.value))

    @on(Input.Changed, "#follow-up-input")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._refusal is not None and not event.value:
            self.refuse(None)

    def action_leave(self) -> None:
        """Leave the line (the text stays for later)."""
        self.post_message(self.Left(self))
