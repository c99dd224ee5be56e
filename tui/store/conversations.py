"""Conversations in the store: listing them, reading one turn by turn, replaying it.

Every run is a turn (from 1) of a conversation (schema 6: ``runs.conversation_id`` and
``runs.turn``, given to :meth:`~tui.store.store.Store.start_run`); a run started without one
is a one-turn conversation of its own whose id is the run's, as every run recorded before
conversations is. Which run of a turn is its answer and which are branches is
:mod:`tui.store.conversation_records`' rule.

Wherever a conversation is expected (:meth:`~ConversationQueries.get_conversation`,
:meth:`~ConversationQueries.replay_conversation`, ``tokentop export`` and ``replay``), a
conversation id, a run id, or a prefix of either names it: a run names its conversation. A
read-only store of an older database (schema 4 or 5, read as it is) sees every run as a
one-turn conversation of its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

from tui.stream.events import RunEvent

from . import conversation_sql
from .connection import store_error
from .conversation_records import (
    ConversationRecord,
    ConversationSummary,
    checked_turn,
    summary_of,
    turns_of,
)
from .errors import StoreError
from .reading import RunQueries
from .records import conversation_columns
from .replay import ReplayClock, TurnStart, next_turn_offset

__all__ = ["ConversationQueries", "checked_turn"]

_CHUNK = 500
"""Conversations per query of their runs (SQLite's bound on ``?`` parameters is far above)."""

_HIGHEST = "\U0010ffff"
"""The highest character: the ids that start with a prefix sort between it and it + this."""


class ConversationQueries(RunQueries):
    """Reading conversations (mixed into :class:`~tui.store.store.Store`)."""

    async def list_conversations(
        self,
        *,
        search: str | None = None,
        session: str | None = None,
        model: str | None = None,
        since: str | None = None,
        limit: int = 50,
        finish: str | None = None,
    ) -> list[ConversationSummary]:
        """Conversations with a run that matches every given filter, the latest activity
        (the start of its latest run) first, at most ``limit``.

        The filters are :meth:`list_runs`' and apply to any run of a conversation:
        ``search`` finds text in the prompt or answer of any turn, ``since`` (a
        ``started_at``, see :func:`tui.store.window.started_since`) keeps the conversations
        with a run started then or later, ``finish`` those with a run that ended so.
        """
        await self.flush()
        v6 = await self._has_conversations()
        if search or session is not None or model is not None or finish is not None:
            sql, params = conversation_sql.conversations_sql(
                search=search,
                session=session,
                model=model,
                finish=finish,
                since=since,
                limit=limit,
                conversations=v6,
            )
            cids = [str(row[0]) for row in await self._query(sql, params)]
        else:
            cids = await self._latest_conversations(limit, since, v6)
        runs: dict[str, list[tuple[object, ...]]] = {}
        prompts: dict[str, str] = {}
        for start in range(0, len(cids), _CHUNK):
            chunk = cids[start : start + _CHUNK]
            sql = conversation_sql.conversation_runs_sql(len(chunk), conversations=v6)
            for row in await self._query(sql, chunk):
                runs.setdefault(row[0], []).append(tuple(row[1:]))
            firsts = [str(runs[c][0][0]) for c in chunk if c in runs]
            prompts.update(await self._query(conversation_sql.prompts_sql(len(firsts)), firsts))
        return [
            summary_of(cid, runs[cid], prompts.get(str(runs[cid][0][0]), ""))
            for cid in cids
            if cid in runs  # pruned in between
        ]

    async def _latest_conversations(self, limit: int, since: str | None, v6: bool) -> list[str]:
        """The ids of the ``limit`` conversations with the latest activity (since ``since``):
        the first distinct ones of the runs, the latest first, read :data:`_CHUNK` at a time
        from the end of an index until enough are found."""
        key, _ = conversation_columns(v6)
        bound = "" if since is None else " WHERE r.started_at >= ?"
        sql = conversation_sql.ACTIVITY_SQL.format(key=key, since=bound)
        found: dict[str, None] = {}
        if self._closed:
            raise StoreError("the store is closed")
        try:
            async with self._conn.execute(sql, () if since is None else (since,)) as cursor:
                while len(found) < limit and (rows := await cursor.fetchmany(_CHUNK)):
                    for cid, _ in rows:
                        found.setdefault(str(cid), None)
                        if len(found) == limit:
                            break
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None
        return list(found)

    async def conversation_id(self, id_or_prefix: str) -> str | None:
        """The id of the conversation that ``id_or_prefix`` names: a conversation id, a run
        id (its conversation), or a prefix of either that names one conversation (exact ids
        first, a conversation's before a run's; a prefix in capitals also as written in
        small letters, as tokentop writes its ids); None when nothing matches. Raises
        :class:`StoreError` for an empty argument and a prefix of several conversations
        (naming them)."""
        await self.flush()
        prefix = id_or_prefix.strip()
        if not prefix:
            raise StoreError("no conversation or run id given")
        sql = conversation_sql.conversation_lookup_sql(await self._has_conversations())
        spellings = dict.fromkeys((prefix, prefix.lower()))
        for spelling in spellings:
            if await self._query(sql["conversation"], (spelling,)):
                return spelling
            run = await self._query(sql["run"], (spelling,))
            if run:
                return str(run[0][0])
        found: dict[str, None] = {}
        for spelling in spellings:
            bounds = (spelling, spelling + _HIGHEST)
            for kind in ("conversations", "runs"):
                found.update((str(row[0]), None) for row in await self._query(sql[kind], bounds))
        if len(found) > 1:
            names = sorted(found)
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise StoreError(
                f"id prefix {prefix!r} is ambiguous: it names the conversations {shown}; "
                "give more characters"
            )
        return next(iter(found), None)

    async def get_conversation(self, id_or_prefix: str) -> ConversationRecord | None:
        """The conversation that ``id_or_prefix`` names (see :meth:`conversation_id`), every
        run with its attempts, turn by turn; None when nothing matches. Raises
        :class:`StoreError` as :meth:`conversation_id` does."""
        cid = await self.conversation_id(id_or_prefix)
        if cid is None:
            return None
        sql = conversation_sql.conversation_detail_sql(
            conversations=await self._has_conversations(), truthful=await self._has_truthful()
        )
        rows = await self._query(sql, (cid,))
        if not rows:
            return None  # pruned in between
        runs = await self._details(rows)
        return ConversationRecord(cid, runs[0].session, runs[0].model, turns_of(runs))

    async def replay_conversation(
        self, id_or_prefix: str, clock: ReplayClock | None = None, *, whole: bool = False
    ) -> AsyncIterator[TurnStart | RunEvent]:
        """The conversation's turns again: before each turn a :class:`TurnStart` (its number,
        prompt and run), then the events of its answer (its branches are not replayed), each
        once ``clock`` reaches its place on the conversation's timeline.

        The timeline is each turn's original timing one after the other, with the pause
        between two runs kept up to :data:`~tui.store.replay.TURN_GAP_MAX_S`
        (:func:`~tui.store.replay.next_turn_offset`); ``TurnStart.offset_s`` is where a turn
        starts on it. ``clock=None`` yields everything at once. The events are read a batch
        at a time as they play. ``whole``: each turn's events as :meth:`whole_events` gives
        them (its text whole, no deltas one by one), without waiting for ``clock``: the
        conversation shown at once. Raises :class:`StoreError` when nothing matches, and as
        :meth:`conversation_id` does.
        """
        record = await self.get_conversation(id_or_prefix)
        if record is None:
            raise StoreError(f"no conversation or run {id_or_prefix.strip()!r} in {self.path}")
        offset = end = 0.0
        previous = None
        for turn in record.turns:
            run = turn.run
            if previous is not None:
                gap = (run.started_at - previous.started_at).total_seconds() - end
                offset = next_turn_offset(offset, end, gap)
            if clock is not None and not whole:
                await clock.wait_until(offset)
            yield TurnStart(turn.turn, run.prompt, run.run_id, offset)
            if whole:
                for event in await self.whole_events(run):
                    yield event
                end, previous = run.ended_s or 0.0, run
                continue
            last_t = 0.0
            async for chunk in self.iter_run_events(run.run_id):
                for event in chunk:
                    if clock is not None:
                        await clock.wait_until(offset + event.t)
                    yield event
                last_t = chunk[-1].t
            end = max(run.ended_s or 0.0, last_t)
            previous = run
