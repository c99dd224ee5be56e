"""What the store's conversation queries return: frozen dataclasses (no SQL rows leave
``tui/store``), and which run of a turn is the turn's answer.

A conversation is the runs that share a conversation id, each a turn of it (from 1). Several
runs may be one turn: a failed or cancelled try that was sent again, or an edited prompt
sent again (``e``), whose earlier answer stays in the store. The turn's answer is its latest
run that completed or was cut (the runs the session layer keeps as turns of the dialogue),
else its latest run; the others are its branches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .records import RunDetail

__all__ = [
    "ANSWERED_STATUSES",
    "MAX_CONVERSATION_ID",
    "ConversationRecord",
    "ConversationSummary",
    "ConversationTurn",
    "checked_turn",
    "conversation_fields",
    "turns_of",
]

ANSWERED_STATUSES = frozenset({"completed", "incomplete"})
"""Run statuses whose answer is a turn of the dialogue (completed, or cut: what the model
said is part of the conversation, also when it was cut)."""

MAX_CONVERSATION_ID = 200
"""The longest conversation id accepted (tokentop's own are 32 hex digits)."""

MAX_TURN = 1_000_000
"""The highest turn number accepted."""


def checked_turn(conversation_id: str | None, turn: int) -> tuple[str | None, int]:
    """``(conversation_id, turn)`` as :meth:`~tui.store.store.Store.start_run` takes them,
    checked: an id is a non-empty string without surrounding blanks of at most
    :data:`MAX_CONVERSATION_ID` characters (None: the run's own), a turn a whole number from
    1. Raises ``ValueError`` naming what is wrong."""
    if conversation_id is not None:
        if not isinstance(conversation_id, str) or not conversation_id.strip():
            raise ValueError("a conversation id must be a non-empty string (or None)")
        if conversation_id != conversation_id.strip() or len(conversation_id) > MAX_CONVERSATION_ID:
            raise ValueError(
                f"conversation id {conversation_id[:40]!r} has blanks around it or is longer "
                f"than {MAX_CONVERSATION_ID} characters"
            )
    if isinstance(turn, bool) or not isinstance(turn, int) or not 1 <= turn <= MAX_TURN:
        raise ValueError(f"turn {turn!r} is not a whole number from 1 to {MAX_TURN:,}")
    return conversation_id, turn


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """One stored conversation, for lists (``tokentop history``): who, when, how long."""

    id: str
    """The conversation id (a one-turn conversation of its own has its run's id)."""
    session: str
    """The session of its first run."""
    model: str
    """The model of its first run."""
    started_at: datetime
    """When its first run started (timezone-aware UTC)."""
    ended_at: datetime | None
    """When its last run ended; None while its latest run is running."""
    last_at: datetime
    """Its last activity: when its latest run started (lists are ordered by it)."""
    turns: int
    """Distinct turn numbers."""
    runs: int
    """Runs, branches included."""
    first_prompt: str
    """The prompt of its first turn's first run."""
    last_status: str
    """The status of its latest run."""
    last_run_id: str
    """Its latest run."""


@dataclass(frozen=True, slots=True)
class ConversationTurn:
    """One turn: its answer (``run``) and the other runs of the same turn."""

    turn: int
    run: RunDetail
    """The turn's latest run that completed or was cut, else its latest run."""
    branches: tuple[RunDetail, ...] = ()
    """The turn's other runs (earlier answers of an edit, failed tries), oldest first."""

    @property
    def tries(self) -> list[tuple[RunDetail, bool]]:
        """Every run of the turn in the order they started, each with whether it is a
        branch (False: the turn's answer)."""
        runs = [(self.run, False), *((b, True) for b in self.branches)]
        return sorted(runs, key=lambda pair: (pair[0].started_at, pair[0].run_id))


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    """A stored conversation with every run, turn by turn."""

    id: str
    session: str
    """The session of its first run."""
    model: str
    """The model of its first run."""
    turns: tuple[ConversationTurn, ...]
    """Ordered by turn number."""

    @property
    def runs(self) -> Iterator[RunDetail]:
        """Every run, turn by turn, each turn's answer first and then its branches."""
        for turn in self.turns:
            yield turn.run
            yield from turn.branches

    def turn_of(self, run_id: str) -> tuple[ConversationTurn, bool] | None:
        """The turn the run ``run_id`` belongs to and whether it is a branch of it (None:
        not a run of this conversation)."""
        for turn in self.turns:
            if turn.run.run_id == run_id:
                return turn, False
            if any(b.run_id == run_id for b in turn.branches):
                return turn, True
        return None


def turns_of(runs: Iterable[RunDetail]) -> tuple[ConversationTurn, ...]:
    """The runs of one conversation as its turns, ordered by turn number; each turn's runs
    are taken in the order given (the order they started)."""
    by_turn: dict[int, list[RunDetail]] = {}
    for run in runs:
        by_turn.setdefault(run.turn, []).append(run)
    turns = []
    for number in sorted(by_turn):
        tries = by_turn[number]
        answered = [r for r in tries if r.status in ANSWERED_STATUSES]
        main = (answered or tries)[-1]
        turns.append(ConversationTurn(number, main, tuple(r for r in tries if r is not main)))
    return tuple(turns)


def summary_of(cid: str, rows: Sequence[tuple[Any, ...]], prompt: str) -> ConversationSummary:
    """The summary of conversation ``cid`` from its runs' rows (run id, session, model,
    started_at, ended_s, status, turn; by turn and start, see
    ``tui.store.queries.conversation_runs_sql``) and its first prompt."""
    started = [datetime.fromisoformat(row[3]) for row in rows]
    latest = max(range(len(rows)), key=lambda i: started[i])
    ended_at: datetime | None = None
    if rows[latest][5] != "running":
        ends = [
            s + timedelta(seconds=row[4])
            for s, row in zip(started, rows, strict=True)
            if row[4] is not None
        ]
        ended_at = max([*ends, started[latest]])
    return ConversationSummary(
        id=cid,
        session=rows[0][1],
        model=rows[0][2],
        started_at=min(started),
        ended_at=ended_at,
        last_at=started[latest],
        turns=len({row[6] for row in rows}),
        runs=len(rows),
        first_prompt=prompt,
        last_status=rows[latest][5],
        last_run_id=rows[latest][0],
    )


def conversation_fields(summary: ConversationSummary) -> dict[str, Any]:
    """The summary as plain JSON values (``tokentop history --json``): times as ISO 8601
    UTC, as in the run records."""

    def iso(when: datetime | None) -> str | None:
        return None if when is None else when.isoformat()

    return {
        "conversation_id": summary.id,
        "session": summary.session,
        "model": summary.model,
        "started_at": iso(summary.started_at),
        "ended_at": iso(summary.ended_at),
        "last_at": iso(summary.last_at),
        "turns": summary.turns,
        "runs": summary.runs,
        "first_prompt": summary.first_prompt,
        "last_status": summary.last_status,
        "last_run_id": summary.last_run_id,
    }
