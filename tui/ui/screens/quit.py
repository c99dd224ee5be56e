"""The quit guard: ``q`` while runs are active or repeats are scheduled asks first.

:func:`quit_question` says what quitting would stop (None: nothing, quit at once);
:class:`QuitConfirm` asks it (``y`` quits, ``n`` or ``escape`` stays). ``[ui] confirm_quit =
false`` skips the question. Quitting records every run either way (as cancelled when the
quit cut it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

from tui.session import SessionController


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def quit_question(sessions: Sequence[SessionController]) -> str | None:
    """``2 runs active, 1 session repeating — quit?``; None when nothing would be stopped."""
    # a running session is mid-run unless it waits for its next repeat
    active = sum(1 for s in sessions if s.running and s.state != "waiting")
    repeating = sum(1 for s in sessions if s.running and s.session.repeat is not None)
    if not active and not repeating:
        return None
    parts = [_plural(active, "run") + " active"]
    if repeating:
        parts.append(_plural(repeating, "session") + " repeating")
    return ", ".join(parts) + " — quit?"


class QuitConfirm(ModalScreen[bool]):
    """Asks ``question``; dismisses with True (quit) or False (stay)."""

    DEFAULT_CSS = """
    QuitConfirm { align: center middle; }
    QuitConfirm > Vertical {
        width: auto;
        max-width: 90%;
        height: auto;
        border: thick $warning 60%;
        background: $surface;
        padding: 1 2;
    }
    QuitConfirm #quit-question { text-style: bold; }
    QuitConfirm #quit-keys { color: $text-muted; margin: 1 0 0 0; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Quit", id="quit_confirm.yes"),
        Binding("n,escape", "answer(False)", "Stay", id="quit_confirm.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, id="quit-question", markup=False)
            yield Label("y quits (every run is recorded) · n or esc stays", id="quit-keys")

    def action_answer(self, quit_now: bool) -> None:
        """Close with the answer."""
        self.dismiss(quit_now)
