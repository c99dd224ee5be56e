"""The command palette's entries: the main screen's actions, and the current screen's own
bindings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.app import SystemCommand
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

if TYPE_CHECKING:
    from tui.ui.app import TokentopApp
    from tui.ui.screens.main import MainScreen


def shown_key(screen: Screen[Any], action: str, default: str) -> str:
    """The key bound to ``action`` among ``screen``'s active bindings, as the app displays
    it (``[keymap]`` remaps included); ``default`` when none is bound."""
    keys = [a.binding for a in screen.active_bindings.values() if a.binding.action == action]
    return screen.app.get_key_display(keys[0]) if keys else default


def app_commands(app: TokentopApp) -> Iterator[SystemCommand]:
    """tokentop's entries after Textual's: theme, compare, history, then (once the main
    screen is up) its session actions and one "open session" per session."""
    yield SystemCommand("Next theme", "Switch to the next theme", app.action_cycle_theme)
    yield SystemCommand("Compare sessions", "Side by side, with a prompt box", app.action_compare)
    yield SystemCommand("History", "Browse saved runs", app.action_history)
    main = app.main_screen
    if main is None:
        return
    yield from main_screen_commands(main)
    yield from session_commands(app, main)


def main_screen_commands(main: MainScreen) -> Iterator[SystemCommand]:
    """The main screen's session actions, for the app's system commands (reachable from
    every screen)."""
    for title, help_text, action in (
        ("Overview", "Show the overview tab", main.action_overview),
        ("Cancel run", "Cancel the current session's run", main.action_cancel_run),
        ("Restart run", "Restart the current session's run", main.action_restart_run),
        ("Restart all sessions", "Restart every session", main.action_restart_all),
        ("Edit prompt", "Edit the last turn's prompt and run it again", main.action_edit_prompt),
        ("Follow-up", "Type the next turn of the conversation", main.action_follow_up),
        ("New conversation", "Begin an empty conversation", main.action_new_conversation),
        ("Add session", "Add a session (kept in tokentop's own file)", main.action_add_session),
        (
            "Copy session",
            "Add a copy of the current session with another model",
            main.action_duplicate_session,
        ),
        ("Remove session", "Remove the current session", main.action_remove_session),
        ("Copy answer", "Copy the answer to the clipboard", main.action_copy_answer),
        ("Toggle follow", "Follow / unfollow the transcript tail", main.action_toggle_follow),
        (
            "Toggle raw events",
            "Raw server events instead of the transcript",
            main.action_toggle_raw,
        ),
        ("Monitor", "Run counts, percentiles and charts of a session", main.action_monitor),
        (
            "Acknowledge alerts",
            "Clear the current session's alerts",
            main.action_acknowledge_alerts,
        ),
        (
            "Acknowledge all alerts",
            "Clear every session's alerts",
            main.action_acknowledge_all_alerts,
        ),
    ):
        yield SystemCommand(title, help_text, action)


def session_commands(app: TokentopApp, main: MainScreen) -> Iterator[SystemCommand]:
    """One "Open session" entry per session: back to the main screen, on its tab."""

    def open_session(name: str) -> None:
        while app.screen is not main and len(app.screen_stack) > 1:
            app.pop_screen()
        main.show_session(name)

    for live in app.sessions:
        yield SystemCommand(
            f"Open session: {live.name}",
            f"{live.session.model} · {live.session.api}",
            partial(open_session, live.name),
        )


class ScreenBindingCommands(Provider):
    """Command palette entries for the current screen's own bindings.

    Every action of a screen with a binding description is then also reachable from the
    palette, named by that description and prefixed with the screen's title; the app's own
    bindings are left to the app's commands.
    """

    def _commands(self) -> list[tuple[str, Callable[[], Awaitable[object]], str]]:
        """(name, callback, help) of each active binding of the screen with a description."""
        screen = self.screen
        prefix = f"{screen.title}: " if screen.title else ""
        commands: list[tuple[str, Callable[[], Awaitable[object]], str]] = []
        seen: set[str] = set()
        for active in screen.active_bindings.values():
            binding = active.binding
            if active.node is self.app:  # the app's own commands are already listed
                continue
            if not binding.description or not active.enabled or binding.description in seen:
                continue
            seen.add(binding.description)
            callback = partial(self.app.run_action, binding.action, active.node)
            key = self.app.get_key_display(binding)
            help_text = f"{binding.tooltip}  ({key})" if binding.tooltip else f"key: {key}"
            commands.append((prefix + binding.description, callback, help_text))
        return commands

    async def discover(self) -> Hits:
        """All of the screen's actions, when the palette opens with no query."""
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        """The screen's actions whose description matches ``query``."""
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            if (score := matcher.match(name)) > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
