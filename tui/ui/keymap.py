"""Binding ids for the ``[keymap]`` table (posting-style remapping).

Every remappable :class:`~textual.binding.Binding` in tokentop has an ``id`` listed here, and
the config's ``[keymap]`` maps ids to keys (``cancel_run = "ctrl+x"``; several keys are
comma-separated). :func:`check_keymap` finds ids that do not exist so the app can report
them in one notification instead of silently ignoring a typo; the rest is handed to
:meth:`textual.app.App.set_keymap`.
"""

from __future__ import annotations

from collections.abc import Mapping

BINDING_IDS: dict[str, str] = {
    "quit": "Quit tokentop",
    "overview": "Show the overview tab",
    "next_tab": "Next tab",
    "previous_tab": "Previous tab",
    "cancel_run": "Cancel the current session's run",
    "restart_run": "Restart the current session's run",
    "edit_prompt": "Edit the last turn's prompt and run that turn again",
    "follow_up": "Type the next turn of the current session's conversation",
    "new_conversation": "Begin a new conversation in the current session",
    "add_session": "Add a session (a form; it is written to tokentop's own sessions file)",
    "duplicate_session": "Copy the current session with another model",
    "remove_session": "Remove the current session (one of tokentop's own)",
    "copy_answer": "Copy the answer to the clipboard",
    "toggle_follow": "Follow / unfollow the tail of the transcript",
    "toggle_raw": "Show the raw server events instead of the transcript",
    "restart_all": "Restart every session",
    "monitor": "Monitor view of the current session: runs, percentiles, charts",
    "acknowledge_alerts": "Acknowledge the current session's alerts",
    "acknowledge_all_alerts": "Acknowledge every session's alerts",
    "cycle_theme": "Switch to the next theme",
    "compare": "Compare sessions side by side",
    "history": "Browse saved runs",
    "command_palette": "Open the command palette",
    "help": "List every key of the current screen and the app's",
    "overview.filter": "Overview: filter sessions",
    "overview.sort": "Overview: sort by the next column",
    "overview.sort_reverse": "Overview: reverse the sort order",
    "overview.clear_filter": "Overview: clear the filter (a second escape does what it did)",
    "quit_confirm.yes": "Quit question: quit (every run is recorded)",
    "quit_confirm.no": "Quit question: stay",
    "monitor.window": "Monitor: switch the window (10 min, 1 hour, every run)",
    "monitor.next_session": "Monitor: the next session",
    "monitor.previous_session": "Monitor: the previous session",
    "monitor.close": "Monitor: back to the dashboard",
    "prompt.run": "Prompt editor: run the edited prompt",
    "prompt.cancel": "Prompt editor: close without running",
    "compare.prompt": "Compare: type a prompt for the checked sessions",
    "compare.diff": "Compare: highlight where two finished answers differ",
    "compare.link": "Compare: scroll all columns together",
    "compare.select_all": "Compare: check or uncheck every session",
    "compare.cancel": "Compare: cancel the runs of the checked sessions",
    "compare.next_column": "Compare: focus the next column",
    "compare.previous_column": "Compare: focus the previous column",
    "compare.next_change": "Compare: scroll the diffed answers to their next difference",
    "compare.close": "Compare: back to the dashboard",
    "compare.round": "Compare: a round of N runs per checked session, ranked with statistics",
    "round_setup.cancel": "Round setup: close without a round",
    "round.by": "Round: rank by the next metric (TTFT, tokens/s, duration)",
    "round.cancel": "Round: cancel the round",
    "round.close": "Round: back to compare (the round goes on)",
    "rounds.open": "Rounds: show the selected round's table",
    "rounds.close": "Rounds: back to History",
    "history.rounds": "History: the stored compare rounds",
    "history.search": "History: full-text search over prompts and answers",
    "history.open": "History: replay the selected run with its original timing",
    "history.open_instant": "History: show the selected run at once",
    "history.replay_columns": "History: replay the compare of the selected run, side by side",
    "history.reload": "History: read the store again",
    "history.clear_filters": "History: clear the search and every filter",
    "history.close": "History: back to where it was opened from",
    "replay.pause": "Replay: pause or resume",
    "replay.slower": "Replay: halve the speed (down to 0.25x)",
    "replay.faster": "Replay: double the speed (up to 10x)",
    "replay.instant": "Replay: show the rest of the run at once",
    "replay.restart": "Replay: play the run again from the start",
    "replay.columns": "Replay: replay the compare this conversation was a column of, side by side",
    "replay.close": "Replay: close (quits a command-line replay)",
    "help.close": "Key help: back to the screen",
    "raw.top": "Raw events: the first event (stops following)",
    "raw.bottom": "Raw events: the newest event, and follow the new ones",
    "pane.thinking": "Session: show or hide the run's reasoning (thinking)",
    "pane.follow_up": "Session: type the next turn on the prompt line (as follow_up does)",
    "follow_up.leave": "Prompt line: leave it (its text stays)",
    "add_session.save": "Add session: add it",
    "add_session.cancel": "Add session: close without adding",
    "remove_session.yes": "Remove session: remove it",
    "remove_session.no": "Remove session: keep it",
}
"""Every binding id of the app, its screens and widgets (:data:`BOUND_CLASSES`), with what
it does (for docs and validation)."""


def check_keymap(keymap: Mapping[str, str], known: Mapping[str, str] = BINDING_IDS) -> list[str]:
    """Problems in a ``[keymap]`` table: unknown ids and empty key lists (one line each)."""
    problems: list[str] = []
    for binding_id, keys in keymap.items():
        if binding_id not in known:
            problems.append(f"unknown binding id {binding_id!r}")
        elif not isinstance(keys, str) or not keys.strip():
            problems.append(f"{binding_id!r}: no key given")
    return problems


def usable_keymap(
    keymap: Mapping[str, str], known: Mapping[str, str] = BINDING_IDS
) -> dict[str, str]:
    """The part of ``keymap`` that can be applied (known ids with keys)."""
    return {
        binding_id: keys.strip()
        for binding_id, keys in keymap.items()
        if binding_id in known and isinstance(keys, str) and keys.strip()
    }


BOUND_CLASSES: tuple[tuple[str, str], ...] = (
    ("tui.ui.screens.main", "MainScreen"),
    ("tui.ui.widgets.overview", "OverviewTable"),
    ("tui.ui.screens.monitor", "MonitorScreen"),
    ("tui.ui.screens.quit", "QuitConfirm"),
    ("tui.ui.screens.prompt", "PromptEditor"),
    ("tui.ui.screens.compare", "CompareScreen"),
    ("tui.ui.screens.rounds", "RoundSetup"),
    ("tui.ui.screens.rounds", "RoundScreen"),
    ("tui.ui.screens.rounds", "RoundList"),
    ("tui.ui.screens.history", "HistoryScreen"),
    ("tui.ui.screens.replay", "ReplayScreen"),
    ("tui.ui.screens.help", "HelpScreen"),
    ("tui.ui.widgets.raw_log", "RawEventLog"),
    ("tui.ui.widgets.session_pane", "SessionPane"),
    ("tui.ui.widgets.follow_up", "FollowUpLine"),
    ("tui.ui.screens.add_session", "AddSessionScreen"),
    ("tui.ui.screens.add_session", "RemoveSessionConfirm"),
)
"""(module, class) of every screen and widget that declares bindings, besides the app."""


def bound_classes() -> list[type[object]]:
    """The classes of :data:`BOUND_CLASSES` (imported now; one that cannot be imported has
    no bindings to remap)."""
    import importlib

    found: list[type[object]] = []
    for module, name in BOUND_CLASSES:
        try:
            found.append(getattr(importlib.import_module(module), name))
        except Exception:
            continue
    return found
