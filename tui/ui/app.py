"""TokentopApp: the Textual dashboard. Thin by design: screens compose, widgets own behaviour.

The app owns what outlives screens: the theme catalog, the keymap and the
:class:`~tui.session.SessionRuntime` (the store, the HTTP client, the simulator and one
:class:`~tui.session.SessionController` per configured session). Nothing that goes wrong
here ends the app: a broken theme file, an unknown keymap id or a store that cannot be
opened becomes a notification.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from tui.config import AppConfig
from tui.session import SessionController, SessionRuntime
from tui.ui.app_store import DashboardStore, ReplayHost
from tui.ui.commands import app_commands
from tui.ui.keymap import BINDING_IDS, bound_classes, check_keymap, usable_keymap
from tui.ui.monitoring import Monitoring
from tui.ui.screens.main import MainScreen
from tui.ui.sessions_edit import SessionsEditor, local_problems
from tui.ui.themes import ThemeCatalog, app_variable_defaults, load_themes, problems_message
from tui.ui.widgets.recording import RecordingStatus

if TYPE_CHECKING:
    from tui.config.overlay import LoadedConfig
    from tui.store import Store

log = logging.getLogger(__name__)

DEFAULT_THEME = "tokentop-dark"

GC_THRESHOLDS = (25_000, 10, 10)
"""Collector thresholds while the dashboard runs (Python's default is 700, 10, 10).
Rendering makes short-lived cycles by the ten thousand per second; a first generation this
large lets them die young instead of triggering frequent full collections, which stall the
event loop (figures in ``bench/RESULTS.md``)."""


class TokentopApp(App[None]):
    """The tokentop dashboard: overview, session tabs, compare, history and replay."""

    CSS_PATH = "app.tcss"
    TITLE = "tokentop"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("ctrl+t", "cycle_theme", "Theme", id="cycle_theme"),
        Binding("c", "compare", "Compare", id="compare"),
        Binding("h", "history", "History", id="history"),
        Binding("ctrl+p", "command_palette", "Commands", id="command_palette", show=False),
        Binding("question_mark", "help", "Keys", id="help", tooltip=BINDING_IDS["help"]),
    ]

    def __init__(
        self,
        config: AppConfig,
        *,
        db_path: Path | None = None,
        theme: str | None = None,
        replay_run_id: str | None = None,
        replay_conversation_id: str | None = None,
        replay_speed: float | None = 1.0,
        replay_columns: bool = False,
        clock: Callable[[], float] | None = None,
        theme_dirs: Iterable[Path | None] | None = None,
        autostart: bool = True,
        freeze_gc: bool = False,
        local: LoadedConfig | None = None,
    ) -> None:
        """``local``: ``config`` as :func:`~tui.config.overlay.load_with_local` merged it:
        the sessions added here and the theme chosen are kept in tokentop's own file (None:
        until the app quits). ``replay_conversation_id`` / ``replay_run_id``: replay that (with
        ``replay_columns``, the compare the conversation was a column of, side by side)."""
        super().__init__()
        self.config = config
        self.db_path = db_path
        self.requested_theme = theme or config.ui.theme
        self.replay_run_id = replay_run_id
        self.replay_conversation_id = replay_conversation_id
        self.replay_speed = replay_speed
        self.replay_columns = replay_columns
        self.clock: Callable[[], float] = clock or time.monotonic
        self.runtime = SessionRuntime(
            config.sessions, clock=self.clock, on_warning=self.report_warning
        )
        """The sessions' runtime: store, simulator, HTTP client, one controller each."""
        self.database = DashboardStore(self, self.runtime, db_path, config.store)
        """The database: the sessions' writer, or a reader (replay)."""
        self.runtime.on_store_error = self.database.report_error
        self.sessions: list[SessionController] = self.runtime.controllers
        self.local = local
        self.sessions_edit = (
            SessionsEditor.from_loaded(self.runtime, local, on_error=self.report_warning)
            if local
            else SessionsEditor(self.runtime, None)
        )
        """Adds and removes the dashboard's own sessions; keeps the chosen theme."""
        self.monitoring = Monitoring(self, self.runtime, config.ui, self.database.writing)
        """Finished-run tally, monitoring figures and alerts (header, overview, monitor)."""
        self.theme_catalog = ThemeCatalog()
        self._theme_dirs = list(theme_dirs) if theme_dirs is not None else None
        self.autostart = autostart
        """Start every session on mount (tests and snapshots feed events themselves)."""
        self.freeze_gc = freeze_gc
        """Tune the garbage collector for a long-running app: off while the app starts (the
        start-up makes objects that live as long as the app, a few thousand of garbage, and
        its collections scanned them for nothing), then, once the store is open and the
        sessions started (just after the first frame), the startup heap frozen and
        collection back on, less often: see :data:`GC_THRESHOLDS`."""
        self._begun = asyncio.Event()
        self._compare_draft = ""
        """What the compare prompt box held when compare last closed (offered again)."""
        self._load_themes()
        self._apply_keymap()
        if freeze_gc:
            gc.disable()

    # -- themes and keymap ----

    def get_theme_variable_defaults(self) -> dict[str, str]:
        """tokentop's colour variables (``$status-ok`` ...) for themes that do not set them."""
        return app_variable_defaults(self.current_theme)

    def _load_themes(self) -> None:
        from tui.ui.themes import default_theme_dirs

        dirs = self._theme_dirs if self._theme_dirs is not None else default_theme_dirs()
        self.theme_catalog = load_themes(dirs)
        for theme in self.theme_catalog.themes.values():
            self.register_theme(theme)
        wanted = self.requested_theme or DEFAULT_THEME
        if wanted in self.available_themes:
            self.theme = wanted
        elif DEFAULT_THEME in self.available_themes:
            self.theme = DEFAULT_THEME

    def _apply_keymap(self) -> None:
        if not self.config.keymap:  # nothing to remap: spare the start-up the screen imports
            return
        self.set_keymap(usable_keymap(self.config.keymap, self.known_binding_ids()))

    def known_binding_ids(self) -> dict[str, str]:
        """Binding ids of tokentop and of every screen that declares some."""
        known = dict(BINDING_IDS)
        for screen_cls in (TokentopApp, *bound_classes()):
            for binding in getattr(screen_cls, "BINDINGS", []):
                if isinstance(binding, Binding) and binding.id:
                    known.setdefault(binding.id, binding.description or binding.action)
        return known

    def _report_startup_problems(self) -> None:
        if self.theme_catalog.problems:
            self.notify(
                problems_message(self.theme_catalog.problems),
                title="Theme files",
                severity="warning",
                timeout=12,
            )
        wanted = self.requested_theme
        if wanted and wanted not in self.available_themes:
            self.notify(
                f"Unknown theme {wanted!r}; using {self.theme!r}.",
                title="Theme",
                severity="warning",
                timeout=8,
            )
        problems = (
            check_keymap(self.config.keymap, self.known_binding_ids()) if self.config.keymap else []
        )
        if problems:
            self.notify("\n".join(problems), title="[keymap]", severity="warning", timeout=12)
        own_file = local_problems(self.local) if self.local is not None else None
        if own_file:
            self.notify(
                own_file, title="tokentop's own file", severity="warning", timeout=12, markup=False
            )

    def action_help(self) -> None:
        """List every key of the current screen and the app's."""
        from tui.ui.screens.help import show_help

        show_help(self)

    def action_cycle_theme(self) -> None:
        """Switch to the next theme (tokentop's own first, then Textual's)."""
        ours = sorted(self.theme_catalog.themes)
        others = sorted(set(self.available_themes) - set(ours))
        names = ours + others
        index = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(index + 1) % len(names)]
        self.notify(f"Theme: {self.theme}", timeout=1.5)
        self.sessions_edit.keep_ui(theme=self.theme)

    # -- lifecycle ----

    async def on_mount(self) -> None:
        self._report_startup_problems()
        if self.replaying:
            await self.database.open_reader()
            if self.store is not None:
                # `tokentop replay ID`: the replay is the whole app; closing it quits.
                await self.push_screen(ReplayHost())
                self._open_asked_replay()
                self.call_after_refresh(self._resume_gc)
                return
        self.monitoring.start()
        main = MainScreen(self.sessions, monitoring=self.monitoring, editor=self.sessions_edit)
        await self.push_screen(main)
        self.call_after_refresh(self._begin)  # paint first: the store, client, streams after

    @property
    def replaying(self) -> bool:
        """True when the app is a replay (``tokentop replay ID``)."""
        return self.replay_run_id is not None or self.replay_conversation_id is not None

    def _open_asked_replay(self) -> None:
        target = self.replay_run_id or self.replay_conversation_id or ""
        if self.replay_columns:
            self.database.open_compare_replay(target, self.replay_speed)
        else:
            self.open_replay(target, self.replay_speed, self.replay_conversation_id)

    @property
    def store(self) -> Store | None:
        """The open store (the sessions' writer, or a reader), None without one."""
        return self.database.store

    @property
    def begun(self) -> bool:
        """True once the store is open and the sessions started (just after the first frame)."""
        return self._begun.is_set()

    async def _begin(self) -> None:
        """After the first frame: the store, the HTTP client, the simulator, the streams."""
        main = self.main_screen
        if main is not None and main.is_attached:  # the line: while it lasts, runs not saved
            await main.mount(RecordingStatus(self.database.recording_problem))
        if self.replaying:  # no store: say so over the (idle) main screen
            self._resume_gc()
            self._open_asked_replay()
            return
        try:
            await self.database.open_writer()
            await self.runtime.start()
            self.monitoring.figures.refresh()  # earlier dashboards' runs, before any run ends
        finally:  # never leave the sessions waiting for a start that will not come
            self._resume_gc()
            self._begun.set()
        if self.autostart:
            for live in self.sessions:
                live.start()

    def _resume_gc(self) -> None:
        if self.freeze_gc:  # the startup heap lives as long as the app: never scan it again
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
            gc.enable()

    async def on_unmount(self) -> None:
        if self.freeze_gc:
            gc.enable()  # an app that quit before its start was over
        await self.monitoring.aclose()  # no read of the store while it closes
        await self.sessions_edit.aclose()  # the last theme chosen is written
        await self.runtime.close(grace_s=1.0)
        await self.database.close()

    async def action_quit(self) -> None:
        """Quit; while runs are active or repeats scheduled, ask first (``[ui]
        confirm_quit``). A second ``q`` while asking does not stack a second question."""
        from tui.ui.screens.quit import QuitConfirm, quit_question

        question = quit_question(self.sessions) if self.config.ui.confirm_quit else None
        if question is None:
            self.exit()
        elif not isinstance(self.screen, QuitConfirm):
            self.push_screen(QuitConfirm(question), self._quit_answered)

    def _quit_answered(self, quit_now: bool | None) -> None:
        if quit_now:
            self.exit()

    def report_warning(self, message: str) -> None:
        """Show a warning of the session layer (an ``on_alert`` command that failed ...)."""
        log.warning("%s", message)
        self.notify(message, title="tokentop", severity="warning", timeout=10, markup=False)

    # -- other screens ----

    @property
    def main_screen(self) -> MainScreen | None:
        """The main screen (None before mount)."""
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    def open_replay(
        self, run_id: str, speed: float | None = 1.0, conversation_id: str | None = None
    ) -> None:
        """Replay a saved run in its own screen (``speed`` None: all at once): the whole
        conversation when the run answers a turn of one of several turns, or when
        ``conversation_id`` names one."""
        self.database.open_replay(run_id, speed, conversation_id)

    def action_compare(self) -> None:
        """Open the compare screen."""
        try:
            from tui.ui.screens.compare import CompareScreen
        except ImportError as exc:
            self.notify(f"Compare is not available: {exc}", severity="warning")
            return
        if not self._return_to(CompareScreen):
            self.push_screen(
                CompareScreen(
                    self.sessions,
                    draft=self._compare_draft,
                    keep_draft=self._keep_draft,
                    recording=self.database.recording_problem,
                )
            )

    def _keep_draft(self, draft: str) -> None:
        self._compare_draft = draft

    def action_history(self) -> None:
        """Open the history screen."""
        store = self.database.readable("History")
        if store is None:
            return
        try:
            from tui.ui.screens.history import HistoryScreen
        except ImportError as exc:
            self.notify(f"History is not available: {exc}", severity="warning")
            return
        if not self._return_to(HistoryScreen):
            self.push_screen(
                HistoryScreen(
                    store,
                    sessions=self.sessions,
                    recording=self.database.recording_problem,
                )
            )

    def _return_to(self, screen_type: type[Screen[None]]) -> bool:
        """Go back to an open screen of ``screen_type`` (closing the screens above it)
        instead of stacking a second one; False when none is open."""
        if not any(isinstance(screen, screen_type) for screen in self.screen_stack):
            return False
        while not isinstance(self.screen, screen_type) and len(self.screen_stack) > 1:
            self.pop_screen()
        return True

    # -- command palette ----

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Every action in the command palette (plus one "open session" per session)."""
        yield from super().get_system_commands(screen)
        yield from app_commands(self)


def run_dashboard(
    config: AppConfig,
    *,
    db_path: Path | None,
    theme: str | None,
    replay_run_id: str | None = None,
    replay_conversation_id: str | None = None,
    replay_speed: float | None = 1.0,
    replay_columns: bool = False,
    metrics_addr: str | None = None,
    local: LoadedConfig | None = None,
) -> int:
    """Run the dashboard until the user quits (the CLI's entry point); the exit status.

    ``db_path`` None means the default database (``$TOKENTOP_DB`` or the data directory);
    the app itself takes None as "no store" (tests). ``metrics_addr``: serve Prometheus
    ``/metrics`` there while the dashboard runs; when it cannot listen, that is said and
    nothing opens (status 2). ``local``: the config merged with tokentop's own file
    (:class:`TokentopApp`); ``replay_conversation_id``: replay that conversation (with
    ``replay_columns``, its compare's columns side by side).
    """
    from tui.paths import default_db_path
    from tui.session.redact import Redactor, install_log_filter

    # run events are redacted by their controllers; log records by this filter
    uninstall = install_log_filter(Redactor.for_sessions(config.sessions))
    try:
        app = TokentopApp(
            config,
            db_path=db_path or default_db_path(),
            theme=theme,
            replay_run_id=replay_run_id,
            replay_conversation_id=replay_conversation_id,
            replay_speed=replay_speed,
            replay_columns=replay_columns,
            freeze_gc=True,
            local=local,
        )
        if metrics_addr is not None:
            try:
                app.runtime.serve_metrics(metrics_addr)
            except (ValueError, OSError) as exc:  # a bad address, a port in use: a sentence
                print(f"error: {exc}", file=sys.stderr)
                return 2
        app.run()
        return 0
    finally:
        uninstall()
