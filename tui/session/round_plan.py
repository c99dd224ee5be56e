"""The words of a compare round (:mod:`tui.session.rounds`): its orders and statuses, its
plan (:func:`plan_round`), one planned run (:class:`RoundEntry`), who follows a round
(:class:`RoundListener`) and what it needs of a store (:class:`RoundRecorder`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from tui.session.round_stats import RunFigures
    from tui.session.rounds import Round
    from tui.session.run import SessionRun

__all__ = [
    "MAX_RUNS_PER_COLUMN",
    "ROUND_ORDERS",
    "EntryState",
    "RoundEntry",
    "RoundListener",
    "RoundOrder",
    "RoundRecorder",
    "RoundStatus",
    "plan_round",
]

RoundOrder: TypeAlias = Literal["interleaved", "sequential", "parallel"]
ROUND_ORDERS: tuple[RoundOrder, ...] = ("interleaved", "sequential", "parallel")
"""How a round's columns take turns (``interleaved`` first: the default)."""

RoundStatus: TypeAlias = Literal["pending", "running", "done", "cancelled", "failed"]
"""``pending`` before :meth:`Round.start`; then ``running``; then how it ended: ``done``
(every planned run ran), ``cancelled``, or ``failed`` (the round itself broke: a bug)."""

EntryState: TypeAlias = Literal["pending", "running", "finished", "skipped"]

MAX_RUNS_PER_COLUMN = 1000
"""A bound on ``count``: a typo must not plan a million runs."""


@runtime_checkable
class RoundRecorder(Protocol):
    """A store that also keeps compare rounds (``tui.store.Store``)."""

    async def start_round(
        self, round_id: str, *, prompt: str, count: int, order: str, sessions: Sequence[str]
    ) -> None:
        """Record a new round (its columns in order)."""
        ...

    def add_round_run(self, round_id: str, *, session: str, index: int, run_id: str) -> None:
        """Record that run ``run_id`` is the ``index``-th (from 1) run of column ``session``
        (cheap: queued; called after the run's ``start_run``)."""
        ...

    async def end_round(self, round_id: str, *, status: str) -> None:
        """Record how the round ended (``done``, ``cancelled`` or ``failed``)."""
        ...


@dataclass(slots=True, eq=False)
class RoundEntry:
    """One planned run of a round: the ``index``-th (from 1) run of column ``session``."""

    session: str
    index: int
    step: int
    """The step (from 0) it starts in: its place in the order (``parallel``: a step holds
    one run per column)."""
    run_id: str | None = None
    """The run's id, chosen when the round starts it (None before)."""
    run: SessionRun | None = None
    """The run, once started (its accumulator is live)."""
    figures: RunFigures | None = None
    """Its figures, once finished."""
    skipped: bool = False
    """True when it never ran (the round was cancelled first)."""
    seen: bool = False
    """True once its first batch arrived (its membership is then recorded)."""

    @property
    def state(self) -> EntryState:
        """``pending``, ``running``, ``finished`` or ``skipped``."""
        if self.figures is not None:
            return "finished"
        if self.skipped:
            return "skipped"
        return "pending" if self.run is None else "running"


class RoundListener(Protocol):
    """Whoever follows a round (a progress printer, the compare screen). Called on the
    round's loop; keep each call short."""

    def round_started(self, round: Round) -> None:
        """The round began (its plan is :attr:`Round.entries`)."""

    def round_run_started(self, round: Round, entry: RoundEntry) -> None:
        """``entry``'s run began (``entry.run`` is set)."""

    def round_run_finished(self, round: Round, entry: RoundEntry) -> None:
        """``entry``'s run ended (``entry.figures`` is set)."""

    def round_ended(self, round: Round) -> None:
        """The round ended (:attr:`Round.status` says how)."""


def plan_round(
    sessions: Sequence[str], count: int, order: RoundOrder
) -> list[list[tuple[str, int]]]:
    """The steps of a round: each a list of ``(session, index)`` started together (one run,
    except in ``parallel`` order), in the order they run."""
    if order == "sequential":
        return [[(s, i)] for s in sessions for i in range(1, count + 1)]
    if order == "parallel":
        return [[(s, i) for s in sessions] for i in range(1, count + 1)]
    return [[(s, i)] for i in range(1, count + 1) for s in sessions]
