"""Small, pure formatting helpers shared by the widgets (numbers, durations, sparklines).

An unknown value is :data:`tui.vocab.MISSING` (an en dash).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len, set_cell_size

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


SPARK_GAP = " "
"""What :func:`sparkline` draws for a missing value (a run without a TTFT): a gap, not a bar."""


def sparkline(values: Sequence[float | None], width: int = 12) -> str:
    """The last ``width`` values as eighth-block characters, scaled to their maximum.

    A value of None (unknown: a cancelled run has no TTFT) is a gap (:data:`SPARK_GAP`),
    never a zero bar. Always exactly ``width`` characters (left-padded with spaces), so
    columns stay aligned.
    """
    tail = list(values)[-width:]
    if not tail:
        return " " * width
    known = [v for v in tail if v is not None]
    top = max(known, default=0.0)
    last = len(SPARK_BLOCKS) - 1
    chars = "".join(
        SPARK_GAP
        if v is None
        else SPARK_BLOCKS[max(1, min(last, round(v / top * last)))]
        if v > 0 and top > 0
        else "▁"
        for v in tail
    )
    return chars.rjust(width)


ELLIPSIS = "…"

ELIDE_STRIP = " ·-_/:,;"
"""Trailing characters dropped before the ellipsis (``poem · …`` reads as ``poem…``)."""


def elide(text: str, cells: int) -> str:
    """``text`` in at most ``cells`` terminal cells: whole when it fits, else its start and
    :data:`ELLIPSIS` (separators and spaces before the ellipsis are dropped)."""
    if cell_len(text) <= cells:
        return text
    if cells <= 1:
        return ELLIPSIS if cells == 1 else ""
    head = set_cell_size(text, cells - 1).rstrip(ELIDE_STRIP)
    return (head or set_cell_size(text, cells - 1)) + ELLIPSIS


def fit_names(names: Sequence[str], budget: int, *, shortest: int = 6) -> list[str]:
    """``names`` shortened so that their cells add up to at most ``budget``.

    Names are whole when they all fit. Otherwise every name longer than one common cap is
    elided to it (:func:`elide`) and shorter names stay whole: the cap is the largest that
    fits, never below ``shortest`` cells (then the sum can still exceed ``budget``).
    """
    lengths = [cell_len(name) for name in names]
    if sum(lengths) <= budget:
        return list(names)
    low, high = shortest, max(lengths)
    while low < high:  # the largest cap whose total fits (bisection over cell counts)
        cap = (low + high + 1) // 2
        if sum(min(length, cap) for length in lengths) <= budget:
            low = cap
        else:
            high = cap - 1
    return [elide(name, low) for name in names]


def tab_labels(
    marks: Sequence[tuple[str, bool]], names: Sequence[str], room: int | None, *, padding: int
) -> list[str]:
    """``glyph name •`` per tab (``marks``: glyph, unread; • while unread), as much as
    ``room`` cells hold with ``padding`` cells around each label (None: no limit).

    Whole names with their unread markers when they fit; else without the markers (a tab's
    ``-unread`` style still says it); else the longest names elided to one common length
    (:func:`fit_names`; the full name stays in the tab's tooltip and the pane's title).
    """
    full = [
        f"{glyph} {name}" + (" •" if unread else "")
        for (glyph, unread), name in zip(marks, names, strict=True)
    ]
    if room is None or sum(cell_len(label) + padding for label in full) <= room:
        return full
    heads = [f"{glyph} " for glyph, _ in marks]
    budget = room - sum(cell_len(head) + padding for head in heads)
    return [head + name for head, name in zip(heads, fit_names(names, budget), strict=True)]
