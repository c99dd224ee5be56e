"""DashboardStore: the dashboard's database, opened once at start-up.

The sessions record into a writer opened through the runtime; ``tokentop replay`` opens the
database read-only. Nothing that goes wrong here ends the app: a store that cannot be opened
becomes a notification, and a write error during the run a rate-limited one.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App

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
        """The open store: the sessions' writer, or a reader for replay (None: none)."""
        self._reader = False
        self._last_error = 0.0

    async def open_writer(self) -> None:
        """Open the database for the sessions to record into (a notification when it
        cannot be opened: the dashboard works without history)."""
        if self.db_path is None:
            return
        try:
            self.store = await self.runtime.open_store(self.db_path, self.settings)
        except Exception as exc:
            self._not_opened(exc, "Runs will not be saved")

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
        )

    def writing(self) -> Store | None:
        """The store the sessions record into (None without one, and once it is closed)."""
        return self.store if self.runtime.store is not None else None

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

    async def close(self) -> None:
        """Close a reader this object opened (the runtime closes its writer)."""
        if self._reader and self.store is not None:
            try:
                await self.store.close()
            except Exception as exc:
                log.warning("store close failed: %s", exc)
