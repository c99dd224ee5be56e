"""Time windows as people type them (``90s``, ``10m``, ``1h``, ``7d``, ``2w``), for ``--since``,
``--older-than`` and the monitor's windows, and their start as a stored ``started_at``."""

from __future__ import annotations

import datetime as dt
import re

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_AGE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", re.IGNORECASE)


def parse_age(text: str) -> float:
    """Seconds in ``text`` (a number and a unit: s, m, h, d or w); ValueError that says what
    is accepted otherwise."""
    match = _AGE.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a time span: write a number and a unit, like 90s, 10m, 1h, 7d or 2w"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a time span: it must be longer than zero")
    return seconds


def started_since(seconds: float, now: dt.datetime | None = None) -> str:
    """The ``started_at`` (ISO 8601 UTC, as :mod:`tui.store` writes it) ``seconds`` before
    ``now``: runs with ``started_at >= started_since(...)`` started within the window."""
    now = now or dt.datetime.now(dt.UTC)
    return (now - dt.timedelta(seconds=seconds)).isoformat(timespec="microseconds")
