"""What one flush writes, taken on the event loop: :class:`FlushPlan`.

The writer (:mod:`tui.store.writer`) takes the queue and, from the runs it tracks, the rows
that go with it: the rows of the runs started since the last flush (with their start times),
the start times that the runs' first events corrected, and the checkpoints that are due (the
runs' rows and changed attempts, as of exactly the events taken). :func:`~tui.store.flush.
commit_flush` then writes the plan in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiosqlite

from .flush import SEQ_BITS, ActiveRun, Flushed, NewRun, commit_flush, iso_time
from .queue import Queued, WriteQueue
from .raw_spill import RawSpill

__all__ = ["FlushPlan"]

PHASE = 0.6180339887498949
"""Spreads the runs' checkpoint phases over the period (the golden ratio's fraction: any
number of consecutive slots are spread about evenly)."""


@dataclass(slots=True)
class FlushPlan:
    """The events, deltas, alerts and rows one flush writes (see the module)."""

    queued: Queued
    changed: list[tuple[str, ActiveRun, int, bool]]
    """Runs whose row is written: (run id, run, its next seq as of ``queued``, final)."""
    fresh: list[tuple[str, ActiveRun]]
    """Runs whose row is not stored yet (inserted by this flush)."""
    stamps: list[tuple[ActiveRun, float]]
    """Runs whose start time is written (new ones, and those their first events corrected)."""
    run_rows: list[tuple[Any, ...]]
    attempt_rows: list[tuple[Any, ...]]
    purge: list[int]
    raw_dumps: list[tuple[int, RawSpill]]
    new_runs: list[tuple[int, NewRun, str]]
    restamp: list[tuple[str, int]]

    @classmethod
    def take(
        cls,
        queued: Queued,
        active: Mapping[str, ActiveRun],
        *,
        closing: bool,
        checkpoint_s: float,
    ) -> FlushPlan | None:
        """The plan for ``queued`` and the ``active`` runs (every row when ``closing``;
        otherwise the checkpoints at least ``checkpoint_s`` old, and the runs that ended);
        None when there is nothing to write. Raises what a bad event raises."""
        now = time.monotonic()
        due = now - checkpoint_s
        fresh = [(run_id, run) for run_id, run in active.items() if run.rowid is None]
        changed = [
            (run_id, run, run.next_seq, run.ended or closing)
            for run_id, run in active.items()
            if closing
            or (run.next_seq != run.flushed_seq and (run.ended or run.checkpoint_at <= due))
        ]
        for _, run, _, _ in changed:
            # after its first checkpoint, each run's next ones are on a phase of its own, so
            # that runs started together do not all rewrite their rows in the same flush
            first = run.checkpoint_at == float("-inf")
            run.checkpoint_at = now - (run.slot * PHASE % 1.0) * checkpoint_s if first else now
        stamps = [(run, run.started) for run in active.values() if run.stamped != run.started]
        if not queued.waiting and not changed and not stamps:
            return None
        return cls(
            queued,
            changed,
            fresh,
            stamps,
            run_rows=[(run.slot, *run.row(final=final)) for _, run, _, final in changed],
            attempt_rows=[row for _, run, _, _ in changed for row in run.attempt_rows()],
            purge=[run.slot for _, run, _, final in changed if final and run.purge_raw],
            raw_dumps=[(run.slot, run.raw) for _, run, _, final in changed if final and run.raw],
            new_runs=[(r.slot, r.begun, iso_time(at)) for r, at in stamps if r.begun],
            restamp=[(iso_time(at), r.slot) for r, at in stamps if r.rowid is not None],
        )

    def not_stored(
        self, slots: list[int], queue: WriteQueue
    ) -> tuple[int, int, list[tuple[str, ActiveRun]]]:
        """The new runs of ``slots`` were not stored (their run ids were in the database
        already): what they queued is dropped. How many of this plan's events were theirs,
        how many events were dropped in all, and those runs."""
        lost = set(slots)
        mine = sum(1 for key in self.queued.keys if key >> SEQ_BITS in lost)
        mine += sum(len(s) for s in self.queued.segments if s.slot in lost)
        runs = [(run_id, run) for run_id, run in self.fresh if run.slot in lost]
        dropped = mine + queue.drop_slots(lost) + sum(queue.drop_held(r) for _, r in runs)
        return mine, dropped, runs

    async def commit(
        self,
        conn: aiosqlite.Connection,
        secrets: dict[int, tuple[bytes, ...]],
        rowids: dict[int, int],
    ) -> Flushed:
        """Write the plan in one transaction (:func:`~tui.store.flush.commit_flush`)."""
        queued = self.queued
        return await commit_flush(
            conn,
            queued.keys,
            queued.events,
            self.run_rows,
            self.attempt_rows,
            secrets,
            rowids=rowids,
            new_runs=self.new_runs,
            restamp=self.restamp,
            segments=queued.segments,
            alert_rows=queued.alerts,
            round_run_rows=queued.round_runs,
            round_prompt_rows=queued.round_prompts,
            purge_raw=self.purge,
            raw_dumps=self.raw_dumps,
        )
