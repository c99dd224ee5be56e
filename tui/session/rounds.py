"""Compare rounds: one prompt sent N times to each of several sessions (the round's
*columns*), so that their figures say more than one anecdote. Shared by every face (the
dashboard's compare screen, ``tokentop compare``).

A :class:`Round` runs exactly ``count`` runs per column, one run per start (a session's
``repeat`` schedule is not used), in one of three orders (:data:`ROUND_ORDERS`):

- ``interleaved`` (the default): one run at a time, A1 B1 C1 A2 B2 C2 ..., so that a change
  of the server's or the gateway's load is spread fairly over the columns;
- ``sequential``: A1..AN, then B1..BN, ...;
- ``parallel``: step i starts every column's i-th run at once and waits for all of them.

Every round run is a new conversation of one turn: the round's prompt, else the session's
first prompt (a scripted session's first turn: the figures of a column compare one kind of
request, and a turn 3 would carry a history the other columns may not have). A follow-up
after the round (the compare screen's prompt box sends one to each checked column with
``controller.send(prompt)``) continues each column's own conversation, the one of its last
round run.

Its runs are the controllers' runs (recorded, redacted and followed as any other). With a
store that keeps rounds (:class:`RoundRecorder`, ``tui.store.Store``) the round and the
membership of each run are recorded: ``add_round_run`` once the run's first batch arrives,
which comes after the store recorded the run's start. Listeners
(:class:`RoundListener`) hear when the round starts, when each run starts and finishes, and
when the round ends; the figures (:mod:`tui.session.round_stats`) are computable at any
moment from the runs finished so far (:meth:`Round.columns`, :meth:`Round.ranking`).

:meth:`Round.cancel` cancels the runs in progress and starts no other: the round ends
``cancelled``. A round run cancelled from outside the round (the session's own cancel or a
new start, the runtime closing) cancels the round as well, so that a round never starts runs
on a runtime that is closing. A face closing its runtime cancels its round and awaits
:meth:`Round.wait` first, so that the store still records how the round ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tui.session.prices import PriceSource, load_list_prices
from tui.session.round_plan import (
    MAX_RUNS_PER_COLUMN,
    ROUND_ORDERS,
    RoundEntry,
    RoundListener,
    RoundOrder,
    RoundRecorder,
    RoundStatus,
    plan_round,
)
from tui.session.round_stats import ColumnStats, Metric, Ranking, RunFigures, column_stats, rank
from tui.stream.events import Finished, RunEvent, new_run_id

if TYPE_CHECKING:
    from tui.session.controller import SessionController
    from tui.session.run import SessionRun
    from tui.session.runtime import SessionRuntime

log = logging.getLogger(__name__)

__all__ = [
    "ROUND_ORDERS",
    "Round",
    "RoundEntry",
    "RoundListener",
    "RoundOrder",
    "RoundRecorder",
    "RoundStatus",
    "plan_round",
]


class Round:
    """One compare round over a runtime's sessions (see the module docstring).

    ``sessions`` are session names of ``runtime`` (distinct, at least one); ``prompt`` None
    sends each session's own prompt; ``count`` runs per column (1 to
    :data:`MAX_RUNS_PER_COLUMN`). ValueError for a bad argument, naming it.
    """

    def __init__(
        self,
        runtime: SessionRuntime,
        sessions: Sequence[str],
        *,
        count: int,
        prompt: str | None = None,
        order: RoundOrder = "interleaved",
        round_id: str | None = None,
    ) -> None:
        names = tuple(sessions)
        if not names:
            raise ValueError("a round needs at least one session")
        if len(set(names)) != len(names):
            raise ValueError("a round's sessions must be distinct")
        known = {c.name for c in runtime.controllers}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"no session called {', '.join(map(repr, unknown))}")
        if not 1 <= count <= MAX_RUNS_PER_COLUMN:
            raise ValueError(f"count must be 1 to {MAX_RUNS_PER_COLUMN}, got {count}")
        if order not in ROUND_ORDERS:
            raise ValueError(f"order must be one of {', '.join(ROUND_ORDERS)}, got {order!r}")
        if prompt is not None and not prompt.strip():
            raise ValueError("the prompt must not be empty")
        self.runtime = runtime
        self.id = round_id or new_run_id()
        self.sessions = names
        self.count = count
        self.prompt = prompt
        self.order: RoundOrder = order
        self.status: RoundStatus = "pending"
        self.started_at: float | None = None
        self.ended_at: float | None = None
        """Wall-clock times (``time.time()``)."""
        self.steps: list[list[RoundEntry]] = [
            [RoundEntry(s, i, step) for s, i in runs]
            for step, runs in enumerate(plan_round(names, count, order))
        ]
        self.entries: tuple[RoundEntry, ...] = tuple(e for step in self.steps for e in step)
        """Every planned run, in start order."""
        self.version = 0
        """Bumped whenever a run starts or finishes (views compare it to skip work)."""
        self._by_run: dict[str, RoundEntry] = {}
        """The started entries by run id."""
        self._controllers = {n: runtime.controller(n) for n in names}
        self._prices = {n: PriceSource.of(c.session) for n, c in self._controllers.items()}
        self._listeners: tuple[RoundListener, ...] = ()
        self._stop = False
        self._task: asyncio.Task[RoundStatus] | None = None
        self._started: dict[RoundEntry, asyncio.Task[None]] = {}
        """The current step's entries and their controllers' tasks."""
        self._recorder: RoundRecorder | None = None

    # -- following ----

    def subscribe(self, listener: RoundListener) -> Callable[[], None]:
        """Follow this round; returns the function that unsubscribes."""
        self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    @property
    def running(self) -> list[RoundEntry]:
        """The entries whose run is in progress."""
        return [e for e in self.entries if e.state == "running"]

    @property
    def finished(self) -> int:
        """How many planned runs have finished."""
        return sum(1 for e in self.entries if e.figures is not None)

    @property
    def total(self) -> int:
        """How many runs the round plans (columns x count)."""
        return len(self.entries)

    def figures(self, session: str) -> list[RunFigures]:
        """The finished runs of column ``session``, in run order."""
        return [e.figures for e in self.entries if e.session == session and e.figures]

    def columns(self) -> list[ColumnStats]:
        """Every column's figures from the runs finished so far, in column order."""
        return [
            column_stats(s, self._controllers[s].session.model, self.figures(s), self.count)
            for s in self.sessions
        ]

    def ranking(self, by: Metric = "ttft") -> Ranking:
        """The columns ranked by ``by`` from the runs finished so far."""
        return rank(self.columns(), by)

    # -- running ----

    def start(self) -> asyncio.Task[RoundStatus]:
        """Run the round in a task of the running loop (once); the task gives its status."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"round:{self.id}")
        return self._task

    async def wait(self) -> RoundStatus:
        """Until the round has ended (started first if it was not); how it ended."""
        task = self.start()
        await asyncio.wait([task])
        return self.status

    def cancel(self) -> None:
        """Cancel the runs in progress and start no other (the round ends ``cancelled``)."""
        self._stop = True
        for entry, task in self._started.items():
            if task.done() or entry.figures is not None:
                continue
            controller = self._controllers[entry.session]
            current = controller.current
            # a run not begun yet (its session is still starting) is the controller's latest
            if entry.run is None or (current is not None and current.run_id == entry.run_id):
                controller.cancel()

    async def run(self) -> RoundStatus:
        """Run the round to its end (what :meth:`start` runs); how it ended. Never raises
        but for its own cancellation (its runs are then cancelled and the round recorded
        ``cancelled``)."""
        if self.status != "pending":
            raise RuntimeError(f"round {self.id} was already run")
        self.status = "running"
        self.started_at = time.time()
        follower = _Follower(self)
        unsubscribes = [c.subscribe(follower) for c in self._controllers.values()]
        warm: asyncio.Task[None] | None = None
        if any(p.listed for p in self._prices.values()):
            warm = asyncio.create_task(load_list_prices())
        status: RoundStatus = "failed"
        try:
            await self._record_start()
            self._tell("round_started")
            for step in self.steps:
                if self._stop:
                    break
                self._started = {}
                await asyncio.wait([self._start(entry) for entry in step])
            status = "cancelled" if self._stop else "done"
        except asyncio.CancelledError:
            status = "cancelled"
            self.cancel()
            raise
        except Exception:
            log.exception("round %s failed", self.id)
            self.cancel()
        finally:
            for unsubscribe in unsubscribes:
                unsubscribe()
            for entry in self.entries:
                if entry.state == "pending":
                    entry.skipped = True
            self.status = status
            self.ended_at = time.time()
            self.version += 1
            if warm is not None:
                warm.cancel()
            await asyncio.shield(self._record_end(status))
            self._tell("round_ended")
        return status

    def _start(self, entry: RoundEntry) -> asyncio.Task[None]:
        controller = self._controllers[entry.session]
        # the id is chosen now, so that ids stay time-ordered (and their prefixes distinct)
        entry.run_id = run_id = new_run_id()
        self._by_run[run_id] = entry
        task = controller.start(self.prompt, once=True, run_id=run_id)
        self._started[entry] = task
        return task

    # -- the store and the listeners ----

    def _tell(self, what: str, entry: RoundEntry | None = None) -> None:
        for listener in self._listeners:
            try:
                if entry is None:
                    getattr(listener, what)(self)
                else:
                    getattr(listener, what)(self, entry)
            except Exception:
                log.exception("round listener failed on %s of round %s", what, self.id)

    def _store_failed(self, exc: BaseException) -> None:
        handler = self.runtime.on_store_error
        if handler is not None:
            handler(f"round {self.id}", exc)
        else:
            log.warning("store error in round %s: %s", self.id, exc)

    async def _record_start(self) -> None:
        store = self.runtime.store
        if not isinstance(store, RoundRecorder):
            return
        try:
            await store.start_round(
                self.id,
                prompt=self._stored_prompt(),
                count=self.count,
                order=self.order,
                sessions=self.sessions,
            )
        except Exception as exc:
            self._store_failed(exc)
            return
        self._recorder = store

    def _stored_prompt(self) -> str:
        """The round's prompt; without one, the columns' own prompt when they share it, else
        empty (each run keeps the prompt it sent)."""
        if self.prompt is not None:
            return self.prompt
        prompts = {c.prompt for c in self._controllers.values()}
        return prompts.pop() if len(prompts) == 1 else ""

    async def _record_end(self, status: RoundStatus) -> None:
        store, self._recorder = self._recorder, None
        if store is None:
            return
        try:
            await store.end_round(self.id, status=status)
        except Exception as exc:
            self._store_failed(exc)

    def _run_started(self, entry: RoundEntry, run: SessionRun) -> None:
        entry.run = run
        self.version += 1
        self._tell("round_run_started", entry)

    def _run_events(self, entry: RoundEntry, run: SessionRun, events: Sequence[RunEvent]) -> None:
        if entry.run is None:  # a listener that subscribed mid-run
            entry.run = run
        recorder = self._recorder
        if not entry.seen:
            entry.seen = True
            if recorder is not None:
                try:
                    recorder.add_round_run(
                        self.id, session=entry.session, index=entry.index, run_id=run.run_id
                    )
                except Exception as exc:
                    self._store_failed(exc)
        last = events[-1] if events else None
        if isinstance(last, Finished):
            entry.figures = RunFigures.from_accumulator(
                run.accumulator, self._prices[entry.session]
            )
            self.version += 1
            if last.status == "cancelled":
                self._stop = True  # cancelled from outside the round: so is the round
            self._tell("round_run_finished", entry)


class _Follower:
    """The round's listener on each of its sessions: picks out the round's own runs."""

    def __init__(self, round: Round) -> None:
        self.round = round

    def run_started(self, session: SessionController, run: SessionRun) -> None:
        entry = self.round._by_run.get(run.run_id)
        if entry is not None:
            self.round._run_started(entry, run)

    def run_events(
        self, session: SessionController, run: SessionRun, events: Sequence[RunEvent]
    ) -> None:
        entry = self.round._by_run.get(run.run_id)
        if entry is not None:
            self.round._run_events(entry, run, events)
