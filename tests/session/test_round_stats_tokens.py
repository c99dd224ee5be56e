"""A compare round's per-token figures: time per output token next to tokens/s, and the
token column marked when the count is estimated or chunks (live and stored runs)."""

from __future__ import annotations

import pytest

from tui.session.round_report import RoundReport
from tui.session.round_stats import RunFigures, column_stats, rank
from tui.session.round_table import HEADER, RIGHT_ALIGNED, table_cells
from tui.stream.accumulate import fold_events
from tui.stream.events import Connecting, Finished, RunEvent, TextDelta, Usage


def events(usage: int | None) -> list[RunEvent]:
    out: list[RunEvent] = [Connecting(0.0, 1, "POST", "u")]
    out += [TextDelta(0.1 + i * 0.04, " word word") for i in range(26)]
    if usage is not None:
        out.append(Usage(1.1, input_tokens=None, output_tokens=usage))
    out.append(Finished(1.1, "completed", "stop", "stop", None))
    return out


def figures(usage: int | None) -> RunFigures:
    return RunFigures.from_accumulator(fold_events(events(usage), "r", "s", "chat", "m", "p"), None)


def test_time_per_output_token_comes_from_counted_tokens_only() -> None:
    counted = figures(usage=51)
    assert counted.tokens_source == "usage" and counted.tpot_ms == pytest.approx(1000 / 50)
    unknown = RunFigures("r", "completed", "stop", ttft_ms=100.0, duration_ms=1100.0)
    chunks = RunFigures(
        "r", "completed", "stop", output_tokens=26, tokens_estimated=True, tokens_source="chunks"
    )
    stats = column_stats("a", "m", [counted, unknown, chunks])
    assert stats.tpot_ms.count == 1 and stats.tpot_ms.p50 == pytest.approx(20.0)
    assert stats.tokens_chunks and stats.tokens_estimated


def test_the_compare_table_shows_tpot_and_marks_the_token_counts() -> None:
    usage = column_stats("usage", "m", [figures(usage=51)])
    chunks = column_stats(
        "chunks",
        "m",
        [RunFigures("r", "completed", "stop", 100.0, 20.0, 1000.0, 26, True, "chunks")],
    )
    columns = (usage, chunks)
    report = RoundReport("rid", "done", "p", 1, "interleaved", "ttft", columns, rank(columns), ())
    header, *rows = table_cells(report)
    assert header == list(HEADER) and HEADER.index("tpot ms (p25–p75)") in RIGHT_ALIGNED
    tpot = HEADER.index("tpot ms (p25–p75)")
    tokens = HEADER.index("out tok")
    by_session = {row[1]: row for row in rows}
    assert by_session["usage"][tpot] == "20.0" and by_session["usage"][tokens] == "51"
    assert by_session["chunks"][tpot] == "–" and by_session["chunks"][tokens] == "26ch"
