"""What a writer that opens the database does with the runs and rounds of dead writers.

A running run's row is only a checkpoint (see :data:`~tui.store.writer.CHECKPOINT_S`); its
committed events are the truth. So a dead writer's running runs are first re-folded from
their events, then marked ``interrupted``, and its running rounds with them, in one
transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import aiosqlite

from tui.stream.accumulate import EventClock, RunAccumulator
from tui.stream.events import RunEvent

from . import queries
from .compact import iter_events
from .rounds import interrupt_rounds_of
from .rows import changed_attempts, run_row

__all__ = ["interrupt_dead_writers"]


async def _refold_runs_of(conn: aiosqlite.Connection, owner: str | None) -> None:
    """Rewrite the rows of a dead writer's running runs from their committed events, folded
    as :func:`~tui.stream.accumulate.fold_events` folds them (with the events' own times). A
    run without a :class:`Finished` is written ``interrupted``; runs without events are left
    to ``MARK_INTERRUPTED``."""
    runs = await conn.execute_fetchall(queries.RUNNING_OF_OWNER, (owner,))
    for rowid, run_id, session_name, api, model, prompt in runs:
        # fold_events' fold, a batch in memory at a time
        clock = EventClock()
        acc = RunAccumulator(run_id, session_name, api, model, prompt or "", clock=clock)
        last: RunEvent | None = None
        async for chunk in iter_events(conn, rowid):
            for event in chunk:
                clock.t = event.t
                acc.apply(event)
            last = chunk[-1]
        if last is None:
            continue
        row = run_row(acc, final=True, last_t=last.t, secret=None)
        await conn.execute(queries.UPDATE_RUN, (*row, rowid))
        attempts = changed_attempts(rowid, acc.attempts, [], None)
        if attempts:
            await conn.executemany(queries.UPSERT_ATTEMPT, attempts)


async def interrupt_dead_writers(conn: aiosqlite.Connection, dead: Sequence[str | None]) -> None:
    """Re-fold and mark ``interrupted`` the running runs of the writers ``dead`` (owner
    tokens known to be dead), and their running rounds, in one transaction (rolled back,
    and the error raised, when it fails)."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        for owner in dead:
            await _refold_runs_of(conn, owner)
        await conn.executemany(queries.MARK_INTERRUPTED, [(o,) for o in dead])
        await interrupt_rounds_of(conn, dead)
        await conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        raise
