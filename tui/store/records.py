"""What the store's queries return: frozen dataclasses (no SQL rows leave ``tui/store``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeAlias

StoredStatus: TypeAlias = Literal[
    "running", "interrupted", "completed", "incomplete", "failed", "cancelled"
]
"""A run's status in the store: a :data:`tui.stream.events.RunStatus` once it ended,
``running`` while it streams, ``interrupted`` when its process died or closed mid-run."""


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """One tool call of a run, its argument fragments joined."""

    index: int
    call_id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """Why a run failed."""

    kind: str
    message: str
    http_status: int | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt (one request) of a run."""

    number: int
    at_s: float
    """Offset of the attempt's request, in seconds since the run started."""
    mode: str | None
    """How it continued the run: ``retry``, ``resume`` or ``restart`` (None for the first)."""
    http_status: int | None
    request_id: str | None
    cause: ErrorRecord | None
    """Why this attempt ended early (None when it carried the run to its end)."""
    resumed_after: int | None
    """Responses sequence number this attempt resumed after."""
    last_event_id: str | None
    """SSE ``Last-Event-ID`` this attempt resumed after (instead of a sequence number)."""
    output_text: str | None = None
    """The partial output this attempt produced before a restart gave it up."""
    reasoning_text: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The attempt as in the ``run --jsonl`` result record."""
        cause = self.cause
        return {
            "number": self.number,
            "http_status": self.http_status,
            "cause": None
            if cause is None
            else {"kind": cause.kind, "status": cause.http_status, "message": cause.message},
            "resumed_after": self.resumed_after
            if self.resumed_after is not None
            else self.last_event_id,
            "output_text": self.output_text,
        }


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
    error: ErrorRecord | None
    response_id: str | None
    request_id: str | None
    output_text: str
    reasoning_text: str
    tool_calls: tuple[ToolCallRecord, ...]
    attempt_records: tuple[AttemptRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class RunDetail(RunSummary):
    """A run with its session's config snapshot and its event count."""

    config: Mapping[str, Any] = field(default_factory=dict)
    """The session settings as used (secrets removed)."""
    event_count: int = 0


SUMMARY_COLUMNS = (
    "r.run_id, r.session_name, r.api, r.model, r.prompt, r.started_at, r.status, "
    "r.finish_reason, r.raw_finish_reason, r.first_token_s, r.ended_s, r.input_tokens, "
    "r.output_tokens, r.reasoning_tokens, r.cached_tokens, r.total_tokens, "
    "r.tokens_estimated, r.ttft_ms, r.duration_ms, r.tokens_per_s, r.itl_p50_ms, "
    "r.itl_p95_ms, r.itl_p99_ms, r.chunks, r.attempts, r.resumes, r.error_kind, "
    "r.error_status, r.error_message, r.error_code, r.response_id, r.request_id, "
    "r.output_text, r.reasoning_text, r.tool_calls_json"
)
"""The ``runs`` columns (alias ``r``) that :func:`summary_fields` reads, in its order."""


def summary_fields(row: tuple[Any, ...]) -> dict[str, Any]:
    """Keyword arguments of :class:`RunSummary` from a row of :data:`SUMMARY_COLUMNS`."""
    (
        run_id, session, api, model, prompt, started_at, status, finish, raw_finish,
        first_token_s, ended_s, input_tokens, output_tokens, reasoning_tokens, cached_tokens,
        total_tokens, estimated, ttft, duration, tps, p50, p95, p99, chunks, attempts,
        resumes, err_kind, err_status, err_message, err_code, response_id, request_id,
        output_text, reasoning_text, tool_calls_json,
    ) = row  # fmt: skip
    calls = tuple(
        ToolCallRecord(c.get("index", i), c.get("call_id"), c.get("name"), c.get("arguments", ""))
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
            ErrorRecord(err_kind, err_message or "", err_status, err_code) if err_kind else None
        ),
        "response_id": response_id,
        "request_id": request_id,
        "output_text": output_text,
        "reasoning_text": reasoning_text,
        "tool_calls": calls,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def result_record(run: RunSummary) -> dict[str, Any]:
    """The run as a ``tokentop run --jsonl`` result record plus ``started_at``.

    The keys, shapes and rounding are those of :meth:`RunAccumulator.result`; for runs that
    never finished, ``status`` is ``running`` or ``interrupted``.
    """
    error = run.error
    return {
        "session": run.session,
        "run_id": run.run_id,
        "api": run.api,
        "model": run.model,
        "status": run.status,
        "finish_reason": run.finish_reason,
        "raw_finish_reason": run.raw_finish_reason,
        "output_text": run.output_text,
        "reasoning_text": run.reasoning_text,
        "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in run.tool_calls],
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "tokens_estimated": run.tokens_estimated,
        "chunks": run.chunks,
        "ttft_ms": _round(run.ttft_ms),
        "duration_ms": _round(run.duration_ms),
        "tokens_per_s": _round(run.tokens_per_s),
        "itl_ms": {
            "p50": _round(run.itl_p50_ms),
            "p95": _round(run.itl_p95_ms),
            "p99": _round(run.itl_p99_ms),
        },
        "attempts": len(run.attempt_records),
        "resumes": run.resumes,
        "error": (
            None
            if error is None
            else {"kind": error.kind, "status": error.http_status, "message": error.message}
        ),
        "attempt_log": [a.as_dict() for a in run.attempt_records],
        "started_at": run.started_at.isoformat(),
    }
