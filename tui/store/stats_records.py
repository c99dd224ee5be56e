"""The records of :mod:`tui.store.stats` (frozen dataclasses) and how a stored run counts.

The definitions behind every figure are in :mod:`tui.store.stats`' docstring.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeAlias

from tui.stream.metrics import exact_quantile
from tui.vocab import outcome_tone

__all__ = [
    "MESSAGE_CHARS",
    "LastFailure",
    "Outcome",
    "Percentiles",
    "SeriesPoint",
    "SessionStats",
    "one_line",
    "outcome",
    "utc_time",
]

Outcome: TypeAlias = Literal["success", "failure", "cancelled"]
"""How a finished run counts in a success rate (``cancelled``: not at all)."""

MESSAGE_CHARS = 120
"""A last failure's message is cut to this many characters (one line)."""

_OUTCOMES: dict[tuple[str, str | None], Outcome] = {}


def outcome(status: str, finish_reason: str | None) -> Outcome | None:
    """How a stored run counts (the definitions are in :mod:`tui.store.stats`); None while it
    is running."""
    key = (status, finish_reason)
    found = _OUTCOMES.get(key)
    if found is None:
        tone = outcome_tone(status, finish_reason)
        if tone == "running":
            return None
        found = "failure" if tone == "failed" else "cancelled" if tone == "cancelled" else "success"
        if len(_OUTCOMES) < 256:  # a handful of real pairs; a damaged file cannot grow it
            _OUTCOMES[key] = found
    return found


@dataclass(frozen=True, slots=True)
class Percentiles:
    """p50 and p95 of one metric over ``count`` values (None when ``count`` is 0)."""

    count: int = 0
    p50: float | None = None
    p95: float | None = None

    @classmethod
    def of(cls, values: list[float]) -> Percentiles:
        """The percentiles of ``values`` (sorted in place)."""
        values.sort()
        return cls(len(values), exact_quantile(values, 0.50), exact_quantile(values, 0.95))


@dataclass(frozen=True, slots=True)
class LastFailure:
    """The newest failed run of a window: when, how it ended, and why."""

    at: dt.datetime
    """Its ``started_at`` (timezone-aware UTC)."""
    run_id: str
    status: str
    """``failed`` or ``interrupted`` (or ``completed`` with a failed finish reason)."""
    finish_reason: str | None
    error_kind: str | None
    """A :data:`tui.vocab.ErrorKind` (None for an interrupted run)."""
    error_status: int | None
    """The HTTP status, when the failure had one."""
    message: str | None
    """The error message on one line, at most :data:`MESSAGE_CHARS` characters."""

    @property
    def kind(self) -> str:
        """A one-word cause: the error kind, else the status (``interrupted``)."""
        return self.error_kind or self.status


@dataclass(frozen=True, slots=True)
class SessionStats:
    """One session's runs in a window (see the module docstring for every definition)."""

    session: str
    runs: int = 0
    """Finished runs (every status but ``running``)."""
    running: int = 0
    """Runs still running (not in any other figure)."""
    completed: int = 0
    incomplete: int = 0
    failed: int = 0
    cancelled: int = 0
    interrupted: int = 0
    """The finished runs by stored status (they add up to ``runs``)."""
    successes: int = 0
    """Finished runs with tone ``ok`` or ``warn``."""
    failures: int = 0
    """Finished runs with tone ``failed`` (``failed`` and ``interrupted`` runs, and any with a
    failed finish reason)."""
    success_rate: float | None = None
    """successes / (successes + failures); None when both are 0."""
    last_failure: LastFailure | None = None
    first_run_at: dt.datetime | None = None
    last_run_at: dt.datetime | None = None
    """The earliest and latest ``started_at`` of the window's runs (running ones included)."""
    ttft_ms: Percentiles = field(default_factory=Percentiles)
    tokens_per_s: Percentiles = field(default_factory=Percentiles)
    duration_ms: Percentiles = field(default_factory=Percentiles)
    """Over the successful runs that have the value."""

    def as_dict(self) -> dict[str, Any]:
        """Every field as JSON-ready values (times as ISO 8601 strings, numbers as numbers)."""
        return _jsonable(asdict(self))


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One time bucket of a session's series, for charts."""

    start: dt.datetime
    end: dt.datetime
    """The bucket holds runs with ``start <= started_at < end`` (the last one includes end)."""
    runs: int
    """Finished runs that started in the bucket."""
    failures: int
    ttft_p50_ms: float | None
    tokens_per_s_p50: float | None
    duration_p50_ms: float | None
    """Medians over the bucket's successful runs (None where there are none)."""

    def as_dict(self) -> dict[str, Any]:
        """Every field as JSON-ready values."""
        return _jsonable(asdict(self))


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    return {k: _value(v) for k, v in value.items()}


def _value(value: Any) -> Any:
    if isinstance(value, dict):
        return _jsonable(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def utc_time(stamp: str) -> dt.datetime:
    """A stored ``started_at`` (or any ISO 8601 time; naive is UTC) as an aware UTC time."""
    value = dt.datetime.fromisoformat(stamp)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def one_line(message: str | None) -> str | None:
    """``message`` on one line, cut to :data:`MESSAGE_CHARS` characters."""
    if message is None:
        return None
    text = " ".join(message.split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"
