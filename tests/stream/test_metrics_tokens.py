"""What the metrics say they measured: inter-chunk latency (per chunk) next to time per
output token, and where the token count comes from (usage, a real tokenizer's estimate,
or chunks), in the snapshot and in the result record."""

from __future__ import annotations

import pytest

from tests.contract import RESULT_KEYS
from tui.stream import tokenize
from tui.stream.accumulate import fold_events
from tui.stream.events import Connecting, Finished, RunEvent, Started, TextDelta, Usage
from tui.stream.metrics import time_per_output_token
from tui.stream.result import build_result


def four_tokens_per_chunk(usage: int | None) -> list[RunEvent]:
    """A server that sends 4 words (cl100k: 4 tokens) per chunk every 80 ms: 20 ms a token."""
    events: list[RunEvent] = [Connecting(0.0, 1, "POST", "u"), Started(0.1, 1, 200, None)]
    t = 0.3  # TTFT 300 ms
    for _ in range(50):
        events.append(TextDelta(t, " one two three four"))
        t += 0.08
    if usage is not None:
        events.append(Usage(t, input_tokens=3, output_tokens=usage))
    events.append(Finished(round(t - 0.08, 6), "completed", "stop", "stop", None))
    return events


def fold(events: list[RunEvent]) -> dict[str, object]:
    return fold_events(events, "r1", "s", "chat", "m", "p").result()


def test_inter_chunk_latency_and_time_per_output_token_are_both_reported() -> None:
    result = fold(four_tokens_per_chunk(usage=200))
    assert set(result) == RESULT_KEYS
    assert result["tokens_source"] == "usage" and result["tokens_estimated"] is False
    inter_chunk = result["inter_chunk_ms"]
    assert isinstance(inter_chunk, dict)
    assert inter_chunk["p50"] == pytest.approx(80.0)  # per chunk, as before
    assert result["itl_ms"] == inter_chunk  # the old name, the same figures
    # (duration - ttft) / (tokens - 1) = (4.22 - 0.3) / 199
    assert result["tpot_ms"] == pytest.approx(3920 / 199, abs=1e-3)
    assert result["tokens_per_s"] == pytest.approx(199 / 3.92, abs=1e-3)


def test_without_usage_the_count_is_estimated_or_says_chunks() -> None:
    acc = fold_events(four_tokens_per_chunk(usage=None), "r1", "s", "chat", "m", "p")
    snap, result = acc.metrics(), acc.result()
    assert result["tokens_estimated"] is True and result["chunks"] == 50
    if tokenize.tokenizer_available():
        assert snap.tokens_source == result["tokens_source"] == "estimated"
        assert result["output_tokens"] == 200  # a real tokenizer, not the 50 chunks
        assert result["tokens_per_s"] == pytest.approx(199 / 3.92, abs=1e-3)
        assert snap.tpot_ms == pytest.approx(3920 / 199)
    else:
        assert snap.tokens_source == result["tokens_source"] == "chunks"
        assert result["output_tokens"] == 50 and result["tpot_ms"] is None


def test_the_estimate_is_made_once_the_run_ends_never_live() -> None:
    events = four_tokens_per_chunk(usage=None)
    acc = fold_events(events[:-1], "r1", "s", "chat", "m", "p")
    live = acc.metrics()
    assert live.tokens_source == "chunks" and live.output_tokens == 50 and live.tpot_s is None


def test_a_usage_of_zero_tokens_is_no_usage() -> None:
    result = fold(four_tokens_per_chunk(usage=0))
    assert result["tokens_source"] in ("estimated", "chunks")


def test_time_per_output_token_needs_counted_tokens() -> None:
    assert time_per_output_token(1.0, 0.2, 5, "usage") == pytest.approx(0.2)
    assert time_per_output_token(1.0, 0.2, 5, "chunks") is None
    assert time_per_output_token(1.0, 0.2, 1, "usage") is None
    assert time_per_output_token(None, 0.2, 5, "usage") is None


def test_a_record_built_without_a_source_infers_it() -> None:
    def record(estimated: bool, tokens: int) -> dict[str, object]:
        return build_result(
            session="s",
            run_id="r",
            api="chat",
            model="m",
            status="completed",
            finish_reason="stop",
            raw_finish_reason="stop",
            output_text="",
            reasoning_text="",
            tool_calls=[],
            input_tokens=None,
            output_tokens=tokens,
            tokens_estimated=estimated,
            chunks=10,
            ttft_ms=100.0,
            duration_ms=1000.0,
            tokens_per_s=None,
            itl_ms=(1.0, 2.0, 3.0),
            attempts=[],
            resumes=0,
            error=None,
        )

    assert record(False, 10)["tokens_source"] == "usage"
    assert record(True, 10)["tokens_source"] == "chunks"
    assert record(True, 37)["tokens_source"] == "estimated"
    assert record(True, 10)["tpot_ms"] is None and record(True, 37)["tpot_ms"] == 25.0


@pytest.mark.skipif(not tokenize.tokenizer_available(), reason="no offline tokenizer installed")
def test_the_tokenizer_is_bounded_on_hostile_output() -> None:
    # one piece with no space: BPE is superlinear in it, the slices keep it linear
    assert tokenize.estimate_tokens(["x" * 100_000]) == pytest.approx(12_500, rel=0.01)
    # past the exact bound the count is scaled from what was encoded
    long = "hello world " * (tokenize.MAX_EXACT_CHARS // 6)
    exact = tokenize.estimate_tokens(["hello world " * 1000])
    assert exact is not None
    exact_rate = exact / 12_000
    assert tokenize.estimate_tokens([long]) == pytest.approx(len(long) * exact_rate, rel=0.01)
    assert tokenize.estimate_tokens(["", ""]) == 0
