"""The writer's queue: what the next flush writes, and how a run's events are sorted into it.

:class:`WriteQueue` holds the queued events (keyed ``slot << SEQ_BITS | seq``), the
:class:`~tui.store.compact.DeltaSegment` of each run's text and reasoning deltas (the compact
stored form), the queued alert rows and the rows of compare rounds (``add_round_run``).
:meth:`WriteQueue.add` is the writer's per-event path (it also applies each event to the
run's fold when the store owns it); a flush
:meth:`~WriteQueue.take` s everything as one :class:`Queued` and, when the database was busy,
:meth:`~WriteQueue.put_back` s it.

Raw SSE events follow ``keep_raw_events``: ``all`` queues them as any event; ``none`` drops
them at once (they take no sequence number); ``failed`` holds a run's raw events back in its
:class:`~tui.store.flush.ActiveRun` until its :class:`Finished` says how it ended: a completed
run drops them, any other outcome (or a run still open at ``close``) queues them with their
original sequence numbers. The hold is bounded (:data:`RAW_HOLD_EVENTS`,
:data:`RAW_HOLD_BYTES` per run): past it the held events go, compressed, to the run's
temporary file (:mod:`tui.store.raw_spill`), which a completed run closes and any other
writes with its last flush, so memory stays bounded on any stream and a completed run's raw
events never reach the database. Only when no temporary file can be made are they queued
(written) and deleted again by the run's last flush if it completes. Held raw events are not
in the database yet: a ``kill -9`` loses them (the run's text and deltas are committed as
always). ``bench/retention.py`` measured holding back against writing and deleting: 2.7x
less time in write transactions per 400-token run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tui.config import KeepRawEvents
from tui.stream.events import Finished, RawEvent, ReasoningDelta, RunEvent, TextDelta

from .compact import SEGMENT_LIMIT, DeltaSegment
from .flush import SEQ_BITS, ActiveRun, HeldRaw, raw_forms
from .raw_spill import RawSpill, SpillFile
from .rows import storable

__all__ = [
    "RAW_HOLD_BYTES",
    "RAW_HOLD_EVENTS",
    "RAW_HOLD_TOTAL",
    "RAW_SPILL_MIN",
    "Queued",
    "WriteQueue",
]

RAW_HOLD_EVENTS = 4096
RAW_HOLD_BYTES = 1 << 20
"""With ``keep_raw_events = "failed"``, a running run holds at most this many raw events, and
this many bytes of their data, in memory; past either the held ones go to its temporary
file. A 400-token answer is about 410 raw events and 150 KB."""

RAW_HOLD_TOTAL = 262_144
RAW_SPILL_MIN = 256
"""All runs together hold at most about this many raw events in memory (each costs the
writer about 80 bytes besides its data, which the session's raw view shares): past it, a
run that holds :data:`RAW_SPILL_MIN` or more puts them in its file (1,024 runs of 1,000
tokens would otherwise hold a million)."""


@dataclass(slots=True)
class Queued:
    """What one flush takes from the queue (put back as it was when the database was busy)."""

    keys: list[int] = field(default_factory=list)
    events: list[RunEvent] = field(default_factory=list)
    segments: list[DeltaSegment] = field(default_factory=list)
    deltas: int = 0
    """Deltas in ``segments`` (each counts as one event)."""
    alerts: list[tuple[Any, ...]] = field(default_factory=list)
    round_runs: list[tuple[Any, ...]] = field(default_factory=list)
    """``INSERT_ROUND_RUN`` rows: (round id, run id, session, number)."""
    round_prompts: list[tuple[Any, ...]] = field(default_factory=list)
    """``UPDATE_ROUND_PROMPT`` rows: a round's prompt with a newly known secret blanked out."""

    def __len__(self) -> int:
        """Events queued (each compact delta counts as one)."""
        return len(self.events) + self.deltas

    @property
    def waiting(self) -> bool:
        """Whether anything is queued: events, alerts or round rows."""
        return bool(
            self.events or self.deltas or self.alerts or self.round_runs or self.round_prompts
        )


class WriteQueue(Queued):
    """The writer's queue (see the module docstring)."""

    def __init__(self, keep_raw_events: KeepRawEvents, spill_dir: Path | None = None) -> None:
        super().__init__()
        self.keep_raw_events: KeepRawEvents = keep_raw_events
        self.spill_file = SpillFile(spill_dir or Path("."))
        """Where runs put the raw events past their hold (beside the database)."""
        """Which runs keep their raw SSE events (``[store] keep_raw_events``)."""
        self.compact_deltas = True
        """Deltas go to compact ``deltas`` rows; False writes each as an ``events`` row, as
        schema 3 did (``bench/retention.py``'s same-run reference; both read back alike)."""
        self.held_total = 0
        """Raw events all runs hold in memory (see :data:`RAW_HOLD_TOTAL`)."""
        self.raw_events_discarded = 0
        """Raw events not kept, as ``keep_raw_events`` asks (not a loss)."""
        self.fold_errors = 0
        """Events the store's own fold of a run could not apply (they are still written)."""

    def add(self, run: ActiveRun, events: Sequence[RunEvent]) -> tuple[int, Finished | None]:
        """Queue ``events`` of ``run`` (in order): how many came after its :class:`Finished`
        (not kept), and that ``Finished`` if it came."""
        apply: Callable[[RunEvent], None] | None = None if run.shared else run.acc.apply
        keys = self.keys.append
        pending = self.events.append
        keep_raw = self.keep_raw_events
        compact = self.compact_deltas
        key = run.key
        seq = run.next_seq
        segment = run.segment
        deltas = dropped = 0
        ended: Finished | None = None
        for event in events:
            if ended is not None:  # nothing after the run's Finished is kept
                dropped += 1
                continue
            if apply is not None:
                try:
                    apply(event)
                except Exception:  # a value the fold cannot take (inf): the event is kept
                    self.fold_errors += 1
            cls = type(event)
            if (cls is TextDelta or cls is ReasoningDelta) and compact:
                if segment is None or segment.kind is not cls or len(segment.seqs) >= SEGMENT_LIMIT:
                    segment = DeltaSegment(run.slot, cls)
                    self.segments.append(segment)
                segment.seqs.append(seq)
                segment.events.append(event)  # type: ignore[arg-type]
                deltas += 1
            elif cls is RawEvent and keep_raw != "all":
                if keep_raw == "none":
                    self.raw_events_discarded += 1
                    continue  # no sequence number: the deltas around it stay consecutive
                held = run.held  # HeldRaw.add, inlined: the per-event path
                held.seqs.append(seq)
                held.times.append(event.t)
                held.attempts.append(event.attempt)  # type: ignore[union-attr]
                held.names.append(event.event)  # type: ignore[union-attr]
                data = event.data  # type: ignore[union-attr]
                held.datas.append(data)
                held.ids.append(event.id)  # type: ignore[union-attr]
                run.held_bytes += len(data) if type(data) is str else RAW_HOLD_BYTES
                self.held_total += 1
                count = len(held.seqs)
                if (
                    count >= RAW_HOLD_EVENTS
                    or run.held_bytes >= RAW_HOLD_BYTES
                    or (self.held_total >= RAW_HOLD_TOTAL and count >= RAW_SPILL_MIN)
                ):
                    self.overflow(run)
            else:
                keys(key | seq)
                pending(event)
                if cls is Finished:
                    ended = event  # type: ignore[assignment]
            seq += 1
        run.next_seq = seq
        run.segment = segment
        run.last_t = events[-1].t
        self.deltas += deltas
        if ended is not None:
            run.ended = True
            if ended.status == "completed":
                self.raw_events_discarded += self.drop_held(run)
                run.purge_raw = run.spilled
            else:
                self.spill(run)
        return dropped, ended

    def add_alert(
        self,
        run_id: str,
        session: str,
        metric: str,
        value: float | None,
        threshold: float | None,
        message: str,
        at: float,
    ) -> None:
        """Queue an alert row (``at``: ``time.time()``, stored as ISO 8601 UTC)."""
        when = datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds")
        self.alerts.append(
            (run_id, session, metric, storable(value), storable(threshold), message, when)
        )

    def overflow(self, run: ActiveRun) -> None:
        """``run`` holds as many raw events as it may: into its temporary file with them
        (queued instead, to be deleted again if it completes, when no file can take them)."""
        if run.raw is None:
            run.raw = RawSpill(self.spill_file)
        secrets = raw_forms(run.secret) if run.secret else ()
        if run.raw.write(run.held, secrets):
            self._let_go(run)
        else:
            self.spill(run)
            run.spilled = True

    def spill(self, run: ActiveRun) -> None:
        """Queue the raw events ``run`` holds back (with their sequence numbers): its outcome
        says they are kept (those in its file are written by its last flush)."""
        if run.held:
            key = run.key
            self.keys += [key | seq for seq in run.held.seqs]
            self.events += run.held.events()
            self._let_go(run)

    def _let_go(self, run: ActiveRun) -> int:
        """``run`` holds no raw events in memory any more; how many it held."""
        count = len(run.held)
        self.held_total -= count
        run.held, run.held_bytes = HeldRaw(), 0
        return count

    def drop_held(self, run: ActiveRun) -> int:
        """Forget the raw events ``run`` holds back, in memory and in its file; how many."""
        count = self._let_go(run)
        if run.raw is not None:
            count += run.raw.events
            run.raw.close()
            run.raw = None
        return count

    def drop_slots(self, slots: set[int]) -> int:
        """Forget the queued events and deltas of the runs in ``slots``; how many."""
        pairs = zip(self.keys, self.events, strict=True)
        kept = [(k, e) for k, e in pairs if k >> SEQ_BITS not in slots]
        count = len(self.keys) - len(kept)
        self.keys, self.events = [k for k, _ in kept], [e for _, e in kept]
        segments = [s for s in self.segments if s.slot not in slots]
        dropped = sum(len(s) for s in self.segments) - sum(len(s) for s in segments)
        self.segments, self.deltas = segments, self.deltas - dropped
        return count + dropped

    def take(self, runs: Iterable[ActiveRun]) -> Queued:
        """Everything queued, for one flush; the queue is empty after, and the ``runs``' next
        deltas start new segments (the flush reads these ones in SQLite's thread)."""
        taken = Queued(
            self.keys,
            self.events,
            self.segments,
            self.deltas,
            self.alerts,
            self.round_runs,
            self.round_prompts,
        )
        self.clear()
        for run in runs:
            run.segment = None
        return taken

    def put_back(self, taken: Queued) -> None:
        """``taken`` back at the front of the queue (its flush found the database busy)."""
        self.keys[:0] = taken.keys
        self.events[:0] = taken.events
        self.segments[:0] = taken.segments
        self.deltas += taken.deltas
        self.alerts[:0] = taken.alerts
        self.round_runs[:0] = taken.round_runs
        self.round_prompts[:0] = taken.round_prompts

    def clear(self) -> int:
        """Forget everything queued; how many events that was."""
        count = len(self)
        self.keys, self.events, self.segments, self.deltas, self.alerts = [], [], [], 0, []
        self.round_runs, self.round_prompts = [], []
        return count
