"""History over time, per session: run counts, success rate, last failure and p50/p95 of
TTFT, tokens per second and duration, computed from the ``runs`` table (read only).

Definitions (one of each, shared by ``tokentop stats``, the dashboard and anything that
compares with them):

- **Window.** A run belongs to a window when its ``started_at`` is at or after ``since``
  (an ISO 8601 time, as :func:`tui.store.window.started_since` returns; None: all runs).
- **Runs.** ``runs`` counts finished runs (every stored status but ``running``); runs still
  ``running`` are counted apart in ``running`` and take part in nothing else but
  ``first_run_at`` / ``last_run_at``.
- **Outcome.** Each finished run has the tone the views show (:func:`tui.vocab.outcome_tone`):
  ``ok`` (✓) and ``warn`` (▲: ``incomplete``, or cut by ``length`` / ``content_filter``) are
  *successes*: the server answered. ``failed`` (✖: ``failed``, ``interrupted``, or a finish
  reason in :data:`~tui.vocab.FAILED_REASONS`) are *failures*. ``cancelled`` (■) runs were
  stopped on purpose and say nothing about the server: they are left out of the rate.
- **Success rate** = successes / (successes + failures), from 0.0 to 1.0; None when the
  window holds neither.
- **Last failure**: the failure with the newest ``started_at`` in the window.
- **Percentiles** of ``ttft_ms``, ``tokens_per_s`` and ``duration_ms`` are over the
  *successful* runs that have the value (a failed run's duration or a cut stream's rate would
  mix two distributions), by linear interpolation between the closest ranks (numpy's
  default; :func:`tui.stream.metrics.exact_quantile`, the one the ITL percentiles use), so
  ``p50`` of an even count is the mean of the middle two.

Each answer is one pass over the window's rows, selecting only the short columns (never a
prompt or an answer), with each run's outcome computed by SQLite (:data:`OUTCOME_SQL`); the
last failures' messages are read afterwards by rowid. What bounds the time is reading the
rows: the numeric columns sit in the table's pages next to the answers, so a window of many
runs reads their pages too unless an index holds those columns.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import aiosqlite

from tui.vocab import FAILED_REASONS

from .errors import StoreError
from .stats_records import (
    MESSAGE_CHARS,
    LastFailure,
    Outcome,
    Percentiles,
    SeriesPoint,
    SessionStats,
    one_line,
    outcome,
    utc_time,
)

if TYPE_CHECKING:
    from .reading import RunQueries

__all__ = [
    "MESSAGE_CHARS",
    "LastFailure",
    "Outcome",
    "Percentiles",
    "SeriesPoint",
    "SessionStats",
    "Source",
    "normalize_since",
    "outcome",
    "series",
    "session_names",
    "session_stats",
]

Source: TypeAlias = "RunQueries | aiosqlite.Connection"
"""What the queries read from: an open :class:`~tui.store.store.Store` (a writer's queued
events are flushed first) or a bare aiosqlite connection to a tokentop database."""

METRICS = ("ttft_ms", "tokens_per_s", "duration_ms")
"""The columns with percentiles, as :class:`SessionStats` names them."""

OUTCOME_SQL = (
    "CASE WHEN status = 'running' THEN NULL "
    "WHEN status IN ('failed', 'interrupted') OR finish_reason IN ("
    + ", ".join(f"'{reason}'" for reason in sorted(FAILED_REASONS))
    + ") THEN 'failure' "
    "WHEN status = 'cancelled' OR finish_reason = 'cancelled' THEN 'cancelled' "
    "ELSE 'success' END"
)
""":func:`outcome` as SQL over a ``runs`` row (``tests/store/test_stats.py`` checks the two
agree for every status and finish reason)."""

_FAILURE_SQL = (
    "SELECT id, run_id, started_at, status, finish_reason, error_kind, error_status, "
    "error_message FROM runs WHERE id IN ({marks})"
)

_ROWS_SQL = (
    f"SELECT session_name, started_at, id, status, {OUTCOME_SQL}, ttft_ms, tokens_per_s, "
    "duration_ms FROM runs"
)
"""The window's runs, only the short columns (never a prompt or an answer)."""

_ALL_SESSIONS = "SELECT DISTINCT session_name FROM runs"
"""Every session name (from the ``runs_stats`` index alone)."""

_BUCKET_ROWS_SQL = (
    "SELECT min(CAST((julianday(started_at) - julianday(?)) * 86400.0 / ? AS INTEGER), ?), "
    f"{OUTCOME_SQL}, ttft_ms, tokens_per_s, duration_ms FROM runs"
)
"""A session's finished runs by bucket (``?``: the window's start, the bucket width in
seconds, the last bucket's index)."""


class _Tally:
    """Counts and metric values of one session or bucket while the rows go by."""

    __slots__ = (
        "durations",
        "first",
        "last",
        "last_failure",
        "outcomes",
        "rates",
        "statuses",
        "ttfts",
    )

    def __init__(self) -> None:
        self.statuses: dict[str, int] = {}
        self.outcomes: dict[str | None, int] = {}
        self.ttfts: list[float] = []
        self.rates: list[float] = []
        self.durations: list[float] = []
        self.first: str | None = None
        self.last: str | None = None
        self.last_failure: tuple[str, int] | None = None
        """(started_at, rowid) of the newest failure."""

    def success(self, ttft: float | None, rate: float | None, duration: float | None) -> None:
        """Keep a successful run's metrics."""
        if ttft is not None:
            self.ttfts.append(ttft)
        if rate is not None:
            self.rates.append(rate)
        if duration is not None:
            self.durations.append(duration)

    def percentiles(self) -> dict[str, Percentiles]:
        """p50 / p95 of each metric, by :data:`METRICS` name."""
        return {
            "ttft_ms": Percentiles.of(self.ttfts),
            "tokens_per_s": Percentiles.of(self.rates),
            "duration_ms": Percentiles.of(self.durations),
        }


def normalize_since(since: str | dt.datetime | None) -> str | None:
    """``since`` as the stored ``started_at`` form (UTC, microseconds), so that it compares
    with the column as text; ValueError naming the value when it is not an ISO 8601 time.
    A naive time is taken as UTC."""
    if since is None:
        return None
    if isinstance(since, str):
        try:
            value = utc_time(since.strip())
        except ValueError:
            raise ValueError(
                f"{since!r} is not an ISO 8601 time (use tui.store.window.started_since)"
            ) from None
    else:
        value = since.replace(tzinfo=dt.UTC) if since.tzinfo is None else since
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _names(session: str | Collection[str] | None) -> list[str] | None:
    if session is None:
        return None
    return [session] if isinstance(session, str) else list(dict.fromkeys(session))


async def _select(source: Source, sql: str, params: Sequence[Any]) -> list[Any]:
    if isinstance(source, aiosqlite.Connection):
        try:
            return list(await source.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the runs: {exc}") from None
    return await source._query(sql, params)


async def _flush(source: Source) -> None:
    if not isinstance(source, aiosqlite.Connection):
        await source.flush()


def _where(names: list[str] | None, since: str | None, *more: str) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if names is not None:
        clauses.append(f"session_name IN ({', '.join('?' for _ in names)})")
        params += names
    if since is not None:
        clauses.append("started_at >= ?")
        params.append(since)
    clauses += more
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


async def _last_failures(source: Source, rowids: list[int]) -> dict[int, LastFailure]:
    found: dict[int, LastFailure] = {}
    for start in range(0, len(rowids), 500):
        chunk = rowids[start : start + 500]
        sql = _FAILURE_SQL.format(marks=", ".join("?" for _ in chunk))
        for rowid, run_id, started, status, reason, kind, http, message in await _select(
            source, sql, chunk
        ):
            found[rowid] = LastFailure(
                utc_time(started), run_id, status, reason, kind, http, one_line(message)
            )
    return found


def _session_stats(name: str, tally: _Tally, failure: LastFailure | None) -> SessionStats:
    s, o = tally.statuses, tally.outcomes
    successes, failures = o.get("success", 0), o.get("failure", 0)
    rated = successes + failures
    running = s.get("running", 0)
    return SessionStats(
        session=name,
        runs=sum(s.values()) - running,
        running=running,
        completed=s.get("completed", 0),
        incomplete=s.get("incomplete", 0),
        failed=s.get("failed", 0),
        cancelled=s.get("cancelled", 0),
        interrupted=s.get("interrupted", 0),
        successes=successes,
        failures=failures,
        success_rate=successes / rated if rated else None,
        last_failure=failure,
        first_run_at=utc_time(tally.first) if tally.first else None,
        last_run_at=utc_time(tally.last) if tally.last else None,
        **tally.percentiles(),
    )


async def session_stats(
    source: Source,
    *,
    session: str | Collection[str] | None = None,
    since: str | dt.datetime | None = None,
) -> list[SessionStats]:
    """Each session's figures over the runs that started at or after ``since``, sorted by
    session name.

    ``session`` (one name or several) limits the answer to those sessions, and each named
    session gets an entry even when the window holds none of its runs (all counts 0); without
    it, every session with a run in the window is listed. ``source`` is an open store or an
    aiosqlite connection; StoreError when the database cannot be read, ValueError for a
    ``since`` that is not a time.
    """
    names = _names(session)
    lower = normalize_since(since)
    if names is None and lower is not None:
        # one range of the (session_name, started_at) index per session, not a time range
        # of another index and a look-up of every row in the table
        where, params = _where(None, lower, f"session_name IN ({_ALL_SESSIONS})")
    else:
        where, params = _where(names, lower)
    await _flush(source)
    tallies: dict[str, _Tally] = {name: _Tally() for name in names or ()}
    rows = await _select(source, _ROWS_SQL + where, params)
    for name, started, rowid, status, kind, ttft, rate, duration in rows:
        tally = tallies.get(name)
        if tally is None:
            tally = tallies[name] = _Tally()
        statuses = tally.statuses
        statuses[status] = statuses.get(status, 0) + 1
        outcomes = tally.outcomes
        outcomes[kind] = outcomes.get(kind, 0) + 1
        if kind == "success":
            tally.success(ttft, rate, duration)
        elif kind == "failure" and (
            tally.last_failure is None or (started, rowid) > tally.last_failure
        ):
            tally.last_failure = (started, rowid)
        if tally.first is None or started < tally.first:
            tally.first = started
        if tally.last is None or started > tally.last:
            tally.last = started
    del rows
    newest = [t.last_failure[1] for t in tallies.values() if t.last_failure is not None]
    failures = await _last_failures(source, newest)
    return [
        _session_stats(name, t, failures.get(t.last_failure[1]) if t.last_failure else None)
        for name, t in sorted(tallies.items())
    ]


async def session_names(source: Source) -> list[str]:
    """Every session name with a stored run, sorted (from the session index alone)."""
    await _flush(source)
    rows = await _select(source, _ALL_SESSIONS + " ORDER BY 1", ())
    return [str(row[0]) for row in rows]


async def _first_started(source: Source, session: str) -> str | None:
    rows = await _select(
        source, "SELECT min(started_at) FROM runs WHERE session_name = ?", (session,)
    )
    return rows[0][0] if rows and rows[0][0] is not None else None


async def series(
    source: Source,
    session: str,
    *,
    since: str | dt.datetime | None = None,
    buckets: int = 120,
    now: dt.datetime | None = None,
) -> list[SeriesPoint]:
    """The session's runs from ``since`` (default: its first run) to ``now`` (default: the
    current time) cut into ``buckets`` equal time buckets, oldest first, for charts.

    A run falls in the bucket its ``started_at`` is in (to the millisecond: SQLite's
    ``julianday``). Empty buckets have ``runs = 0`` and None medians. Without ``since``, a
    session with no runs gives an empty list; so does a window that ends before it starts.
    Runs that started after ``now`` are left out; running runs are never counted.
    ValueError for ``buckets`` below 1 or a ``since`` that is not a time.
    """
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, not {buckets}")
    lower = normalize_since(since)
    end = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    await _flush(source)
    if lower is None:
        lower = await _first_started(source, session)
        if lower is None:
            return []
    start = utc_time(lower)
    if start >= end:
        return []
    width = (end - start) / buckets
    where, params = _where([session], lower, "started_at <= ?", "status <> 'running'")
    rows = await _select(
        source,
        _BUCKET_ROWS_SQL + where,
        [
            lower,
            width.total_seconds(),
            buckets - 1,
            *params,
            end.isoformat(timespec="microseconds"),
        ],
    )
    tallies = [_Tally() for _ in range(buckets)]
    for bucket, kind, ttft, rate, duration in rows:
        tally = tallies[max(bucket, 0)]
        tally.outcomes[kind] = tally.outcomes.get(kind, 0) + 1
        if kind == "success":
            tally.success(ttft, rate, duration)
    points = []
    for i, tally in enumerate(tallies):
        medians = tally.percentiles()
        points.append(
            SeriesPoint(
                start=start + width * i,
                end=end if i == buckets - 1 else start + width * (i + 1),
                runs=sum(tally.outcomes.values()),
                failures=tally.outcomes.get("failure", 0),
                ttft_p50_ms=medians["ttft_ms"].p50,
                tokens_per_s_p50=medians["tokens_per_s"].p50,
                duration_p50_ms=medians["duration_ms"].p50,
            )
        )
    return points
