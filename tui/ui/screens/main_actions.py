"""What the main screen's session actions do: edit the last turn, a new conversation, the
dashboard's own sessions (add, copy, remove) and the copy of an answer. The
:class:`~tui.ui.screens.main.MainScreen` actions call these with the screen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.ui.clipboard import copy_to_tmux, under_tmux

if TYPE_CHECKING:
    from tui.ui.screens.main import MainScreen
    from tui.ui.sessions_edit import SessionsEditor

__all__ = [
    "add_session",
    "copy_answer",
    "edit_last_turn",
    "new_conversation",
    "remove_session",
]


def edit_last_turn(screen: MainScreen) -> None:
    """Edit the last turn's prompt in a modal, then run that turn again: the old try stays
    in the store, a branch of the same turn, in a conversation of one turn as in a longer
    one (:meth:`~tui.session.SessionController.edit_last`; a one-turn conversation's new
    prompt is also the session's, which its repeats send)."""
    live = screen.current_session
    if live is None:
        return
    turns = live.conversation.turns
    prompt = turns[-1].prompt if turns else live.prompt

    def run_edited(edited: str | None) -> None:
        if edited is not None and edited.strip():
            live.edit_last(edited)

    # the editor (a TextArea) is loaded when first used: the first frame does not need it
    from tui.ui.screens.prompt import PromptEditor

    screen.app.push_screen(PromptEditor(live.name, prompt), run_edited)


def new_conversation(screen: MainScreen) -> None:
    """End the current session's conversation and begin an empty one (a toast says so)."""
    live = screen.current_session
    if live is None:
        return
    live.new_conversation()
    pane = screen.pane_for(live)
    if pane is not None:
        pane.sync_turns()
    screen.notify(
        f"{live.name}: a new conversation; type its first turn on the prompt line.",
        timeout=3,
        markup=False,
    )


def _editor(screen: MainScreen) -> SessionsEditor | None:
    if screen.editor is None:
        screen.notify("Sessions cannot be added or removed in this dashboard.", timeout=3)
    return screen.editor


def add_session(screen: MainScreen, *, copy: bool = False) -> None:
    """Open the add-session form (``copy``: of the current session, for another model)."""
    editor = _editor(screen)
    if editor is not None:
        from tui.ui.sessions_edit import open_add_session

        open_add_session(screen, editor, copy=copy)


def remove_session(screen: MainScreen) -> None:
    """Ask, then remove the current session (one of tokentop's own)."""
    editor = _editor(screen)
    if editor is not None:
        from tui.ui.sessions_edit import confirm_remove_session

        confirm_remove_session(screen, editor)


def copy_answer(screen: MainScreen) -> None:
    """Copy the current session's answer to the clipboard (OSC 52; under tmux also into its
    paste buffer: :func:`~tui.ui.clipboard.copy_to_tmux`) and say where it went."""
    live = screen.current_session
    text = live.current.accumulator.output_text if live and live.current else ""
    if live is None or not text:
        screen.notify("Nothing to copy yet.", severity="warning", timeout=2)
        return
    screen.app.copy_to_clipboard(text)
    what = f"{len(text):,} characters of {live.name}"
    if under_tmux():
        screen.run_worker(_copy_to_tmux(screen, text, what), group="copy")
    else:
        screen.notify(f"Copied {what}.", timeout=2, markup=False)


async def _copy_to_tmux(screen: MainScreen, text: str, what: str) -> None:
    try:
        message, severity = await copy_to_tmux(text, what)
    except Exception as exc:  # a worker error would end the app: say it instead
        message, severity = f"Copying {what} into tmux's buffer failed: {exc}", "error"
    screen.notify(message, severity=severity, timeout=8, markup=False)
