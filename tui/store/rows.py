"""A run's ``runs`` and ``attempts`` rows, projected from its :class:`RunAccumulator`.

The store keeps no fold of its own: every value it writes comes from the run's accumulator
(the caller's, or the store's own when the caller has none), so stored metrics and the
``run --jsonl`` record agree. A dead writer's runs are re-folded from their committed
events with :func:`tui.stream.accumulate.fold_events`, timed by the events' own ``t``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any, Protocol

from tui.stream.accumulate import RunAccumulator
from tui.stream.result import AttemptRecord

from .codec import scrub

RUN_COLUMNS: tuple[str, ...] = (
    "first_token_s",
    "ended_s",
    "status",
    "finish_reason",
    "raw_finish_reason",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "total_tokens",
    "tokens_estimated",
    "ttft_ms",
    "duration_ms",
    "tokens_per_s",
    "itl_p50_ms",
    "itl_p95_ms",
    "itl_p99_ms",
    "chunks",
    "attempts",
    "resumes",
    "error_kind",
    "error_status",
    "error_message",
    "error_code",
    "response_id",
    "request_id",
    "output_text",
    "reasoning_text",
    "tool_calls_json",
    "tpot_ms",
    "tokens_source",
    "client_lag_p99_ms",
    "client_bound",
)
"""The ``runs`` columns a flush writes, in the order of :func:`run_row`."""


class LoopLag(Protocol):
    """The client's own event-loop lag over a run (``tui.session.loop_lag.ClientLag``)."""

    @property
    def p99_ms(self) -> float | None:
        """99th percentile of the loop's lateness during the run (None: no sample)."""
        ...


class ClientLagSource(Protocol):
    """Who measures the client's own loop lag over a run (``tui.session.run.SessionRun``):
    read when the run's final row is written, after its :class:`Finished`."""

    @property
    def client_lag(self) -> LoopLag | None:
        """The lag over the run (None: nothing measured it)."""
        ...

    @property
    def client_bound(self) -> bool:
        """True when the lag passed the bound: the run's timing may be the client's."""
        ...


ATTEMPT_COLUMNS: tuple[str, ...] = (
    "number",
    "at_s",
    "mode",
    "http_status",
    "request_id",
    "cause_kind",
    "cause_status",
    "cause_message",
    "resumed_after",
    "last_event_id",
    "output_text",
    "reasoning_text",
)
"""The ``attempts`` columns, in the order of :func:`attempt_row` (after the run's rowid)."""


INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def storable(value: Any) -> Any:
    """``value`` as SQLite can bind it: an int clamped to int64 (a server's 2**70 token
    count), a float that is not finite (inf, nan) as None; anything else as is."""
    if type(value) is int:
        return INT64_MAX if value > INT64_MAX else INT64_MIN if value < INT64_MIN else value
    if type(value) is float and not math.isfinite(value):
        return None
    return value


def _scrubbed(row: tuple[Any, ...], secret: str | None) -> tuple[Any, ...]:
    """The row with its numbers :func:`storable` and ``secret`` blanked out of its strings."""
    if secret is None:
        return tuple(map(storable, row))
    return tuple(scrub(v, secret) if isinstance(v, str) else storable(v) for v in row)


def run_row(
    acc: RunAccumulator,
    *,
    final: bool,
    last_t: float,
    secret: str | None,
    lag: ClientLagSource | None = None,
) -> tuple[Any, ...]:
    """Values for :data:`RUN_COLUMNS`: a checkpoint, or the final summary.

    ``final`` for a run that has not finished means it is being closed unfinished: it is
    written as ``interrupted``, ended at ``last_t`` (the time of its last recorded event).
    Every string has ``secret`` blanked out. The client's lag comes from ``lag`` once the
    run has finished (NULL before, and without ``lag``: unknown), as the run's result
    record says it (``client_lag_p99_ms``, ``client_bound``).
    """
    m = acc.metrics()
    usage = acc.usage
    err = acc.error
    if acc.status is not None:
        status: str = acc.status
        ended = m.duration_s
    else:
        status = "interrupted" if final else "running"
        ended = last_t if final else None
    row = (
        acc.first_token_s,
        ended,
        status,
        acc.finish_reason,
        acc.raw_finish_reason,
        m.input_tokens,
        m.output_tokens,
        usage.reasoning_tokens if usage else None,
        usage.cached_tokens if usage else None,
        usage.total_tokens if usage else None,
        int(m.tokens_estimated),
        m.ttft_ms,
        None if ended is None else ended * 1000.0,
        m.tokens_per_s,
        m.itl_p50_ms,
        m.itl_p95_ms,
        m.itl_p99_ms,
        m.chunks,
        len(acc.attempts),
        acc.resumes,
        err.kind if err else None,
        err.http_status if err else None,
        err.message if err else None,
        err.code if err else None,
        acc.response_id,
        acc.request_id,
        acc.output_text,
        acc.reasoning_text,
        json.dumps(
            [
                {"index": c.index, "call_id": c.call_id, "name": c.name, "arguments": c.arguments}
                for c in acc.tool_calls
            ],
            ensure_ascii=False,
        ),
        m.tpot_ms,
        m.tokens_source,
        *_client_lag(acc, lag),
    )
    return _scrubbed(row, secret)


def _client_lag(
    acc: RunAccumulator, lag: ClientLagSource | None
) -> tuple[float | None, int | None]:
    """``client_lag_p99_ms`` and ``client_bound`` of a run: unknown (None) until it has
    finished (its lag is measured just before its :class:`Finished`) or without ``lag``."""
    if lag is None or acc.status is None:
        return None, None
    measured = lag.client_lag
    p99 = None if measured is None else measured.p99_ms
    return (None if p99 is None else round(p99, 3)), int(lag.client_bound)


def attempt_row(rowid: int, attempt: AttemptRecord, secret: str | None) -> tuple[Any, ...]:
    """Values for ``run`` and :data:`ATTEMPT_COLUMNS` (strings with ``secret`` blanked out)."""
    cause = attempt.cause
    row = (
        rowid,
        attempt.number,
        attempt.at_s if math.isfinite(attempt.at_s) else 0.0,  # a NOT NULL column
        attempt.mode,
        attempt.http_status,
        attempt.request_id,
        cause.kind if cause else None,
        cause.http_status if cause else None,
        cause.message if cause else None,
        attempt.after_sequence,
        attempt.last_event_id,
        attempt.output_text,
        attempt.reasoning_text,
    )
    return _scrubbed(row, secret)


def changed_attempts(
    rowid: int,
    attempts: Iterable[AttemptRecord],
    written: list[AttemptRecord],
    secret: str | None,
) -> list[tuple[Any, ...]]:
    """Rows of the ``attempts`` that differ from those ``written`` before (records are
    replaced, never changed, so identity tells); ``written`` becomes ``attempts``."""
    current = list(attempts)
    rows = [
        attempt_row(rowid, a, secret)
        for i, a in enumerate(current)
        if i >= len(written) or written[i] is not a
    ]
    written[:] = current
    return rows
