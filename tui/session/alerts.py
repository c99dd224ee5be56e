"""Alerts: what a session's finished runs crossed (``alerts`` thresholds of the sessions file).

:class:`Alert` is what every sink receives: the store, ``tokentop run``'s printer, the
dashboard (row and tab state, bell, desktop notification), the ``on_alert`` command and the
Prometheus counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

AlertMetric: TypeAlias = Literal[
    "ttft_ms", "min_tokens_per_s", "max_duration_s", "on_failure", "consecutive_failures"
]
"""Which rule of :class:`tui.config.schema.AlertRules` fired (its key in the sessions file)."""


@dataclass(frozen=True, slots=True)
class Alert:
    """One crossed threshold of one run."""

    session: str
    run_id: str
    metric: AlertMetric
    value: float | None
    """What the run measured (ms, tokens/s, s, or the failures in a row); None for on_failure."""
    threshold: float | None
    """The configured bound (None for on_failure)."""
    message: str
    """One line that names the session, the metric, the value and the bound (redacted)."""
    at: float
    """Wall time (``time.time()``) when the run ended."""
