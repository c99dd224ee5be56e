"""SQL of the conversation queries (:mod:`tui.store.conversations`): the latest
conversations, a conversation's runs, and what an id or prefix names."""

from __future__ import annotations

from typing import Any

from .queries import detail_sql, run_filters
from .records import conversation_columns, in_conversation

ACTIVITY_SQL = "SELECT {key}, r.started_at FROM runs AS r{since} ORDER BY r.started_at DESC"
"""Every run's conversation and start, the latest first, from the end of
``runs_by_activity`` (``{key}``: :func:`~tui.store.records.conversation_columns`'; ``{since}``:
empty, or a bound on ``started_at``): the latest conversations are the first distinct ones."""


def conversations_sql(
    *,
    search: str | None,
    session: str | None,
    model: str | None,
    finish: str | None,
    since: str | None,
    limit: int,
    conversations: bool = True,
) -> tuple[str, list[Any]]:
    """SELECT of (conversation id, last activity) of the conversations with a run that
    matches every given filter (:func:`run_filters`: ``search`` finds the text of any turn),
    the latest activity (the last run's ``started_at``) first: only the matching
    conversations' runs are read, through the indexes of :func:`in_conversation`. (Without
    filters, walking :data:`ACTIVITY_SQL` is cheaper.)"""
    key, _ = conversation_columns(conversations)
    where, params = run_filters(
        search=search, session=session, model=model, finish=finish, since=since
    )
    matched = f"SELECT {key} FROM runs AS r WHERE {' AND '.join(where) or '1'}"
    mine = "r.run_id IN matched"
    if conversations:
        mine = f"(r.conversation_id IN matched OR (r.conversation_id IS NULL AND {mine}))"
    sql = (
        f"WITH matched AS MATERIALIZED ({matched}) "
        f"SELECT {key} AS cid, max(r.started_at) AS last FROM runs AS r WHERE {mine} "
        "GROUP BY cid ORDER BY last DESC, cid DESC LIMIT ?"
    )
    return sql, [*params, max(0, limit)]


def conversation_runs_sql(count: int, *, conversations: bool = True) -> str:
    """SELECT of (conversation id, run id, session, model, started_at, ended_s, status, turn)
    of the runs of ``count`` conversations (``?1`` to ``?count``), by conversation, turn and
    start."""
    marks = ", ".join(f"?{i}" for i in range(1, count + 1))
    columns = "r.run_id, r.session_name, r.model, r.started_at, r.ended_s, r.status"
    own = (
        f"SELECT r.run_id, {columns}, {conversation_columns(conversations)[1]}, r.id FROM runs AS r"
    )
    if not conversations:
        sql = f"{own} WHERE r.run_id IN ({marks})"
    else:
        sql = (
            f"SELECT r.conversation_id, {columns}, r.turn, r.id FROM runs AS r "
            f"WHERE r.conversation_id IN ({marks}) "
            f"UNION ALL {own} WHERE r.conversation_id IS NULL AND r.run_id IN ({marks})"
        )
    return f"SELECT * FROM ({sql}) ORDER BY 1, 8, 5, 9"


def prompts_sql(count: int) -> str:
    """SELECT of (run id, prompt) of ``count`` runs (one ``?`` each)."""
    marks = ", ".join("?" for _ in range(count))
    return f"SELECT run_id, prompt FROM runs WHERE run_id IN ({marks})"


def conversation_lookup_sql(conversations: bool = True) -> dict[str, str]:
    """The SELECTs that find what an id or prefix names, each answered from an index:
    ``conversation`` (1 when ``?`` is a conversation id), ``run`` (the conversation of the
    run ``?``), and up to 6 distinct conversation ids starting with ``?1`` (``?2``: ``?1``
    followed by the highest character) among the conversations' (``conversations``) and
    among the runs' ids (``runs``)."""
    key, _ = conversation_columns(conversations)
    found = {
        "conversation": (
            "SELECT 1 FROM runs AS r WHERE r.run_id = ?1"
            if not conversations
            else "SELECT 1 FROM runs AS r WHERE r.conversation_id = ?1 UNION ALL "
            "SELECT 1 FROM runs AS r WHERE r.run_id = ?1 AND r.conversation_id IS NULL"
        ),
        "run": f"SELECT {key} FROM runs AS r WHERE r.run_id = ?",
        "runs": (
            f"SELECT DISTINCT {key} FROM runs AS r WHERE r.run_id >= ?1 AND r.run_id < ?2 LIMIT 6"
        ),
    }
    found["conversations"] = (
        "SELECT DISTINCT r.conversation_id FROM runs AS r "
        "WHERE r.conversation_id >= ?1 AND r.conversation_id < ?2 LIMIT 6"
        if conversations
        else found["runs"]
    )
    return found


def conversation_detail_sql(*, conversations: bool = True, truthful: bool = True) -> str:
    """:func:`detail_sql` of the runs of the conversation ``?1``, by turn and start."""
    _, turn = conversation_columns(conversations)
    where = in_conversation("?1", conversations=conversations)
    detail = detail_sql(where, conversations=conversations, truthful=truthful)
    return detail + f" ORDER BY {turn}, r.started_at, r.id"
