"""Sessions added and removed from the dashboard, kept in tokentop's own file; UI settings too.

:class:`SessionsEditor` is what the dashboard changes: it saves a new session into tokentop's
own file (:class:`~tui.config.overlay.LocalFile`, never the user's sessions file) and adds
it to the runtime, removes one of its own sessions from both, and keeps ``[ui]`` settings
(the theme) with one writer that coalesces quick changes. The functions below are the
main screen's side: :func:`open_add_session` (``+``, or ``D`` for a copy of the current
session with another model), :func:`confirm_remove_session`, and :func:`add_session_view` /
:func:`remove_session_view`, which add or take away a session's tab, overview row, header
totals and monitoring figures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from textual.widgets import TabPane

from tui.config import SessionConfig
from tui.config.overlay import LoadedConfig, LocalFile, LocalFileError
from tui.session import SessionController, SessionRuntime
from tui.stream.redaction import session_secrets
from tui.ui.screens.main import MainScreen, PendingPane, session_tab_id
from tui.ui.tally import RunCounts
from tui.ui.widgets.totals import TotalsBar

log = logging.getLogger(__name__)


class SessionEditError(Exception):
    """A session could not be added or removed; the message says why (one sentence)."""


class SessionsEditor:
    """Adds and removes the dashboard's own sessions (file and runtime) and keeps UI settings.

    ``local`` None: nothing is kept (the sessions live until the dashboard quits). ``own``:
    the names of the sessions that came from tokentop's own file. ``on_error`` is told a
    UI setting that could not be kept (each distinct message once)."""

    def __init__(
        self,
        runtime: SessionRuntime,
        local: LocalFile | None,
        *,
        own: Iterable[str] = (),
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.local = local
        self.own = set(own)
        """Names of the sessions tokentop may remove (added from the dashboard)."""
        self.on_error = on_error
        self._said: set[str] = set()
        self._pending_ui: dict[str, Any] = {}
        self._ui_writer: asyncio.Task[None] | None = None

    @classmethod
    def from_loaded(
        cls,
        runtime: SessionRuntime,
        loaded: LoadedConfig,
        *,
        on_error: Callable[[str], None] | None = None,
    ) -> SessionsEditor:
        """The editor of a config read by :func:`~tui.config.overlay.load_with_local`."""
        local = None
        if loaded.local_path is not None:
            local = LocalFile(loaded.local_path, sessions_file=loaded.config.path)
        return cls(runtime, local, own=loaded.own, on_error=on_error)

    def names(self) -> list[str]:
        """Every session's name (the runtime's)."""
        return [c.name for c in self.runtime.controllers]

    def is_own(self, name: str) -> bool:
        """True for a session added from the dashboard (the only ones it removes)."""
        return name in self.own

    async def add(self, session: SessionConfig) -> SessionController:
        """Keep ``session`` in tokentop's own file, then add it to the runtime and start
        its first run once the runtime runs; SessionEditError when it cannot."""
        if session.name in self.names():
            raise SessionEditError(f"there is a session called {session.name!r} already")
        if session_secrets(replace(session, api_key_env=None)):
            # a copy of a session whose headers or params carry a credential would write it
            raise SessionEditError(
                f"{session.name}: its headers or params hold a credential, and tokentop's own "
                "file never holds one; add this session to your sessions file instead"
            )
        if self.local is not None:
            try:
                await asyncio.to_thread(self.local.add_session, session)
            except LocalFileError as exc:
                raise SessionEditError(f"{session.name} was not added: {exc}") from None
        try:
            live = self.runtime.add_session(session)
        except ValueError as exc:  # added meanwhile (a second submit): the file keeps one
            raise SessionEditError(str(exc)) from None
        self.own.add(session.name)
        if self.runtime.started:
            live.start()
        return live

    async def remove(self, name: str) -> SessionController:
        """Take an own session out of tokentop's own file, then out of the runtime (its run
        cancelled, its stored runs kept); SessionEditError for any other session."""
        if not self.is_own(name):
            raise SessionEditError(
                f"{name} is in your sessions file: remove it there (the dashboard removes only "
                "the sessions added from it)"
            )
        if self.local is not None:
            try:
                await asyncio.to_thread(self.local.remove_session, name)
            except LocalFileError as exc:
                raise SessionEditError(f"{name} was not removed: {exc}") from None
        self.own.discard(name)
        try:
            return await self.runtime.remove_session(name)
        except KeyError:
            raise SessionEditError(f"there is no session called {name!r}") from None

    def keep_ui(self, **values: Any) -> None:
        """Keep ``[ui]`` settings (``theme="nord"``) in tokentop's own file, off the loop; a
        burst of changes is one write of the latest values. Call on the app's loop."""
        if self.local is None:
            return
        self._pending_ui.update(values)
        if self._ui_writer is None or self._ui_writer.done():
            self._ui_writer = asyncio.get_running_loop().create_task(self._write_ui())

    async def _write_ui(self) -> None:
        while self._pending_ui and self.local is not None:
            values, self._pending_ui = self._pending_ui, {}
            try:
                await asyncio.to_thread(self.local.set_ui, **values)
            except (LocalFileError, ValueError) as exc:
                self._say(f"The {', '.join(values)} setting was not kept: {exc}")

    async def aclose(self) -> None:
        """Wait for the last UI settings to be written (the app's unmount)."""
        if self._ui_writer is not None:
            await asyncio.wait([self._ui_writer])

    def _say(self, message: str) -> None:
        log.warning("%s", message)
        if message in self._said or self.on_error is None:
            return
        self._said.add(message)
        self.on_error(message)


def local_problems(loaded: LoadedConfig) -> str | None:
    """The notification for tokentop's own file's problems (None: it has none)."""
    if loaded.local_error is None:
        return None
    return f"{loaded.local_error.render()}\nThe sessions file loaded; these were left out."


# -- the main screen's side -----------------------------------------------------------------


def open_add_session(screen: MainScreen, editor: SessionsEditor, *, copy: bool = False) -> None:
    """Open the add-session form over ``screen`` (``copy``: of the current session, for
    another model); a session it returns is kept, added, shown and started. The form (and
    the HTTP client's imports behind its model list) loads here, not with the dashboard."""
    from tui.ui.screens.add_session import AddSessionScreen

    base = None
    if copy:
        live = screen.current_session
        if live is None:
            screen.notify("Choose the session to copy first.", severity="warning", timeout=3)
            return
        base = live.session
        if session_secrets(replace(base, api_key_env=None)):
            screen.notify(
                f"{base.name} sends a credential in its headers or params, and tokentop's own "
                "file never holds one: copy it in your sessions file instead.",
                severity="warning",
                timeout=8,
                markup=False,
            )
            return
    form = AddSessionScreen(
        taken=editor.names(), list_models=editor.runtime.list_models, duplicate_of=base
    )

    async def added(session: SessionConfig | None) -> None:
        if session is None:
            return
        try:
            live = await editor.add(session)
        except SessionEditError as exc:
            screen.notify(str(exc), title="Session", severity="error", timeout=10, markup=False)
            return
        await add_session_view(screen, live)
        screen.show_session(live.name)
        where = f" (kept in {editor.local.path})" if editor.local is not None else ""
        screen.notify(f"Added {live.name}{where}.", timeout=4, markup=False)

    screen.app.push_screen(form, added)


def confirm_remove_session(screen: MainScreen, editor: SessionsEditor) -> None:
    """Ask, then remove the current session when it is one of tokentop's own."""
    from tui.ui.screens.add_session import RemoveSessionConfirm

    live = screen.current_session
    if live is None:
        return
    if not editor.is_own(live.name):
        screen.notify(
            f"{live.name} is in your sessions file: remove it there.", timeout=4, markup=False
        )
        return

    async def answered(remove: bool | None) -> None:
        if not remove:
            return
        try:
            await editor.remove(live.name)
        except SessionEditError as exc:
            screen.notify(str(exc), title="Session", severity="error", timeout=10, markup=False)
            return
        await remove_session_view(screen, live)
        screen.notify(f"Removed {live.name}; its runs stay in history.", timeout=4, markup=False)

    screen.app.push_screen(RemoveSessionConfirm(live.name), answered)


async def add_session_view(screen: MainScreen, live: SessionController) -> None:
    """Give ``live`` (just added to the runtime) a tab, an overview row, a place in the
    header's totals and in the monitoring figures."""
    index = len(screen.sessions)
    screen.sessions.append(live)
    pane_id = session_tab_id(index)
    await screen.tabs.add_pane(TabPane(live.name, PendingPane(live, index), id=pane_id))
    _forget_tab(screen, pane_id)
    overview = screen.overview
    overview.sessions.append(live)
    overview.sort_by(overview.sort_column)  # rebuilds the rows
    screen.query_one(TotalsBar).sessions.append(live)
    monitoring = screen.monitoring
    if monitoring is not None:
        monitoring.tally.counts.setdefault(live.name, RunCounts())
        # never unsubscribed: a removed session has no runs any more, nothing to count
        live.subscribe(monitoring.tally)
        monitoring.figures.sessions.append(live)
        monitoring.figures.refresh()
    screen.refresh_tabs()


async def remove_session_view(screen: MainScreen, live: SessionController) -> None:
    """Take ``live``'s tab, overview row and totals away. The tabs after it are made again
    (a tab's id is its session's place), and the tab that was shown is shown again."""
    if live not in screen.sessions:
        return
    index = screen.sessions.index(live)
    pane = screen.current_pane
    shown = pane.live if pane is not None and pane.live is not live else None
    screen.action_overview()
    later = screen.sessions[index + 1 :]
    for position in range(index, len(screen.sessions)):
        await screen.tabs.remove_pane(session_tab_id(position))
        screen.panes.pop(position, None)
    screen.sessions.remove(live)
    for position, other in enumerate(later, start=index):
        pane_id = session_tab_id(position)
        await screen.tabs.add_pane(TabPane(other.name, PendingPane(other, position), id=pane_id))
        _forget_tab(screen, pane_id)
    _forget_tab(screen, session_tab_id(len(screen.sessions)))
    for widget_sessions in (screen.overview.sessions, screen.query_one(TotalsBar).sessions):
        if live in widget_sessions:
            widget_sessions.remove(live)
    screen.overview.sort_by(screen.overview.sort_column)
    monitoring = screen.monitoring
    if monitoring is not None and live in monitoring.figures.sessions:
        monitoring.figures.sessions.remove(live)
    if shown is not None:
        screen.show_session(shown.name)
    screen.refresh_tabs()


def _forget_tab(screen: MainScreen, pane_id: str) -> None:
    """Drop what the screen remembers it last wrote on the tab ``pane_id``: a new Tab there
    must get its label and classes on the next refresh."""
    screen._tab_state.pop(pane_id, None)
