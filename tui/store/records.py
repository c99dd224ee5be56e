"""What the store's queries return: frozen dataclasses (no SQL rows leave ``tui/store``).

A run's attempts, tool calls and errors are the stream layer's own types
(:class:`~tui.stream.result.AttemptRecord`, :class:`~tui.stream.result.ToolCall`,
:class:`~tui.stream.events.RunError`): one model of each, live and stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tui.stream.events import RunError
from tui.stream.result import AttemptRecord, ToolCall, build_result
from tui.vocab import StoredStatus

__all__ = [
    "AttemptRecord",
    "PruneResult",
    "RoundRecord",
    "RoundRun",
    "RunDetail",
    "RunSummary",
    "StoredAlert",
    "StoredStatus",
    "alert_record",
    "attempt_record",
    "result_record",
    "round_fields",
    "round_record",
    "summary_columns",
    "summary_fields",
]


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One stored run: identity, outcome, usage, metrics, text and attempts."""

    run_id: str
    session: str
    api: str
    model: str
    prompt: str
    started_at: datetime
    """Wall-clock start, timezone-aware UTC."""
    status: StoredStatus
    finish_reason: str | None
    raw_finish_reason: str | None
    first_token_s: float | None
    ended_s: float | None
    input_tokens: int | None
    output_tokens: int | None
    reasoning_tokens: int | None
    cached_tokens: int | None
    total_tokens: int | None
    tokens_estimated: bool
    ttft_ms: float | None
    duration_ms: float | None
    tokens_per_s: float | None
    itl_p50_ms: float | None
    itl_p95_ms: float | None
    itl_p99_ms: float | None
    chunks: int
    attempts: int
    resumes: int
    error: RunError | None
    response_id: str | None
    request_id: str | None
    output_text: str
    reasoning_text: str
    tool_calls: tuple[ToolCall, ...]
    conversation_id: str
    """The conversation the run is a turn of (its own run id for a one-turn conversation
    of its own, as every run written before conversations is)."""
    turn: int
    """Its turn in that conversation, from 1 (several runs may share one: retries, edits)."""
    tpot_ms: float | None
    """Time per output token (None: the tokens are chunks, or a run stored before it was
    kept). ``itl_p*_ms`` are the inter-chunk latencies."""
    tokens_source: str | None
    """What ``output_tokens`` and ``tokens_per_s`` count: ``usage``, ``estimated`` or
    ``chunks`` (None: stored before it was kept; see :attr:`counted`)."""
    client_lag_p99_ms: float | None
    """tokentop's own event-loop lag during the run, p99 (None: unknown)."""
    client_bound: bool | None
    """True when that lag passed the bound: the run's timing may be the client's (None:
    unknown, a run stored before it was measured or recorded without a session)."""
    attempt_records: tuple[AttemptRecord, ...] = ()

    @property
    def counted(self) -> str:
        """What the output tokens count: the stored ``tokens_source``, or for a run stored
        before it was kept what its figures say (as the result record infers it)."""
        if self.tokens_source is not None:
            return self.tokens_source
        if not self.tokens_estimated:
            return "usage"
        return "chunks" if self.output_tokens == self.chunks else "estimated"


@dataclass(frozen=True, slots=True)
class RunDetail(RunSummary):
    """A run with its session's config snapshot and its event count."""

    config: Mapping[str, Any] = field(default_factory=dict)
    """The session settings as used (secrets removed)."""
    event_count: int = 0


def conversation_columns(conversations: bool, alias: str = "r") -> tuple[str, str]:
    """The SQL of a run's conversation id and turn (table alias ``alias``): from the schema-6
    columns, or for an older database read as it is (``conversations`` False), the run's own
    id and 1. The id is ``conversation_id``, NULL for a one-turn conversation of its own,
    whose id is the run's (to find a conversation's runs, see
    ``tui.store.queries.in_conversation``)."""
    if not conversations:
        return f"{alias}.run_id", "1"
    return f"coalesce({alias}.conversation_id, {alias}.run_id)", f"{alias}.turn"


def in_conversation(cid: str, *, alias: str = "r", conversations: bool = True) -> str:
    """The condition that the run ``alias`` belongs to the conversation ``cid`` (an SQL
    expression): its ``conversation_id`` is ``cid``, or it has none and is ``cid`` itself.
    Written so that SQLite answers each half from an index (``runs_by_conversation``, the
    run ids'), where ``coalesce(conversation_id, run_id) = cid`` would read every row."""
    if not conversations:
        return f"{alias}.run_id = {cid}"
    return (
        f"({alias}.conversation_id = {cid} "
        f"OR ({alias}.conversation_id IS NULL AND {alias}.run_id = {cid}))"
    )


def summary_columns(conversations: bool = True, truthful: bool = True) -> str:
    """The ``runs`` columns (alias ``r``) that :func:`summary_fields` reads, in its order
    (``conversations``: see :func:`conversation_columns`; ``truthful``: the database has
    the schema-7 columns, else they read as NULL)."""
    key, turn = conversation_columns(conversations)
    measured = _TRUTHFUL_COLUMNS if truthful else "NULL, NULL, NULL, NULL"
    return f"{_SUMMARY_COLUMNS}, {key}, {turn}, {measured}"


_TRUTHFUL_COLUMNS = "r.tpot_ms, r.tokens_source, r.client_lag_p99_ms, r.client_bound"


_SUMMARY_COLUMNS = (
    "r.run_id, r.session_name, r.api, r.model, r.prompt, r.started_at, r.status, "
    "r.finish_reason, r.raw_finish_reason, r.first_token_s, r.ended_s, r.input_tokens, "
    "r.output_tokens, r.reasoning_tokens, r.cached_tokens, r.total_tokens, "
    "r.tokens_estimated, r.ttft_ms, r.duration_ms, r.tokens_per_s, r.itl_p50_ms, "
    "r.itl_p95_ms, r.itl_p99_ms, r.chunks, r.attempts, r.resumes, r.error_kind, "
    "r.error_status, r.error_message, r.error_code, r.response_id, r.request_id, "
    "r.output_text, r.reasoning_text, r.tool_calls_json"
)


def summary_fields(row: tuple[Any, ...]) -> dict[str, Any]:
    """Keyword arguments of :class:`RunSummary` from a row of :func:`summary_columns`."""
    (
        run_id, session, api, model, prompt, started_at, status, finish, raw_finish,
        first_token_s, ended_s, input_tokens, output_tokens, reasoning_tokens, cached_tokens,
        total_tokens, estimated, ttft, duration, tps, p50, p95, p99, chunks, attempts,
        resumes, err_kind, err_status, err_message, err_code, response_id, request_id,
        output_text, reasoning_text, tool_calls_json, conversation_id, turn, tpot, source,
        lag_p99, bound,
    ) = row  # fmt: skip
    calls = tuple(
        ToolCall(c.get("index", i), c.get("call_id"), c.get("name"), c.get("arguments", ""))
        for i, c in enumerate(json.loads(tool_calls_json or "[]"))
    )
    return {
        "run_id": run_id,
        "session": session,
        "api": api,
        "model": model,
        "prompt": prompt,
        "started_at": datetime.fromisoformat(started_at),
        "status": status,
        "finish_reason": finish,
        "raw_finish_reason": raw_finish,
        "first_token_s": first_token_s,
        "ended_s": ended_s,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "reasoning_tokens": reasoning_tokens,
        "cached_tokens": cached_tokens,
        "total_tokens": total_tokens,
        "tokens_estimated": bool(estimated),
        "ttft_ms": ttft,
        "duration_ms": duration,
        "tokens_per_s": tps,
        "itl_p50_ms": p50,
        "itl_p95_ms": p95,
        "itl_p99_ms": p99,
        "chunks": chunks,
        "attempts": attempts,
        "resumes": resumes,
        "error": (
            RunError(err_kind, err_message or "", err_status, code=err_code) if err_kind else None
        ),
        "response_id": response_id,
        "request_id": request_id,
        "output_text": output_text,
        "reasoning_text": reasoning_text,
        "tool_calls": calls,
        "conversation_id": conversation_id,
        "turn": turn,
        "tpot_ms": tpot,
        "tokens_source": source,
        "client_lag_p99_ms": lag_p99,
        "client_bound": None if bound is None else bool(bound),
    }


def attempt_record(row: tuple[Any, ...]) -> AttemptRecord:
    """An attempt from a row of ``attempts`` columns (``tui.store.rows.ATTEMPT_COLUMNS``)."""
    (
        number, at_s, mode, http_status, request_id, cause_kind, cause_status, cause_message,
        after_sequence, last_event_id, output_text, reasoning_text,
    ) = row  # fmt: skip
    return AttemptRecord(
        number=number,
        at_s=at_s,
        mode=mode,
        http_status=http_status,
        request_id=request_id,
        cause=RunError(cause_kind, cause_message or "", cause_status) if cause_kind else None,
        after_sequence=after_sequence,
        last_event_id=last_event_id,
        output_text=output_text,
        reasoning_text=reasoning_text,
    )


def result_record(run: RunSummary) -> dict[str, Any]:
    """The run as a ``tokentop run --jsonl`` result record (a session run's, with
    ``client_lag_p99_ms`` and ``client_bound``: None when unknown) plus ``started_at``,
    ``conversation_id`` and ``turn``.

    Built by the same :func:`~tui.stream.result.build_result` as
    :meth:`RunAccumulator.result`; for runs that never finished, ``status`` is ``running``
    or ``interrupted``. ``tpot_ms`` is the record's own formula over the stored figures, so
    a run stored before it was kept gets it too.
    """
    record = build_result(
        session=run.session,
        run_id=run.run_id,
        api=run.api,
        model=run.model,
        status=run.status,
        finish_reason=run.finish_reason,
        raw_finish_reason=run.raw_finish_reason,
        output_text=run.output_text,
        reasoning_text=run.reasoning_text,
        tool_calls=run.tool_calls,
        input_tokens=run.input_tokens,
        output_tokens=run.output_tokens,
        tokens_estimated=run.tokens_estimated,
        chunks=run.chunks,
        ttft_ms=run.ttft_ms,
        duration_ms=run.duration_ms,
        tokens_per_s=run.tokens_per_s,
        itl_ms=(run.itl_p50_ms, run.itl_p95_ms, run.itl_p99_ms),
        attempts=run.attempt_records,
        resumes=run.resumes,
        error=run.error,
        tokens_source=run.counted,
    )
    record["client_lag_p99_ms"] = run.client_lag_p99_ms
    record["client_bound"] = run.client_bound
    record["started_at"] = run.started_at.isoformat()
    record["conversation_id"] = run.conversation_id
    record["turn"] = run.turn
    return record


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """One stored alert: which run of which session crossed which threshold, and when."""

    session: str
    run_id: str
    metric: str
    """The rule that fired (its key in the sessions file, e.g. ``ttft_ms``)."""
    value: float | None
    """What the run measured (None when not a number, e.g. for ``on_failure``)."""
    threshold: float | None
    """The configured bound (None when the rule has none)."""
    message: str
    at: datetime
    """When it was raised: wall clock, timezone-aware UTC."""


def alert_record(row: tuple[Any, ...]) -> StoredAlert:
    """An alert from a row of ``tui.store.queries.ALERT_COLUMNS``."""
    run_id, session, metric, value, threshold, message, at = row
    return StoredAlert(
        session=session,
        run_id=run_id,
        metric=metric,
        value=value,
        threshold=threshold,
        message=message,
        at=datetime.fromisoformat(at),
    )


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What :meth:`tui.store.store.Store.prune` removed, and the file's size around it."""

    runs: int
    """Runs deleted (with their attempts, events, alerts and search entries)."""
    bytes_before: int
    """The database file plus its write-ahead log before, in bytes (after a checkpoint)."""
    bytes_after: int
    """The same after (it shrinks only with ``vacuum``)."""
    free_before: int
    """Bytes of free pages inside the file before (space SQLite reuses for new rows)."""
    free_after: int
    """The same after. Without ``vacuum`` the pruned runs' space stays in the file: whole
    pages they emptied count here, and the room left in pages they shared with other rows is
    reused too (it counts nowhere)."""

    @property
    def freed_bytes(self) -> int:
        """Bytes given back to the disk (``bytes_before - bytes_after``; with ``vacuum``)."""
        return max(0, self.bytes_before - self.bytes_after)


@dataclass(frozen=True, slots=True)
class RoundRun:
    """One run of a compare round: the ``index``-th (from 1) run of the column ``session``."""

    session: str
    index: int
    run_id: str


@dataclass(frozen=True, slots=True)
class RoundRecord:
    """A stored compare round: one prompt sent ``count`` times to each of ``sessions``."""

    id: str
    """tokentop's round id (a unique prefix finds it, see ``Store.get_round``)."""
    started_at: float
    """Wall-clock start, Unix seconds."""
    ended_at: float | None
    """When it ended (Unix seconds); None while running. An interrupted round (its writer
    died) ended when its last stored run did."""
    prompt: str
    count: int
    """Runs per column."""
    order: str
    """How the columns took turns (the runner's word for it, e.g. ``interleaved``)."""
    status: str
    """``running`` until ended, then ``done``, ``cancelled`` or ``failed`` (as the runner
    ended it) or ``interrupted`` (its writer died, or closed without ending it)."""
    sessions: tuple[str, ...]
    """The columns' session names, in the order given."""
    runs: tuple[RoundRun, ...]
    """Its stored runs, in the order they started (pruned runs are gone from it)."""


def _unix(iso: str | None) -> float | None:
    return None if iso is None else datetime.fromisoformat(iso).timestamp()


def round_record(row: tuple[Any, ...], runs: Sequence[RoundRun]) -> RoundRecord:
    """A round from a row of ``tui.store.queries.ROUND_COLUMNS`` (its rowid left out) and
    its runs."""
    round_id, started_at, ended_at, prompt, count, order, status, sessions_json = row
    return RoundRecord(
        id=round_id,
        started_at=datetime.fromisoformat(started_at).timestamp(),
        ended_at=_unix(ended_at),
        prompt=prompt,
        count=count,
        order=order,
        status=status,
        sessions=tuple(json.loads(sessions_json)),
        runs=tuple(runs),
    )


def round_fields(record: RoundRecord) -> dict[str, Any]:
    """The round as plain JSON values (``tokentop history --rounds --json``): times as ISO
    8601 UTC, as in the run records."""

    def iso(t: float | None) -> str | None:
        return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()

    return {
        "round_id": record.id,
        "started_at": iso(record.started_at),
        "ended_at": iso(record.ended_at),
        "status": record.status,
        "prompt": record.prompt,
        "count": record.count,
        "order": record.order,
        "sessions": list(record.sessions),
        "runs": [{"session": r.session, "index": r.index, "run_id": r.run_id} for r in record.runs],
    }
