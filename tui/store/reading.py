"""The store's queries: run summaries, one run in detail, its events, and replay.

SQL never leaves ``tui/store``: every method returns the dataclasses of :mod:`.records`
or the original :mod:`tui.stream.events` objects.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite

from tui.stream.events import RunEvent

from . import queries
from .compact import EVENTS_BATCH, iter_events
from .connection import fetch_one, store_error
from .errors import StoreError
from .records import (
    AttemptRecord,
    RunDetail,
    RunSummary,
    StoredAlert,
    alert_record,
    attempt_record,
    summary_fields,
)
from .replay import ReplayClock, due_parts
from .schema import CONVERSATIONS_SINCE, TRUTHFUL_SINCE
from .whole import whole_events


class RunQueries:
    """Read access to the runs of an open database (mixed into :class:`~.store.Store`)."""

    _conn: aiosqlite.Connection
    _closed: bool
    path: Path
    _version: int | None = None
    """The schema version, read once (a writer has upgraded it; a reader reads it as it is)."""

    async def flush(self) -> None:
        """Commit whatever is queued, so that queries see it (a no-op when only reading)."""

    # -- reading -----------------------------------------------------------------------

    async def _query(self, sql: str, params: Any = ()) -> list[Any]:
        if self._closed:
            raise StoreError("the store is closed")
        try:
            return list(await self._conn.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None

    async def list_runs(
        self,
        *,
        search: str | None = None,
        session: str | None = None,
        model: str | None = None,
        finish: str | None = None,
        limit: int = 50,
        since: str | None = None,
    ) -> list[RunSummary]:
        """Runs matching every given filter, newest first (see :func:`queries.list_runs_sql`;
        ``since``: a ``started_at`` as :func:`tui.store.window.started_since` gives it)."""
        await self.flush()
        sql, params = queries.list_runs_sql(
            search=search,
            session=session,
            model=model,
            finish=finish,
            limit=limit,
            since=since,
            conversations=await self._has_conversations(),
            truthful=await self._has_truthful(),
        )
        rows = await self._query(sql, params)
        attempts = await self._attempts([int(row[-1]) for row in rows])
        return [
            RunSummary(**summary_fields(tuple(row[:-1])), attempt_records=attempts.get(row[-1], ()))
            for row in rows
        ]

    async def _attempts(self, rowids: list[int]) -> dict[int, tuple[AttemptRecord, ...]]:
        """The attempts of the given runs, by run rowid."""
        found: dict[int, list[AttemptRecord]] = {}
        for start in range(0, len(rowids), 500):
            chunk = rowids[start : start + 500]
            sql = queries.SELECT_ATTEMPTS.format(marks=", ".join("?" for _ in chunk))
            for row in await self._query(sql, chunk):
                found.setdefault(row[0], []).append(attempt_record(tuple(row[1:])))
        return {k: tuple(v) for k, v in found.items()}

    async def _resolve(self, run_id_or_prefix: str) -> tuple[int, str]:
        prefix = run_id_or_prefix.strip()
        if not prefix:
            raise StoreError("no run id given")
        rows = await self._query(*queries.prefix_sql(prefix))
        if not rows:
            raise StoreError(f"no run {prefix!r} in {self.path}")
        if rows[0][1] != prefix and len(rows) > 1:
            shown = ", ".join(r[1] for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise StoreError(
                f"run id prefix {prefix!r} is ambiguous: it matches {shown}; give more characters"
            )
        return int(rows[0][0]), str(rows[0][1])

    async def get_run(self, run_id_or_prefix: str) -> RunDetail:
        """The run whose id is or uniquely starts with the argument, with its attempts."""
        await self.flush()
        rowid, _ = await self._resolve(run_id_or_prefix)
        sql = queries.detail_sql(
            "r.id = ?",
            conversations=await self._has_conversations(),
            truthful=await self._has_truthful(),
        )
        (row,) = await self._query(sql, (rowid,))
        return (await self._details([row]))[0]

    async def _details(self, rows: list[Any]) -> list[RunDetail]:
        """The runs of rows of :func:`queries.detail_sql`, with their attempts."""
        attempts = await self._attempts([int(row[-1]) for row in rows])
        return [
            RunDetail(
                **summary_fields(tuple(row[:-3])),
                attempt_records=attempts.get(row[-1], ()),
                config=json.loads(row[-3]),
                event_count=row[-2],
            )
            for row in rows
        ]

    async def run_events(self, run_id_or_prefix: str) -> list[RunEvent]:
        """Every recorded event of the run, in arrival order, as the original dataclasses
        (compact delta rows expanded, see :mod:`tui.store.compact`), all in one list: a
        run of any size is better read with :meth:`iter_run_events`."""
        events: list[RunEvent] = []
        async for chunk in self.iter_run_events(run_id_or_prefix):
            events += chunk
        return events

    async def iter_run_events(
        self,
        run_id_or_prefix: str,
        batch: int = EVENTS_BATCH,
        *,
        deltas: bool = True,
        raw: bool = True,
    ) -> AsyncIterator[list[RunEvent]]:
        """The run's recorded events in arrival order, ``batch`` at a time (the last one may
        be shorter), read as they are asked for: memory stays bounded by the batch on a
        run of any size (see :func:`tui.store.compact.iter_events`). ``deltas=False``
        leaves out the text and reasoning deltas, most of a run's events (their rows are
        not read): the rest is a few events (attempts, usage, the end) even for a
        million-token answer, whose text the run's record has whole. ``raw=False`` leaves
        out the raw SSE events. ``ValueError`` for a batch under 1."""
        await self.flush()
        rowid, _ = await self._resolve(run_id_or_prefix)
        if self._closed:
            raise StoreError("the store is closed")
        chunks = iter_events(self._conn, rowid, batch, deltas=deltas, raw=raw)
        while True:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except sqlite3.Error as exc:
                raise store_error(self.path, exc) from None
            yield chunk

    async def whole_events(self, run: RunSummary) -> list[RunEvent]:
        """The events that show the finished ``run`` at once: its attempts, usage, tool
        calls, notices and end, with its text and reasoning as one delta each (read
        without their delta rows or the raw events; see :func:`tui.store.whole.whole_events`;
        its figures: :func:`tui.store.whole.stored_metrics`)."""
        events: list[RunEvent] = []
        async for chunk in self.iter_run_events(run.run_id, deltas=False, raw=False):
            events += chunk
        return whole_events(run, events)

    async def list_alerts(
        self, session: str | None = None, since: str | None = None
    ) -> list[StoredAlert]:
        """Stored alerts, oldest first: all, or those of ``session``, raised at ``since`` (an
        ISO 8601 UTC time such as :func:`tui.store.window.started_since` gives) or later."""
        await self.flush()
        sql, params = queries.list_alerts_sql(session=session, since=since)
        return [alert_record(tuple(row)) for row in await self._query(sql, params)]

    async def replay(
        self, run_id_or_prefix: str, clock: ReplayClock | None = None
    ) -> AsyncIterator[RunEvent]:
        """The run's events again, each once ``clock`` reaches its original offset ``t``.

        ``clock=None`` yields them all at once. The events are read a batch at a time as
        they play (:meth:`iter_run_events`); the clock may change speed, pause or go
        instant while they play.
        """
        async for chunk in self.iter_run_events(run_id_or_prefix):
            for event in chunk:
                if clock is not None:
                    await clock.wait_until(event.t)
                yield event

    async def replay_batches(
        self, run_id_or_prefix: str, clock: ReplayClock | None = None, batch: int = EVENTS_BATCH
    ) -> AsyncIterator[list[RunEvent]]:
        """The run's events again as :meth:`replay` plays them, in lists of the events that
        are due together: in instant mode (or with ``clock=None``) whole batches of
        ``batch`` at once, so that a view applies a long run in a few steps; otherwise each
        list holds what the clock reached since the last one."""
        async for chunk in self.iter_run_events(run_id_or_prefix, batch):
            async for due in due_parts(chunk, clock):
                yield due

    async def schema_version(self) -> int:
        """``PRAGMA user_version`` of the open database."""
        return int(await fetch_one(self._conn, "PRAGMA user_version"))

    async def _schema(self) -> int:
        """The schema version the queries are written for (read once, see ``_version``)."""
        if self._version is None:
            if self._closed:
                raise StoreError("the store is closed")
            try:
                self._version = await self.schema_version()
            except sqlite3.Error as exc:
                raise store_error(self.path, exc) from None
        return self._version

    async def _has_conversations(self) -> bool:
        """Whether runs have their conversation and turn columns (a read-only store of an
        older database reads it as it is: every run is a one-turn conversation of its own)."""
        return await self._schema() >= CONVERSATIONS_SINCE

    async def _has_truthful(self) -> bool:
        """Whether runs have the schema-7 columns (``tpot_ms``, ``tokens_source``, the
        client's lag): an older database read as it is reads them as NULL (unknown)."""
        return await self._schema() >= TRUTHFUL_SINCE
