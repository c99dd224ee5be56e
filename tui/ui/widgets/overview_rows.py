"""The overview's rows and columns as data: what a row shows, how each column sorts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tui.session import SessionController
from tui.stream.metrics import MetricsSnapshot
from tui.vocab import SESSION_STATES


@dataclass(frozen=True, slots=True)
class RowData:
    """Everything one overview row shows, taken from a session at one instant."""

    live: SessionController
    snapshot: MetricsSnapshot | None

    @property
    def ttft_ms(self) -> float | None:
        """Time to first token of the session's latest run (None before it)."""
        return self.snapshot.ttft_ms if self.snapshot else None

    @property
    def rate(self) -> float | None:
        """Tokens/s: the rolling rate while the run streams, the run's average once done."""
        if self.snapshot is None:
            return None
        if self.live.current is not None and not self.live.current.done:
            return self.snapshot.rolling_tokens_per_s
        return self.snapshot.tokens_per_s

    @property
    def output_tokens(self) -> int | None:
        """Output tokens of the latest run so far."""
        return self.snapshot.output_tokens if self.snapshot else None

    @property
    def elapsed_s(self) -> float | None:
        """Seconds the latest run has taken so far."""
        return self.snapshot.elapsed_s if self.snapshot else None

    @property
    def attempts(self) -> tuple[int, int]:
        """(requests sent, resumes) of the latest run."""
        acc = self.live.current.accumulator if self.live.current else None
        return (len(acc.attempts), acc.resumes) if acc else (0, 0)

    @property
    def finish(self) -> tuple[str | None, str | None]:
        """(status, finish reason) of the latest run; (None, None) until it ends."""
        run = self.live.current
        if run is None or run.finished is None:
            return (None, None)
        return (run.finished.status, run.finished.reason)


@dataclass(frozen=True, slots=True)
class Column:
    """One overview column: its key, header, sort key and whether compact mode keeps it."""

    key: str
    label: str
    sort_key: Callable[[RowData], tuple[float, str]]
    compact: bool = True
    width: int | None = None
    """Fixed width in cells (None: as wide as the longest value, for names and models).
    Fixed widths keep columns from jumping while values change."""


def _num(value: float | None) -> tuple[float, str]:
    return (-1.0 if value is None else float(value), "")


COLUMNS: tuple[Column, ...] = (
    Column("state", "status", lambda r: (float(SESSION_STATES.index(r.live.state)), ""), width=12),
    Column("name", "session", lambda r: (0.0, r.live.name.lower())),
    Column("model", "model", lambda r: (0.0, r.live.session.model.lower())),
    Column("api", "api", lambda r: (0.0, r.live.session.api), compact=False, width=9),
    Column("ttft", "TTFT", lambda r: _num(r.ttft_ms), width=6),
    Column("rate", "tok/s", lambda r: _num(r.rate), width=6),
    Column("trend", "trend", lambda r: _num(r.rate), compact=False, width=12),
    Column("out", "out", lambda r: _num(r.output_tokens), width=6),
    Column("elapsed", "elapsed", lambda r: _num(r.elapsed_s), compact=False, width=7),
    Column(
        "tries",
        "att/res",
        lambda r: (float(r.attempts[0] * 1000 + r.attempts[1]), ""),
        compact=False,
        width=7,
    ),
    Column("finish", "finish", lambda r: (0.0, r.finish[1] or ""), width=14),
)
