"""Monitoring figures per session (runs, success rate, TTFT p50/p95, tokens/s p50) for views.

The figures come from the store (:func:`tui.store.stats.session_stats`), so they cover hours
and survive a restart. :class:`FiguresCache` reads them again only after a run of a session
finished, debounced (:data:`REFRESH_DEBOUNCE_S`): never per token, and the query runs on the
store's own thread (aiosqlite), so the loop only waits for its answer. Without a store the
figures come from each session's in-memory history (the last
:data:`~tui.session.HISTORY_LIMIT` runs), and :attr:`SessionFigures.from_store` says so.

Nothing here imports Textual: views poll :attr:`FiguresCache.version` and call :meth:`get`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tui.session import RunSummary, SessionController
from tui.store.stats_records import Percentiles, outcome
from tui.stream.events import Finished

if TYPE_CHECKING:
    from tui.store import Store
    from tui.store.stats import SessionStats

log = logging.getLogger(__name__)

REFRESH_DEBOUNCE_S = 1.0
"""After a run finishes, the store is read again at most this often (all sessions at once)."""

WINDOW_S = 3600.0
"""The overview's window: runs that started in the last hour."""


@dataclass(frozen=True, slots=True)
class SessionFigures:
    """What the overview shows of one session's recent runs."""

    runs: int
    """Finished runs in the window."""
    success_rate: float | None
    """Successes / (successes + failures), 0.0-1.0 (cancelled runs do not count); None
    without either."""
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    tokens_per_s_p50: float | None
    from_store: bool
    """True: over the window from the store; False: the in-memory history (no store)."""


def figures_of_stats(stats: SessionStats) -> SessionFigures:
    """The figures of one :class:`~tui.store.stats.SessionStats`."""
    return SessionFigures(
        runs=stats.runs,
        success_rate=stats.success_rate,
        ttft_p50_ms=stats.ttft_ms.p50,
        ttft_p95_ms=stats.ttft_ms.p95,
        tokens_per_s_p50=stats.tokens_per_s.p50,
        from_store=True,
    )


def figures_of_history(history: Sequence[RunSummary]) -> SessionFigures:
    """The figures of a session's in-memory history, with the store's definitions
    (:func:`tui.store.stats_records.outcome`; percentiles over successes)."""
    successes = failures = 0
    ttfts: list[float] = []
    rates: list[float] = []
    for run in history:
        kind = outcome(run.status, run.finish_reason)
        if kind == "failure":
            failures += 1
        elif kind == "success":
            successes += 1
            if run.ttft_ms is not None:
                ttfts.append(run.ttft_ms)
            if run.tokens_per_s is not None:
                rates.append(run.tokens_per_s)
    ttft, rate = Percentiles.of(ttfts), Percentiles.of(rates)
    judged = successes + failures
    return SessionFigures(
        runs=len(history),
        success_rate=successes / judged if judged else None,
        ttft_p50_ms=ttft.p50,
        ttft_p95_ms=ttft.p95,
        tokens_per_s_p50=rate.p50,
        from_store=False,
    )


StoreSource = Callable[[], "Store | None"]
"""Gives the open store (None: there is none, or it is closed)."""


class FiguresCache:
    """Each session's :class:`SessionFigures` over the last ``window_s`` seconds.

    :meth:`run_finished` (a :class:`~tui.ui.tally.RunTally` callback) marks the figures
    stale and schedules one read of the store ``debounce_s`` later; a read already under way
    is followed by at most one more. :meth:`refresh` reads now (the first frame, a view that
    opens). A store that fails to answer is logged and the in-memory figures are used until
    the next read.
    """

    def __init__(
        self,
        sessions: Sequence[SessionController],
        store: StoreSource,
        *,
        window_s: float | None = WINDOW_S,
        debounce_s: float = REFRESH_DEBOUNCE_S,
    ) -> None:
        self.sessions = list(sessions)
        self.window_s = window_s
        self.debounce_s = debounce_s
        self._store = store
        self._stored: dict[str, SessionFigures] = {}
        self._memory: dict[str, tuple[int, SessionFigures]] = {}
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._stale = False
        self.version = 0
        """Bumped whenever the figures may have changed."""
        self.reads = 0
        """How many times the store was read (tests and the debounce's check)."""
        self.store_failed = False
        """True after the last read of the store failed (memory figures meanwhile)."""

    @property
    def store(self) -> Store | None:
        """The store the figures are read from (None: none, or closed)."""
        return self._store()

    @property
    def from_store(self) -> bool:
        """True when the figures come from the store (False: memory, no store)."""
        return self._store() is not None and not self.store_failed

    def get(self, live: SessionController) -> SessionFigures:
        """The session's figures: the store's last answer, else its in-memory history."""
        if self.from_store:
            found = self._stored.get(live.name)
            if found is not None:
                return found
        key = live.runs_finished
        cached = self._memory.get(live.name)
        if cached is None or cached[0] != key:
            cached = (key, figures_of_history(live.history))
            self._memory[live.name] = cached
        return cached[1]

    # -- refreshing ----

    def run_finished(self, live: SessionController, finished: Finished) -> None:
        """A run ended: read the store again soon (debounced)."""
        self.version += 1  # the in-memory figures changed at once
        if self._store() is None:
            return
        self._stale = True
        if self._timer is None and (self._task is None or self._task.done()):
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.debounce_s, self._start)

    def refresh(self) -> None:
        """Read the store now (unless a read is under way; then once more after it)."""
        self._stale = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._start()

    def _start(self) -> None:
        self._timer = None
        if self._task is not None and not self._task.done():
            return  # the running read starts another one when it ends (still stale)
        if not self._stale or self._store() is None:
            return
        self._task = asyncio.get_running_loop().create_task(self._read(), name="figures")

    async def _read(self) -> None:
        from tui.store.stats import session_stats
        from tui.store.window import started_since

        store = self._store()
        if store is None:
            return
        self._stale = False
        since = None if self.window_s is None else started_since(self.window_s)
        try:
            found = await session_stats(store, session=[s.name for s in self.sessions], since=since)
        except Exception as exc:  # a closed or broken store: the memory figures go on
            log.warning("reading the monitoring figures failed: %s", exc)
            self.store_failed = True
        else:
            self.store_failed = False
            self._stored = {stats.session: figures_of_stats(stats) for stats in found}
        self.reads += 1
        self.version += 1
        if self._stale:  # runs finished during the read
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.debounce_s, self._start)

    async def aclose(self) -> None:
        """Stop any scheduled read and wait for the running one (before the store closes)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._stale = False
        task = self._task
        if task is not None and not task.done():
            await asyncio.wait([task])
