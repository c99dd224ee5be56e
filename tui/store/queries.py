"""SQL for the store's queries (history filters, full-text search, run id prefixes)."""

from __future__ import annotations

import re
from typing import Any

from .records import SUMMARY_COLUMNS
from .rows import ATTEMPT_COLUMNS, RUN_COLUMNS

INSERT_EVENTS_JSON = (
    "INSERT INTO events(run, seq, t, kind, payload) "
    "SELECT value ->> 0, value ->> 1, coalesce(value ->> 2, 0.0), value ->> 3, value -> 4 "
    "FROM json_each(?)"
)
"""A whole batch of events in one statement: ``?`` is a JSON array of ``[run, seq, t, kind,
event]`` rows, which SQLite expands in C. One statement takes the GIL once per batch, where
``executemany`` re-takes it for every row (and, with the event loop busy, each re-take can
wait for the interpreter's 5 ms switch interval). JSON has no inf or nan: the encoder writes
them as null, so a time that was not finite is stored as 0 (and read back as 0.0 by
:func:`tui.store.codec.decode_event`)."""

UPDATE_RUN = "UPDATE runs SET " + ", ".join(f"{c} = ?" for c in RUN_COLUMNS) + " WHERE id = ?"

UPSERT_ATTEMPT = (
    f"INSERT INTO attempts(run, {', '.join(ATTEMPT_COLUMNS)}) "
    f"VALUES (?, {', '.join('?' for _ in ATTEMPT_COLUMNS)}) "
    "ON CONFLICT(run, number) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in ATTEMPT_COLUMNS if c != "number")
)

INSERT_SESSION = (
    "INSERT INTO sessions(name, config_json, config_hash, created_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT(config_hash) DO UPDATE SET name = excluded.name RETURNING id"
)

INSERT_RUN = (
    "INSERT INTO runs(run_id, session_id, session_name, api, model, prompt, started_at, "
    "writer_pid, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)

_LAST_T = (
    "(SELECT max(t) FROM (SELECT t FROM events WHERE events.run = runs.id "
    "UNION ALL SELECT last_t FROM deltas WHERE deltas.run = runs.id))"
)
"""The ``t`` of a run's last stored event (an event row or a compact delta)."""

MARK_INTERRUPTED = f"""
UPDATE runs SET
    status = 'interrupted',
    ended_s = COALESCE({_LAST_T}, ended_s),
    duration_ms = 1000.0 * COALESCE({_LAST_T}, ended_s)
WHERE status = 'running' AND owner IS ?
"""
"""Runs left ``running`` by the writer ``?`` (an owner token, or NULL for runs of a tokentop
from before owners): only for an owner known to be dead (:func:`tui.store.lock.owner_alive`)."""

RUNNING_OF_OWNER = (
    "SELECT id, run_id, session_name, api, model, prompt FROM runs "
    "WHERE status = 'running' AND owner IS ?"
)

RUNNING_OWNERS = "SELECT DISTINCT owner FROM runs WHERE status = 'running'"

SELECT_ATTEMPTS = (
    f"SELECT run, {', '.join(ATTEMPT_COLUMNS)} FROM attempts "
    "WHERE run IN ({marks}) ORDER BY run, number"
)
"""Attempts of several runs (``{marks}``: one ``?`` per run rowid)."""

INSERT_DELTAS = "INSERT INTO deltas(run, seq, kind, count, last_t, body) VALUES (?, ?, ?, ?, ?, ?)"

SELECT_EVENT_ROWS = "SELECT seq, kind, payload FROM events WHERE run = ? ORDER BY seq"
SELECT_DELTA_ROWS = "SELECT seq, kind, count, body FROM deltas WHERE run = ? ORDER BY seq"
"""A run's rows of ``events`` and of ``deltas`` (see :mod:`tui.store.compact`), by seq."""

DELETE_RAW_EVENTS = "DELETE FROM events WHERE run = ? AND kind = 'RawEvent'"
"""The raw events of a run that completed (``keep_raw_events = "failed"``)."""

INSERT_ALERT = (
    "INSERT INTO alerts(run, run_id, session_name, metric, value, threshold, message, at) "
    "VALUES ((SELECT id FROM runs WHERE run_id = ?1), ?1, ?2, ?3, ?4, ?5, ?6, ?7)"
)
"""One alert (``?1`` the run id: linked to its stored run, if any)."""

ALERT_COLUMNS = "run_id, session_name, metric, value, threshold, message, at"


def list_alerts_sql(*, session: str | None, since: str | None) -> tuple[str, list[Any]]:
    """SELECT of :data:`ALERT_COLUMNS` of the alerts matching the filters, oldest first."""
    where: list[str] = []
    params: list[Any] = []
    if session is not None:
        where.append("session_name = ?")
        params.append(session)
    if since is not None:
        where.append("at >= ?")
        params.append(since)
    sql = f"SELECT {ALERT_COLUMNS} FROM alerts"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY at, id", params


MIN_TRIGRAM = 3
"""The trigram tokenizer can only match terms of at least three characters."""


def _like_pattern(term: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", term) + "%"


def _fts_phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def list_runs_sql(
    *,
    search: str | None,
    session: str | None,
    model: str | None,
    finish: str | None,
    limit: int,
    since: str | None = None,
) -> tuple[str, list[Any]]:
    """SELECT of run summaries matching every given filter, newest first.

    ``search`` is split on whitespace; every term must occur (as a substring, case-insensitive
    for Latin letters) in the prompt, output or reasoning. Terms of three or more characters
    use the FTS5 trigram index of ended runs; shorter ones (a two-syllable Korean word such as
    ``서울``) and running runs, which are not indexed yet, fall back to ``LIKE``.
    ``finish`` matches the normalized finish reason or the status (``interrupted``).
    ``since`` (a ``started_at``, see :func:`tui.store.window.started_since`) keeps the runs
    that started then or later.
    """
    where: list[str] = []
    params: list[Any] = []
    for term in (search or "").split():
        like = _like_pattern(term)
        text_like = (
            "(r.prompt LIKE ? ESCAPE '\\' OR r.output_text LIKE ? ESCAPE '\\' "
            "OR r.reasoning_text LIKE ? ESCAPE '\\')"
        )
        if len(term) >= MIN_TRIGRAM:
            where.append(
                "(r.id IN (SELECT rowid FROM runs_fts WHERE runs_fts MATCH ?) "
                f"OR (r.status = 'running' AND {text_like}))"
            )
            params += [_fts_phrase(term), like, like, like]
        else:
            where.append(text_like)
            params += [like, like, like]
    if session is not None:
        where.append("r.session_name = ?")
        params.append(session)
    if model is not None:
        where.append("r.model = ?")
        params.append(model)
    if finish is not None:
        where.append("(r.finish_reason = ? OR r.status = ?)")
        params += [finish, finish]
    if since is not None:
        where.append("r.started_at >= ?")
        params.append(since)
    sql = f"SELECT {SUMMARY_COLUMNS}, r.id FROM runs AS r"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY r.started_at DESC, r.id DESC LIMIT ?"
    params.append(max(0, limit))
    return sql, params


def prefix_sql(prefix: str) -> tuple[str, list[Any]]:
    """SELECT of up to 6 (id, run_id) whose run id starts with ``prefix``, exact match first."""
    like = re.sub(r"([\\%_])", r"\\\1", prefix) + "%"
    return (
        "SELECT id, run_id FROM runs WHERE run_id LIKE ? ESCAPE '\\' "
        "ORDER BY run_id = ? DESC, run_id LIMIT 6",
        [like, prefix],
    )


DETAIL_SQL = (
    f"SELECT {SUMMARY_COLUMNS}, s.config_json, "
    "(SELECT count(*) FROM events WHERE events.run = r.id) "
    "+ (SELECT coalesce(sum(count), 0) FROM deltas WHERE deltas.run = r.id) "
    "FROM runs AS r JOIN sessions AS s ON s.id = r.session_id WHERE r.id = ?"
)


PRUNABLE_RUNS = (
    "SELECT id FROM runs WHERE started_at < ? AND status <> 'running' ORDER BY started_at LIMIT ?"
)
"""Up to ``?`` runs that started before ``?`` and have ended. A ``running`` run is never
pruned: its writer is alive (a dead writer's runs are marked ``interrupted`` when a writer
opens the database, and are prunable from then on)."""

DELETE_RUNS = "DELETE FROM runs WHERE id IN ({marks})"
"""Runs by rowid; their attempts, events, deltas and alerts go with them (``ON DELETE
CASCADE``), and their search entries (the ``runs_fts_deleted`` trigger)."""

DELETE_UNUSED_SESSIONS = "DELETE FROM sessions WHERE id NOT IN (SELECT session_id FROM runs)"
"""Config snapshots no run refers to any more (one pass: SQLite indexes the subquery once)."""

DELETE_OLD_LOOSE_ALERTS = "DELETE FROM alerts WHERE run IS NULL AND at < ?"
"""Alerts of runs that were never stored, older than ``?``."""
