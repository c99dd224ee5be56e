"""Compare broadcasts in the store: which conversations were compared side by side, and
their replay as columns on one timeline.

The compare screen's prompt box sends one prompt to several sessions at once, each
continuing its own conversation; the runs of one such send share a ``broadcast_id``
(schema 8, given to :meth:`~tui.store.store.Store.start_run`). Two conversations with runs
of one broadcast are columns of one compare: :meth:`BroadcastQueries.compared_conversations`
gives the conversations that share a broadcast with a given one, and
:meth:`BroadcastQueries.replay_columns` plays them side by side with their original
relative timing (:func:`column_offsets`). A database older than schema 8, read as it is,
links nothing: every conversation is compared with none.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass

from tui.stream.events import RunEvent

from .conversation_records import MAX_CONVERSATION_ID, ConversationRecord
from .conversations import ConversationQueries
from .errors import StoreError
from .records import RunDetail, conversation_columns, in_conversation
from .replay import TURN_GAP_MAX_S, ReplayClock, TurnStart
from .schema import BROADCASTS_SINCE

__all__ = [
    "BroadcastQueries",
    "ColumnItem",
    "ComparedConversation",
    "checked_broadcast_id",
    "column_offsets",
]


def checked_broadcast_id(broadcast_id: str | None) -> str | None:
    """``broadcast_id`` as :meth:`~tui.store.store.Store.start_run` takes it, checked: a
    non-empty string without surrounding blanks of at most :data:`MAX_CONVERSATION_ID`
    characters, or None (a run sent on its own). Raises ``ValueError`` naming what is
    wrong."""
    if broadcast_id is None:
        return None
    if not isinstance(broadcast_id, str) or not broadcast_id.strip():
        raise ValueError("a broadcast id must be a non-empty string (or None)")
    if broadcast_id != broadcast_id.strip() or len(broadcast_id) > MAX_CONVERSATION_ID:
        raise ValueError(
            f"broadcast id {broadcast_id[:40]!r} has blanks around it or is longer than "
            f"{MAX_CONVERSATION_ID} characters"
        )
    return broadcast_id


@dataclass(frozen=True, slots=True)
class ComparedConversation:
    """One column of a stored compare: a conversation and who held it."""

    conversation_id: str
    session: str
    """The session of its first linked run (every run of a conversation has one session)."""
    model: str


@dataclass(frozen=True, slots=True)
class ColumnItem:
    """What :meth:`BroadcastQueries.replay_columns` yields: an item of column ``column``
    (its place in the list given), a :class:`TurnStart` before each of its turns, then
    that turn's events."""

    column: int
    item: TurnStart | RunEvent


_LINKED_SQL = """
WITH sent AS (
    SELECT DISTINCT r.broadcast_id FROM runs AS r
    WHERE {mine} AND r.broadcast_id IS NOT NULL
), linked AS (
    SELECT {key} AS cid, min(r.id) AS first FROM runs AS r
    WHERE r.broadcast_id IN sent GROUP BY cid
)
SELECT l.cid, r.session_name, r.model FROM linked AS l JOIN runs AS r ON r.id = l.first
ORDER BY l.first
"""
"""(conversation id, session, model) of every conversation with a run of a broadcast that
the conversation ``?1`` has a run of, ordered by their first such run (the order a compare
sent them in: its columns' order), ``?1`` among them. Both steps are index reads
(``runs_by_conversation``, then ``runs_by_broadcast``)."""

_OWN_SQL = (
    "SELECT r.session_name, r.model FROM runs AS r WHERE {mine} "
    "ORDER BY r.turn, r.started_at LIMIT 1"
)


def column_offsets(columns: Sequence[Sequence[RunDetail]]) -> list[list[float]]:
    """Where each run of ``columns`` (each column's turns' runs, in turn order) starts on
    the columns' shared replay timeline, in seconds from the first run's start.

    The timeline is wall time: runs that overlapped keep their relative timing exactly
    (columns started together start together, a faster column ends first). Only a pause
    in which no run of any column was running (the person read the answers and typed the
    next prompt) is shortened, to at most :data:`~tui.store.replay.TURN_GAP_MAX_S`, as a
    conversation's replay shortens the pause between its turns. A turn never starts
    before the one before it in its column has ended (clocks that disagree, a run's end
    stored late)."""
    spans = sorted(
        (run.started_at, max(run.ended_s or 0.0, 0.0), column, index)
        for column, runs in enumerate(columns)
        for index, run in enumerate(runs)
    )
    offsets = [[0.0] * len(runs) for runs in columns]
    if not spans:
        return offsets
    origin = spans[0][0]
    removed = 0.0
    covered = 0.0  # wall seconds since the origin up to which some run was running
    for started, length, column, index in spans:
        at = (started - origin).total_seconds()
        if at > covered:
            removed += max(0.0, at - covered - TURN_GAP_MAX_S)
        offsets[column][index] = at - removed
        covered = max(covered, at + length)
    for column, runs in enumerate(columns):  # a column's turns come one after the other
        for index in range(1, len(runs)):
            end = offsets[column][index - 1] + max(runs[index - 1].ended_s or 0.0, 0.0)
            offsets[column][index] = max(offsets[column][index], end)
    return offsets


class BroadcastQueries(ConversationQueries):
    """Reading compare broadcasts (mixed into :class:`~tui.store.store.Store`)."""

    async def _has_broadcasts(self) -> bool:
        """Whether runs have their ``broadcast_id`` (schema 8; older: nothing is linked)."""
        return await self._schema() >= BROADCASTS_SINCE

    async def compared_conversations(self, id_or_prefix: str) -> list[ComparedConversation]:
        """The columns of the compare that the conversation ``id_or_prefix`` names (see
        :meth:`conversation_id`) was part of: every conversation that shares a broadcast
        with it, itself included, in the order the compare sent them (its columns' order).
        Just itself when it shares none (a conversation held on its own, or a database
        older than schema 8). Raises :class:`StoreError` when nothing matches, and as
        :meth:`conversation_id` does."""
        cid = await self.conversation_id(id_or_prefix)
        if cid is None:
            raise StoreError(f"no conversation or run {id_or_prefix.strip()!r} in {self.path}")
        mine = in_conversation("?1", conversations=await self._has_conversations())
        if await self._has_broadcasts():
            key, _ = conversation_columns(True)
            rows = await self._query(_LINKED_SQL.format(mine=mine, key=key), (cid,))
            found = [ComparedConversation(str(c), str(s), str(m)) for c, s, m in rows]
            if any(column.conversation_id == cid for column in found):
                return found
        rows = await self._query(_OWN_SQL.format(mine=mine), (cid,))
        if not rows:  # pruned in between
            raise StoreError(f"no conversation or run {id_or_prefix.strip()!r} in {self.path}")
        return [ComparedConversation(cid, str(rows[0][0]), str(rows[0][1]))]

    async def replay_columns(
        self,
        records: Sequence[ConversationRecord],
        clock: ReplayClock | None = None,
        *,
        whole: bool = False,
    ) -> AsyncIterator[ColumnItem]:
        """The conversations ``records`` again, side by side: each column's turns as
        :meth:`replay_conversation` gives them (a :class:`TurnStart` before each turn, then
        its answer's events; branches are not replayed), all on one timeline
        (:func:`column_offsets`: their original relative timing, the pauses when nothing
        ran shortened), each item once ``clock`` reaches its place. Items of different
        columns come in the order of their places (a column's own in its order).

        ``clock=None`` yields everything without waiting, in that same order. ``whole``:
        column after column, each turn's events as :meth:`whole_events` gives them (its
        text whole), without waiting: the columns shown at once. The events are read a
        batch at a time as they play."""
        answers = [[turn.run for turn in record.turns] for record in records]
        offsets = column_offsets(answers)
        if whole:
            for column, record in enumerate(records):
                for turn, at in zip(record.turns, offsets[column], strict=True):
                    run = turn.run
                    yield ColumnItem(column, TurnStart(turn.turn, run.prompt, run.run_id, at))
                    for event in await self.whole_events(run):
                        yield ColumnItem(column, event)
            return
        feeds = [
            self._column_feed(record, offsets[column]) for column, record in enumerate(records)
        ]
        chunks: list[list[tuple[float, TurnStart | RunEvent]]] = [[] for _ in feeds]
        heads: list[tuple[float, int, int]] = []  # (place, column, index in its chunk)

        async def refill(column: int) -> None:
            chunk = await anext(feeds[column], None)
            if chunk:
                chunks[column] = chunk
                heapq.heappush(heads, (chunk[0][0], column, 0))

        try:
            for column in range(len(feeds)):
                await refill(column)
            while heads:
                _, column, i = heapq.heappop(heads)
                # the column's items up to the next one of another column, in one go
                bound = heads[0][0] if heads else math.inf
                chunk = chunks[column]
                while i < len(chunk) and chunk[i][0] <= bound:
                    at, item = chunk[i]
                    if clock is not None:
                        await clock.wait_until(at)
                    yield ColumnItem(column, item)
                    i += 1
                if i < len(chunk):
                    heapq.heappush(heads, (chunk[i][0], column, i))
                else:
                    await refill(column)
        finally:
            for feed in feeds:
                await feed.aclose()

    async def _column_feed(
        self, record: ConversationRecord, offsets: Sequence[float]
    ) -> AsyncGenerator[list[tuple[float, TurnStart | RunEvent]]]:
        """One column's items with their places on the shared timeline, a stored batch of
        events at a time (each turn's :class:`TurnStart` first in its first batch)."""
        for turn, at in zip(record.turns, offsets, strict=True):
            run = turn.run
            start: list[tuple[float, TurnStart | RunEvent]] = [
                (at, TurnStart(turn.turn, run.prompt, run.run_id, at))
            ]
            async for events in self.iter_run_events(run.run_id):
                start += [(at + event.t, event) for event in events]
                yield start
                start = []
            if start:  # a run without events
                yield start
