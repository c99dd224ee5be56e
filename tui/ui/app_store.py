"""DashboardStore: the dashboard's database, opened once at start-up.

The sessions record into a writer opened through the runtime. When the database cannot be
opened for writing (a read-only file or directory, another program's lock ...), it is opened
read-only instead, as ``tokentop history`` would: History and replay work, the runs are not
saved, and that is said once in a notification. ``tokentop replay`` opens it read-only from
the start. Nothing that goes wrong here ends the app: a store that cannot be opened at all
becomes a notification, and a write error during the run a rate-limited one.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.screen import Screen

from tui.config import StoreConfig
from tui.session import SessionRuntime

if TYPE_CHECKING:
    from tui.store import Store

log = logging.getLogger(__name__)

STORE_ERROR_INTERVAL_S = 10.0
"""At most one store-error notification per this many seconds (errors can come per event)."""


class DashboardStore:
    """The database at ``db_path`` (None: no store at all, as in tests) for ``app``."""

    def __init__(
        self,
        app: App[Any],
        runtime: SessionRuntime,
        db_path: Path | None,
        settings: StoreConfig,
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.db_path = db_path
        self.settings = settings
        self.store: Store | None = None
        """The open store: the sessions' writer, or a reader (replay, or a database that
        cannot be written); None: none."""
        self.not_opened: str | None = None
        """Why the database could not be opened for the sessions to record into (None: it
        was, or none was asked for)."""
        self._reader = False
        self._last_error = 0.0

    async def open_writer(self) -> None:
        """Open the database for the sessions to record into; when it cannot be written,
        open it read-only for History and replay (one notification either way: the
        dashboard works without saving runs)."""
        if self.db_path is None:
            return
        try:
            self.store = await self.runtime.open_store(self.db_path, self.settings)
            return
        except Exception as exc:
            self.not_opened = str(exc)
            log.warning("store not opened for writing: %s", exc)
        if await self._try_reader():
            self.app.notify(
                f"Runs will not be saved: {self.not_opened}. History and replay read "
                f"{self.db_path} (read-only).",
                title="Store",
                severity="warning",
                timeout=12,
                markup=False,
            )

    async def _try_reader(self) -> bool:
        """Open the database read-only; False (and a notification) when that fails too."""
        assert self.db_path is not None
        try:
            from tui.store import Store

            self.store = await Store.open(self.db_path, readonly=True)
        except Exception as exc:
            self._not_opened(exc, "Runs will not be saved")
            return False
        self._reader = True
        return True

    async def open_reader(self) -> None:
        """Open the database read-only (replay mode): a read-only store never writes, and
        works on a database that another tokentop is recording into (or that this user
        cannot write)."""
        if self.db_path is None:
            return
        try:
            from tui.store import Store

            self.store = await Store.open(self.db_path, readonly=True)
            self._reader = True
        except Exception as exc:
            self._not_opened(exc, "Cannot replay")

    def _not_opened(self, exc: Exception, consequence: str) -> None:
        log.warning("store not opened: %s", exc)
        self.store = None
        self.app.notify(
            f"{consequence}: cannot open {self.db_path}: {exc}",
            title="Store",
            severity="error",
            timeout=12,
            markup=False,
        )

    @property
    def unavailable(self) -> str:
        """Why there is no store to read, in words (for "History needs the store")."""
        if self.db_path is None:
            return "no database"
        return f"cannot open {self.db_path}: {self.not_opened or 'not open'}"

    def writing(self) -> Store | None:
        """The store the sessions record into (None without one, and once it is closed)."""
        return self.store if self.runtime.store is not None else None

    def recording_problem(self) -> str | None:
        """Why runs are not being saved now: the database could not be opened for writing,
        or the store stopped after a write error (its message); None while they are saved,
        and when no database was asked for. Cheap: the header asks twice a second."""
        if self.db_path is None:
            return None
        if self.not_opened is not None:
            return self.not_opened
        store = self.writing()
        return None if store is None else store.last_error

    def report_error(self, where: str, problem: BaseException | str) -> None:
        """Notify about a store failure (rate-limited; the runs go on unsaved)."""
        log.warning("store error (%s): %s", where, problem)
        now = time.monotonic()
        if now - self._last_error < STORE_ERROR_INTERVAL_S:
            return
        self._last_error = now
        self.app.notify(
            f"Saving runs failed ({where}): {problem}. The streams go on unsaved.",
            title="Store",
            severity="error",
        )

    def readable(self, what: str) -> Store | None:
        """The open store; None, and a notification that ``what`` needs it, without one."""
        if self.store is not None:
            return self.store
        self.app.notify(
            f"{what} needs the store ({self.unavailable}).",
            severity="error" if what == "Replay" else "warning",
            markup=False,
        )
        return None

    def open_replay(
        self, run_id: str, speed: float | None, conversation_id: str | None = None
    ) -> None:
        """Push a :class:`~tui.ui.screens.replay.ReplayScreen` of ``run_id`` (or of the
        conversation ``conversation_id``), or say that there is no store to read."""
        store = self.readable("Replay")
        if store is None:
            return
        from tui.ui.screens.replay import ReplayScreen

        screen = ReplayScreen(store, run_id, speed, conversation_id=conversation_id)
        self.app.push_screen(screen)

    def open_compare_replay(self, conversation_id: str, speed: float | None) -> None:
        """Push a :class:`~tui.ui.screens.compare_replay.CompareReplayScreen` of the compare
        the conversation ``conversation_id`` was a column of, or say that there is no store."""
        store = self.readable("Replay")
        if store is None:
            return
        from tui.ui.screens.compare_replay import CompareReplayScreen

        self.app.push_screen(CompareReplayScreen(store, conversation_id, speed))

    async def close(self) -> None:
        """Close a reader this object opened (the runtime closes its writer)."""
        if self._reader and self.store is not None:
            try:
                await self.store.close()
            except Exception as exc:
                log.warning("store close failed: %s", exc)


class ReplayHost(Screen[None]):
    """The empty screen under a command-line replay: when the replay closes, quit."""

    def __init__(self) -> None:
        super().__init__()
        self._resumed = 0

    def on_screen_resume(self) -> None:
        self._resumed += 1
        if self._resumed > 1:  # the first resume is its own push
            self.app.exit()
