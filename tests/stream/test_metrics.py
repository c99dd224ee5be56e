"""Metrics with a fake clock: exact expected numbers for TTFT, ITL percentiles, tokens/s,
the rolling rate and the usage switch; the live histogram's error bound."""

from __future__ import annotations

import random

import pytest

from tui.stream.events import (
    Connecting,
    Finished,
    ReasoningDelta,
    Retrying,
    RunError,
    Started,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from tui.stream.metrics import LogHistogram, MetricsAccumulator, exact_quantile


class FakeClock:
    """A clock that only moves when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        """The current fake time."""
        return self.now


def test_metrics_exact_with_fake_clock() -> None:
    clock = FakeClock()
    m = MetricsAccumulator(clock)

    def at(t: float, event: object) -> None:
        clock.now = 100.0 + t  # the clock has its own origin; events carry run time
        m.apply(event)  # type: ignore[arg-type]

    at(0.0, Connecting(0.0, 1, "POST", "u"))
    at(0.3, Retrying(0.3, 1, 4, 0.2, "retry", RunError("http", "HTTP 503", 503)))
    at(0.5, Connecting(0.5, 2, "POST", "u"))  # the attempt that produces the content
    at(0.6, Started(0.6, 2, 200, "req_1"))
    at(1.0, TextDelta(1.0, ""))  # an empty delta is not content
    at(1.0, ReasoningDelta(1.0, "hm"))  # reasoning counts as content
    at(1.1, TextDelta(1.1, "a"))
    at(1.3, TextDelta(1.3, "b"))
    at(1.4, ToolCallDelta(1.4, 0, "{", "f", "c1"))  # so do tool-call fragments
    at(1.8, TextDelta(1.8, "c"))

    live = m.snapshot()
    assert live.ttft_s == pytest.approx(0.5)  # 1.0 - 0.5, not from the first attempt
    assert live.chunks == 5 and live.output_tokens == 5 and live.tokens_estimated
    assert live.input_tokens is None and live.duration_s is None and not live.finished
    assert live.tokens_per_s == pytest.approx((5 - 1) / 0.8)
    assert live.elapsed_s == pytest.approx(1.8)
    # live percentiles come from the histogram: within 1% of the nearest-rank gap
    gaps = sorted([0.1, 0.2, 0.1, 0.4])
    assert live.itl_p50_s == pytest.approx(gaps[1], rel=0.01)
    assert live.itl_p99_s == pytest.approx(gaps[3], rel=0.01)
    # rolling: 5 chunks in the last 2 s, window = 0.8 s since the first content
    assert live.rolling_tokens_per_s == pytest.approx(5 / 0.8)
    clock.now = 100.0 + 3.2  # later, no new chunk: 1.3, 1.4 and 1.8 are in (1.2, 3.2]
    assert m.snapshot().rolling_tokens_per_s == pytest.approx(3 / 2.0)
    assert m.snapshot().elapsed_s == pytest.approx(3.2)

    at(2.0, Usage(2.0, 12, 9, None, None, 21))
    at(2.1, Finished(2.1, "completed", "stop", "stop"))
    clock.now = 500.0  # after the finish the clock no longer matters
    done = m.snapshot()
    assert done.finished and done.duration_s == pytest.approx(2.1)
    assert done.elapsed_s == pytest.approx(2.1) and done.duration_ms == pytest.approx(2100)
    assert not done.tokens_estimated and done.output_tokens == 9 and done.input_tokens == 12
    assert done.tokens_per_s == pytest.approx((9 - 1) / 0.8)
    # exact, linearly interpolated percentiles of [0.1, 0.1, 0.2, 0.4]
    assert done.itl_p50_s == pytest.approx(0.15)
    assert done.itl_p95_s == pytest.approx(0.2 + 0.2 * 0.85)
    assert done.itl_p99_s == pytest.approx(0.2 + 0.2 * 0.97)
    assert done.itl_p50_ms == pytest.approx(150.0)
    assert done.ttft_ms == pytest.approx(500.0)


def test_restart_resets_content_metrics() -> None:
    m = MetricsAccumulator(FakeClock())
    m.apply(Connecting(0.0, 1, "POST", "u"))
    m.apply(TextDelta(0.2, "a"))
    m.apply(TextDelta(0.3, "b"))
    m.apply(Usage(0.35, 3, 2))
    m.apply(Retrying(0.4, 1, 4, 0.1, "restart", RunError("dropped", "dropped")))
    m.apply(Connecting(0.5, 2, "POST", "u"))
    m.apply(TextDelta(0.9, "x"))
    snap = m.snapshot()
    assert snap.ttft_s == pytest.approx(0.4) and snap.chunks == 1 and snap.tokens_estimated
    assert snap.itl_p50_s is None and snap.tokens_per_s is None


def test_resume_keeps_content_metrics() -> None:
    m = MetricsAccumulator(FakeClock())
    m.apply(Connecting(0.0, 1, "POST", "u"))
    m.apply(TextDelta(0.2, "a"))
    m.apply(Retrying(0.4, 1, 4, 0.1, "resume", RunError("dropped", "dropped")))
    m.apply(Connecting(0.5, 2, "GET", "u"))
    m.apply(TextDelta(0.7, "b"))
    snap = m.snapshot()
    assert snap.ttft_s == pytest.approx(0.2) and snap.chunks == 2
    assert snap.tokens_per_s == pytest.approx(1 / 0.5)


def test_empty_run_metrics() -> None:
    m = MetricsAccumulator(FakeClock())
    snap = m.snapshot()
    assert snap.ttft_s is None and snap.itl_p50_s is None and snap.tokens_per_s is None
    assert snap.rolling_tokens_per_s is None and snap.chunks == 0 and snap.elapsed_s == 0.0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_histogram_error_below_one_percent(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(-4.0, 1.2) for _ in range(20_000)]
    hist = LogHistogram()
    for v in values:
        hist.add(v)
    ordered = sorted(values)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        nearest_rank = ordered[max(0, -(-int(q * len(ordered) * 1000) // 1000) - 1)]
        got = hist.quantile(q)
        assert got is not None and abs(got - nearest_rank) / nearest_rank < 0.01, q


def test_histogram_zero_gaps_and_exact_quantile() -> None:
    hist = LogHistogram()
    assert hist.quantile(0.5) is None
    for _ in range(3):
        hist.add(0.0)
    hist.add(0.05)
    assert hist.quantile(0.5) == 0.0
    assert hist.quantile(1.0) == pytest.approx(0.05, rel=0.01)
    assert exact_quantile([], 0.5) is None
    assert exact_quantile([2.0], 0.99) == 2.0
    assert exact_quantile([1.0, 2.0, 3.0, 4.0], 0.5) == pytest.approx(2.5)


def test_a_usage_of_zero_tokens_for_a_stream_with_content_is_no_usage() -> None:
    # Some mock servers and gateways always send zeros (aimock's Responses usage).
    clock = FakeClock()
    m = MetricsAccumulator(clock)
    for t, event in (
        (0.0, Connecting(0.0, 1, "POST", "u")),
        (0.1, Usage(0.1, 0, 0, None, None, 0)),  # vLLM-style usage before any content
        (0.2, TextDelta(0.2, "a")),
        (0.3, TextDelta(0.3, "b")),
        (0.4, TextDelta(0.4, "c")),
        (0.5, Usage(0.5, 0, 0, None, None, 0)),
        (0.6, Finished(0.6, "completed", "stop", "stop")),
    ):
        clock.now = t
        m.apply(event)
    done = m.snapshot()
    assert done.output_tokens == 3 and done.tokens_estimated
    assert done.tokens_per_s == pytest.approx(2 / 0.2)
    empty = MetricsAccumulator(FakeClock())
    empty.apply(Usage(0.0, 5, 0, None, None, 5))  # zero tokens and no content: believed
    assert empty.snapshot().output_tokens == 0 and not empty.snapshot().tokens_estimated
