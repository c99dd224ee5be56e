"""`tokentop run`'s text says what was measured: tokens, estimated tokens or chunks, time
per output token next to the inter-chunk figures, and client-bound runs, on the run's line
and in the summary."""

from __future__ import annotations

from typing import Any

from tui.headless.output import (
    client_bound_words,
    output_count,
    summary_notes,
    summary_table,
    timing_words,
)


def record(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "session": "s",
        "model": "m",
        "status": "completed",
        "finish_reason": "stop",
        "output_tokens": 200,
        "tokens_estimated": False,
        "tokens_source": "usage",
        "chunks": 50,
        "ttft_ms": 300.0,
        "tokens_per_s": 50.7,
        "tpot_ms": 19.7,
        "inter_chunk_ms": {"p50": 80.0, "p95": 81.0, "p99": 199.0},
        "attempts": 1,
        "client_lag_p99_ms": 2.5,
        "client_bound": False,
    }
    return base | changes


def test_the_run_line_names_tokens_estimates_and_chunks() -> None:
    assert output_count(record()) == "200 tokens"
    estimated = record(tokens_source="estimated", tokens_estimated=True)
    assert output_count(estimated) == "~200 tokens (estimated)"
    chunks = record(tokens_source="chunks", tokens_estimated=True, output_tokens=50, tpot_ms=None)
    assert output_count(chunks) == "50 chunks"
    words = timing_words(record())
    assert "50.7 tok/s" in words and "tpot 19.7 ms" in words
    assert "inter-chunk p50 80.0 ms p99 199.0 ms" in words
    assert "chunks/s" in timing_words(chunks) and "tpot –," in timing_words(chunks)


def test_a_client_bound_run_says_so_on_its_line_and_in_the_summary() -> None:
    fine, bound = record(), record(session="b", client_bound=True, client_lag_p99_ms=312.0)
    assert client_bound_words(fine) == ""
    assert client_bound_words(bound) == "client-bound (engine lag p99 312 ms)"
    table = summary_table([fine, bound])
    header, _, first, second = table.splitlines()
    assert header.split()[-3:] == ["tpot", "attempts", "note"]
    assert first.split()[-1] == "1" and second.split()[-1] == "client-bound"
    (note,) = summary_notes([fine, bound])
    assert note.startswith("client-bound: 1 of 2 runs") and "50 ms" in note
    assert summary_notes([fine]) == []


def test_the_summary_marks_estimates_and_chunks_and_explains_the_marks() -> None:
    rows = [
        record(session="est", tokens_source="estimated", tokens_estimated=True),
        record(session="ch", tokens_source="chunks", tokens_estimated=True, output_tokens=50),
    ]
    lines = summary_table(rows).splitlines()
    assert lines[2].split()[4] == "~200" and lines[3].split()[4] == "50ch"
    notes = summary_notes(rows)
    assert any("estimated by a tokenizer" in n for n in notes)
    assert any("chunks, not tokens" in n for n in notes)
