"""Small, pure formatting helpers shared by the widgets (numbers, durations, sparklines).

An unknown value is :data:`tui.vocab.MISSING` (an en dash).
"""

from __future__ import annotations

from collections.abc import Sequence

from tui.vocab import MISSING

SPARK_BLOCKS = " ▁▂▃▄▅▆▇█"
"""Unicode eighth blocks, from empty to full, for one-line sparklines in table cells."""


def fmt_ms(ms: float | None) -> str:
    """``312 ms`` / ``1.42 s`` / ``–`` when unknown."""
    if ms is None:
        return MISSING
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.2f} s"


def fmt_rate(tokens_per_s: float | None) -> str:
    """``52.3`` (tokens per second, one decimal) or ``–``."""
    if tokens_per_s is None:
        return MISSING
    if tokens_per_s >= 1000:
        return f"{tokens_per_s:,.0f}"
    return f"{tokens_per_s:.1f}"


def fmt_percent(fraction: float | None) -> str:
    """``97%`` (of a 0.0-1.0 fraction; ``99.5%`` below 100 shows as ``99%``, never a false
    ``100%``) or ``–``."""
    if fraction is None:
        return MISSING
    percent = fraction * 100
    return "100%" if percent >= 100 else f"{min(int(percent), 99)}%"


def fmt_count(n: int | None) -> str:
    """``1,234`` or ``–``."""
    return MISSING if n is None else f"{n:,}"


def fmt_elapsed(seconds: float | None) -> str:
    """``8.4 s`` below a minute, ``3m07s`` above, ``–`` when unknown."""
    if seconds is None:
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def sparkline(values: Sequence[float], width: int = 12) -> str:
    """The last ``width`` values as eighth-block characters, scaled to their maximum.

    Always exactly ``width`` characters (left-padded with spaces), so columns stay aligned.
    """
    tail = list(values)[-width:]
    if not tail:
        return " " * width
    top = max(tail)
    if top <= 0:
        chars = "▁" * len(tail)
    else:
        last = len(SPARK_BLOCKS) - 1
        chars = "".join(
            SPARK_BLOCKS[max(1, min(last, round(v / top * last)))] if v > 0 else "▁" for v in tail
        )
    return chars.rjust(width)
