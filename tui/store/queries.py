"""SQL for the store's queries (history filters, full-text search, run id prefixes)."""

from __future__ import annotations

import re
from typing import Any

from .records import conversation_columns, in_conversation, summary_columns
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

INSERT_RUN_EVENTS_JSON = (
    "INSERT INTO events(run, seq, t, kind, payload) "
    "SELECT ?1, value ->> 0, coalesce(value ->> 1, 0.0), value ->> 2, value -> 3 "
    "FROM json_each(?2)"
)
"""Events of one run (``?1``, its rowid) in one statement: ``?2`` is a JSON array of ``[seq,
t, kind, event]`` rows (a chunk of :class:`tui.store.raw_spill.RawSpill`)."""

UPDATE_RUN = "UPDATE runs SET " + ", ".join(f"{c} = ?" for c in RUN_COLUMNS) + " WHERE id = ?"

UPSERT_ATTEMPT = (
    f"INSERT INTO attempts(run, {', '.join(ATTEMPT_COLUMNS)}) "
    f"VALUES (?, {', '.join('?' for _ in ATTEMPT_COLUMNS)}) "
    "ON CONFLICT(run, number) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in ATTEMPT_COLUMNS if c != "number")
)

INSERT_SESSION_ROW = (
    "INSERT INTO sessions(name, config_json, config_hash, created_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT(config_hash) DO UPDATE SET name = excluded.name"
)
"""A session's config snapshot, stored once per distinct snapshot (by its hash)."""

INSERT_RUNS_JSON = (
    "INSERT INTO runs(run_id, session_id, session_name, api, model, prompt, started_at, "
    "writer_pid, owner, conversation_id, turn, broadcast_id) "
    "SELECT value ->> 0, (SELECT id FROM sessions WHERE config_hash = value ->> 1), "
    "value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, "
    "value ->> 8, value ->> 9, value ->> 10, value ->> 11 FROM json_each(?) WHERE true "
    "ON CONFLICT(run_id) DO NOTHING RETURNING id, run_id"
)
"""The runs a flush starts, in one statement: ``?`` is a JSON array of ``[run id, config
hash, session, api, model, prompt, started at, pid, owner, conversation id, turn, broadcast
id]`` rows
(each session's snapshot inserted first, :data:`INSERT_SESSION_ROW`). Gives the rowid of
each run stored; a run id already in the database is left as it is, and not returned."""

UPDATE_RUN_START = "UPDATE runs SET started_at = ? WHERE id = ?"
"""A run's start, stored before its first events told it (see ``ActiveRun.hear``)."""

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

RUNNING_OWNERS = (
    "SELECT owner FROM runs WHERE status = 'running' "
    "UNION SELECT owner FROM rounds WHERE status = 'running'"
)
"""The writers (owner tokens) with running runs or rounds."""

SELECT_ATTEMPTS = (
    f"SELECT run, {', '.join(ATTEMPT_COLUMNS)} FROM attempts "
    "WHERE run IN ({marks}) ORDER BY run, number"
)
"""Attempts of several runs (``{marks}``: one ``?`` per run rowid)."""

INSERT_DELTAS = "INSERT INTO deltas(run, seq, kind, count, last_t, body) VALUES (?, ?, ?, ?, ?, ?)"

SELECT_EVENT_ROWS_AFTER = (
    "SELECT seq, kind, payload FROM events WHERE run = ? AND seq > ? ORDER BY seq LIMIT ?"
)
SELECT_CHOSEN_ROWS_AFTER = (
    "SELECT seq, kind, payload FROM events WHERE run = ? AND seq > ? AND kind <> 'RawEvent' "
    "ORDER BY seq LIMIT ?"
)
SELECT_DELTA_ROWS_AFTER = (
    "SELECT seq, kind, count, body FROM deltas WHERE run = ? AND seq > ? ORDER BY seq LIMIT ?"
)
"""A run's next rows of ``events`` (all, or all but the raw events) and of ``deltas`` (see
:mod:`tui.store.compact`) after a seq, by seq, at most ``?`` of them."""

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


def run_filters(
    *,
    search: str | None,
    session: str | None,
    model: str | None,
    finish: str | None,
    since: str | None,
) -> tuple[list[str], list[Any]]:
    """The WHERE conditions (on ``runs AS r``) and parameters of the history filters.

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
    return where, params


def list_runs_sql(
    *,
    search: str | None,
    session: str | None,
    model: str | None,
    finish: str | None,
    limit: int,
    since: str | None = None,
    conversations: bool = True,
    truthful: bool = True,
) -> tuple[str, list[Any]]:
    """SELECT of run summaries matching every given filter (:func:`run_filters`), newest
    first (``conversations``, ``truthful``: see :func:`tui.store.records.summary_columns`)."""
    where, params = run_filters(
        search=search, session=session, model=model, finish=finish, since=since
    )
    sql = f"SELECT {summary_columns(conversations, truthful)}, r.id FROM runs AS r"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY r.started_at DESC, r.id DESC LIMIT ?"
    params.append(max(0, limit))
    return sql, params


def prefix_sql(prefix: str, *, rounds: bool = False) -> tuple[str, list[Any]]:
    """SELECT of up to 6 (id, run_id) whose run id starts with ``prefix``, exact match first
    (``rounds``: (id, round_id) of rounds)."""
    like = re.sub(r"([\\%_])", r"\\\1", prefix) + "%"
    table, column = ("rounds", "round_id") if rounds else ("runs", "run_id")
    return (
        f"SELECT id, {column} FROM {table} WHERE {column} LIKE ? ESCAPE '\\' "
        f"ORDER BY {column} = ? DESC, {column} LIMIT 6",
        [like, prefix],
    )


def detail_sql(where: str, *, conversations: bool = True, truthful: bool = True) -> str:
    """SELECT of :func:`~tui.store.records.summary_columns`, the config snapshot, the event
    count and the rowid of the runs (``runs AS r``) matching ``where``."""
    return (
        f"SELECT {summary_columns(conversations, truthful)}, s.config_json, "
        "(SELECT count(*) FROM events WHERE events.run = r.id) "
        "+ (SELECT coalesce(sum(count), 0) FROM deltas WHERE deltas.run = r.id), r.id "
        f"FROM runs AS r JOIN sessions AS s ON s.id = r.session_id WHERE {where}"
    )


PRUNABLE_RUNS = (
    "SELECT r.id FROM runs AS r WHERE r.started_at < ?1 AND r.status <> 'running' "
    "AND NOT EXISTS (SELECT 1 FROM runs AS later "
    f"WHERE {in_conversation(conversation_columns(True)[0], alias='later')} "
    "AND (later.started_at >= ?1 OR later.status = 'running')) "
    "ORDER BY r.started_at LIMIT ?2"
)
"""Up to ``?2`` runs that started before ``?1`` and have ended, of conversations that have
no run started since nor running: a conversation is pruned whole, once its last activity is
older than the cutoff. A ``running`` run is never pruned: its writer is alive (a dead
writer's runs are marked ``interrupted`` when a writer opens the database, and are prunable
from then on)."""

DELETE_RUNS = "DELETE FROM runs WHERE id IN ({marks})"
"""Runs by rowid; their attempts, events, deltas and alerts go with them (``ON DELETE
CASCADE``), and their search entries (the ``runs_fts_deleted`` trigger)."""

DELETE_UNUSED_SESSIONS = "DELETE FROM sessions WHERE id NOT IN (SELECT session_id FROM runs)"
"""Config snapshots no run refers to any more (one pass: SQLite indexes the subquery once)."""

DELETE_OLD_LOOSE_ALERTS = "DELETE FROM alerts WHERE run IS NULL AND at < ?"
"""Alerts of runs that were never stored, older than ``?``."""

DELETE_EMPTY_ROUNDS = (
    "DELETE FROM rounds WHERE started_at < ? AND status <> 'running' "
    "AND NOT EXISTS (SELECT 1 FROM round_runs WHERE round_runs.round = rounds.id)"
)
"""Ended rounds that started before ``?`` and have no run left (pruning took them)."""


# -- compare rounds (tui.store.rounds) -------------------------------------------------------

INSERT_ROUND = (
    "INSERT INTO rounds(round_id, started_at, prompt, count, run_order, sessions_json, owner) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"
)

END_ROUND = (
    "UPDATE rounds SET status = ?, ended_at = ?, prompt = ? WHERE id = ? AND status = 'running'"
)
"""A round's end (status, ended_at) and its prompt with every secret known by then blanked out."""

INSERT_ROUND_RUN = (
    "INSERT OR IGNORE INTO round_runs(run, round, session, number) "
    "SELECT r.id, o.id, ?3, ?4 FROM rounds AS o, runs AS r WHERE o.round_id = ?1 AND r.run_id = ?2"
)
"""A run of a round (``?1`` round id, ``?2`` run id, ``?3`` column, ``?4`` number), written by
the flush: nothing when either is not stored (recording had stopped), so it never fails."""

UPDATE_ROUND_PROMPT = "UPDATE rounds SET prompt = ? WHERE round_id = ?"

INTERRUPT_OWN_ROUNDS = (
    "UPDATE rounds SET status = 'interrupted', ended_at = ? WHERE owner = ? AND status = 'running'"
)
"""The rounds a writer closes without ending them."""

RUNNING_ROUNDS_OF_OWNER = (
    "SELECT id, started_at FROM rounds WHERE status = 'running' AND owner IS ?"
)

ROUND_RUN_ENDS = (
    "SELECT r.started_at, r.ended_s FROM round_runs AS rr JOIN runs AS r ON r.id = rr.run "
    "WHERE rr.round = ?"
)

MARK_ROUND_INTERRUPTED = "UPDATE rounds SET status = 'interrupted', ended_at = ? WHERE id = ?"

ROUND_COLUMNS = (
    "o.round_id, o.started_at, o.ended_at, o.prompt, o.count, o.run_order, o.status, "
    "o.sessions_json"
)
"""The ``rounds`` columns (alias ``o``) that :func:`tui.store.records.round_record` reads."""

SELECT_ROUND = f"SELECT {ROUND_COLUMNS}, o.id FROM rounds AS o WHERE o.id = ?"

SELECT_ROUND_RUNS = (
    "SELECT rr.round, rr.session, rr.number, r.run_id FROM round_runs AS rr "
    "JOIN runs AS r ON r.id = rr.run WHERE rr.round IN ({marks}) ORDER BY rr.round, rr.run"
)
"""The runs of several rounds (``{marks}``: one ``?`` per round rowid), in the order they
started."""


def list_rounds_sql(*, limit: int, since: str | None) -> tuple[str, list[Any]]:
    """SELECT of :data:`ROUND_COLUMNS` and the rowid of the rounds that started at ``since``
    (a ``started_at``) or later, newest first."""
    sql = f"SELECT {ROUND_COLUMNS}, o.id FROM rounds AS o"
    params: list[Any] = []
    if since is not None:
        sql += " WHERE o.started_at >= ?"
        params.append(since)
    params.append(max(0, limit))
    return sql + " ORDER BY o.started_at DESC, o.id DESC LIMIT ?", params
