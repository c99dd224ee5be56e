"""What every face shows of a round (:class:`~tui.session.round_report.RoundReport`):
the table's cells (``tokentop compare`` aligns them or makes them a Markdown table, the
dashboard's round screen lays them out), the lines that say the verdict (the ranking, ties,
columns not ranked), and the one JSON object. Plain strings: no face's library."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from tui.session.round_report import RoundReport
from tui.session.round_stats import ColumnStats, Metric, Rank, Spread
from tui.vocab import MISSING

__all__ = [
    "METRIC_WORDS",
    "RIGHT_ALIGNED",
    "fit_cells",
    "markdown_table",
    "report_json",
    "table_cells",
    "title_line",
    "verdict_lines",
]

METRIC_WORDS: dict[Metric, str] = {
    "ttft": "TTFT (median, lower is better)",
    "tps": "tokens/s (median, higher is better)",
    "duration": "duration (median, lower is better)",
}

HEADER = (
    "#",
    "session",
    "model",
    "ok",
    "ttft ms (p25–p75)",
    "p95",
    "tok/s (p25–p75)",
    "p95",
    "tpot ms (p25–p75)",
    "duration ms (p25–p75)",
    "p95",
    "out tok",
    "$/run",
    "vs best",
)
RIGHT_ALIGNED = frozenset({0, *range(3, len(HEADER))})
"""The columns of :data:`HEADER` that hold numbers (aligned right)."""


def fmt_usd(value: float | None) -> str:
    """Dollars with three significant digits for small amounts (``$0.000450``)."""
    if value is None:
        return MISSING
    if value <= 0:
        return "$0"
    decimals = max(2, 2 - math.floor(math.log10(value)))
    return f"${value:,.{decimals}f}"


def _num(value: float | None, digits: int) -> str:
    return MISSING if value is None else f"{value:,.{digits}f}"


def _median_spread(spread: Spread, digits: int) -> str:
    if spread.p50 is None:
        return MISSING
    middle = _num(spread.p50, digits)
    if spread.count < 2:
        return middle
    return f"{middle} ({_num(spread.p25, digits)}–{_num(spread.p75, digits)})"


def _place(rank: Rank) -> str:
    if rank.place is None:
        return MISSING
    return f"{rank.place}=" if rank.tied_with else str(rank.place)


def _ratio(rank: Rank) -> str:
    return MISSING if rank.ratio is None else f"{rank.ratio:.2f}x"


def _tokens(column: ColumnStats) -> str:
    if column.output_tokens is None:
        return MISSING
    text = f"{column.output_tokens:,.0f}"
    if column.tokens_chunks:  # no usage, no tokenizer: the count is of chunks
        return f"{text}ch"
    return f"~{text}" if column.tokens_estimated else text


def table_cells(report: RoundReport) -> list[list[str]]:
    """The table, header first: one row per column, in ranking order."""
    columns = {c.session: c for c in report.columns}
    rows = [list(HEADER)]
    for rank in report.ranking.ranks:
        c = columns[rank.session]
        rows.append(
            [
                _place(rank),
                c.session,
                c.model or MISSING,
                f"{c.successes}/{c.runs}",
                _median_spread(c.ttft_ms, 0),
                _num(c.ttft_ms.p95, 0),
                _median_spread(c.tokens_per_s, 1),
                _num(c.tokens_per_s.p95, 1),
                _median_spread(c.tpot_ms, 1),
                _median_spread(c.duration_ms, 0),
                _num(c.duration_ms.p95, 0),
                _tokens(c),
                fmt_usd(c.cost_per_run_usd),
                _ratio(rank),
            ]
        )
    return rows


METRIC_COLUMN: dict[Metric, int] = {"ttft": 4, "tps": 6, "duration": 9}
"""The column of :data:`HEADER` that holds each ranking metric's median."""

DROP_ORDER = (10, 7, 5, 12, 8, 2, 11, 9, 6, 4)
"""The columns a narrow screen gives up first: the p95s, the price, TPOT, the model, the
output tokens, then the medians the ranking is not by."""

DROP_NAMES = {
    2: "model",
    4: "ttft",
    5: "ttft p95",
    6: "tok/s",
    7: "tok/s p95",
    8: "tpot",
    9: "duration",
    10: "duration p95",
    11: "out tok",
    12: "$/run",
}
"""How a column left out is named (a bare ``p95`` would not say which)."""


def fit_cells(
    cells: list[list[str]],
    width: int,
    *,
    by: Metric,
    measure: Callable[[str], int] = len,
    gap: int = 2,
) -> tuple[list[list[str]], list[int], list[str]]:
    """The table of :func:`table_cells` narrowed to ``width`` cells: a column whose every
    row is empty (no price known) goes first, then :data:`DROP_ORDER` until it fits; the
    place, session, successes, the ranked metric and the ratio always stay. ``measure``
    is the face's cell width of a string, ``gap`` what it puts between columns. Returns
    the cells, the :data:`HEADER` indices they keep, and the names of the columns left
    out, in :data:`HEADER`'s order."""
    if not cells:
        return cells, [], []
    header, rows = cells[0], cells[1:]
    widths = [max(measure(row[i]) for row in cells) for i in range(len(header))]
    keep = METRIC_COLUMN[by]
    dropped = {
        i for i in DROP_ORDER if i != keep and rows and all(row[i] == MISSING for row in rows)
    }

    def total() -> int:
        shown = [w for i, w in enumerate(widths) if i not in dropped]
        return sum(shown) + gap * len(shown)

    for i in DROP_ORDER:
        if total() <= width:
            break
        if i != keep:
            dropped.add(i)
    names = [DROP_NAMES[i] for i in sorted(dropped)]
    shown = [i for i in range(len(header)) if i not in dropped]
    return [[row[i] for i in shown] for row in cells], shown, names


def title_line(report: RoundReport) -> str:
    """``round ID · N runs per column · order · status``."""
    runs = f"{report.count} run{'s' if report.count != 1 else ''} per column"
    return f"round {report.round_id} · {runs} · {report.order} · {report.status}"


def verdict_lines(report: RoundReport) -> list[str]:
    """What the ranking says, in sentences: the order and ratios, the ties, and why the
    columns without a rank have none."""
    ranking = report.ranking
    ranked = [r for r in ranking.ranks if r.place is not None]
    lines = []
    if ranked:
        order = ", ".join(f"{r.session} {_ratio(r)}" for r in ranked)
        lead = f"fastest: {ranking.winner}" if ranking.winner else "no clear winner"
        lines.append(f"by {METRIC_WORDS[ranking.metric]}: {order} ({lead})")
    for group in ranking.ties:
        names = " and ".join(group) if len(group) == 2 else ", ".join(group)
        lines.append(f"tied: {names} (their p25–p75 spreads overlap; more runs may tell)")
    for r in ranking.ranks:
        if r.place is None:
            lines.append(f"not ranked: {r.session}: {r.reason}")
    columns = {c.session: c for c in report.columns}
    for r in ranking.ranks:
        c = columns[r.session]
        if c.failures and c.last_error:
            lines.append(f"{c.session}: {c.failures} failed, last: {c.last_error}")
    return lines


def markdown_table(report: RoundReport) -> str:
    """The report as Markdown: a title, a pipe table and the verdict as a list."""
    cells = table_cells(report)

    def row(items: Sequence[str]) -> str:
        return "| " + " | ".join(i.replace("|", "\\|") for i in items) + " |"

    rule = ["---:" if i in RIGHT_ALIGNED else "---" for i in range(len(cells[0]))]
    lines = [f"**{title_line(report)}**", "", row(cells[0]), row(rule), *map(row, cells[1:])]
    verdict = verdict_lines(report)
    if verdict:
        lines += ["", *(f"- {line}" for line in verdict)]
    return "\n".join(lines)


def _spread(spread: Spread) -> dict[str, Any]:
    return {
        "count": spread.count,
        "p25": spread.p25,
        "p50": spread.p50,
        "p75": spread.p75,
        "p95": spread.p95,
    }


def report_json(report: RoundReport) -> dict[str, Any]:
    """The report as one JSON object: the round, every column with every figure (and its
    runs), the ranking, the ties and the winner."""
    ranks = {r.session: r for r in report.ranking.ranks}
    columns = []
    for c in report.columns:
        r = ranks[c.session]
        columns.append(
            {
                "session": c.session,
                "model": c.model,
                "planned": c.planned,
                "runs": c.runs,
                "successes": c.successes,
                "failures": c.failures,
                "cancelled": c.cancelled,
                "ttft_ms": _spread(c.ttft_ms),
                "tokens_per_s": _spread(c.tokens_per_s),
                "duration_ms": _spread(c.duration_ms),
                "tpot_ms": _spread(c.tpot_ms),
                "output_tokens": c.output_tokens,
                "tokens_estimated": c.tokens_estimated,
                "tokens_chunks": c.tokens_chunks,
                "cost_per_run_usd": c.cost_per_run_usd,
                "cost_total_usd": c.cost_total_usd,
                "priced_runs": c.priced_runs,
                "last_error": c.last_error,
                "place": r.place,
                "ratio": r.ratio,
                "tied_with": list(r.tied_with),
                "not_ranked_because": r.reason,
                "run_log": [
                    {
                        "index": run.index,
                        "run_id": run.figures.run_id,
                        "status": run.figures.status,
                        "finish_reason": run.figures.finish_reason,
                        "ttft_ms": run.figures.ttft_ms,
                        "tokens_per_s": run.figures.tokens_per_s,
                        "duration_ms": run.figures.duration_ms,
                        "tpot_ms": run.figures.tpot_ms,
                        "output_tokens": run.figures.output_tokens,
                        "tokens_source": run.figures.tokens_source,
                        "input_tokens": run.figures.input_tokens,
                        "cost_usd": run.figures.cost_usd,
                    }
                    for run in report.runs
                    if run.session == c.session
                ],
            }
        )
    return {
        "round_id": report.round_id,
        "status": report.status,
        "prompt": report.prompt,
        "count": report.count,
        "order": report.order,
        "by": report.by,
        "columns": columns,
        "ranking": [
            {
                "session": r.session,
                "place": r.place,
                "value": r.value,
                "ratio": r.ratio,
                "tied_with": list(r.tied_with),
                "not_ranked_because": r.reason,
            }
            for r in report.ranking.ranks
        ],
        "ties": [list(group) for group in report.ranking.ties],
        "winner": report.ranking.winner,
    }
