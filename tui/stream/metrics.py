"""Run metrics from normalized events: TTFT, inter-token latency percentiles, tokens/s, a
live rolling rate, chunk and token counts.

Definitions (all times are event ``t``, seconds since the run started):

- ``ttft_s``: from the ``Connecting`` of the attempt that produced the first content to that
  first content delta (text, reasoning and tool-call deltas all count as content).
- ITL: gaps between consecutive content chunks (per chunk, as vLLM's ITL). Live percentiles
  come from a log-bucket histogram (O(1) insert, < 0.5% relative error); once the run has
  finished they are exact (linear interpolation over the sorted gaps).
- ``tokens_per_s``: ``(tokens - 1) / (last content - first content)``; tokens are the
  server's ``usage`` output tokens when it sent them, else the content chunk count
  (``tokens_estimated`` stays True until usage arrives).
- ``rolling_tokens_per_s``: content chunks in the last ``ROLLING_WINDOW_S`` seconds (scaled
  by the server's tokens-per-chunk ratio once usage arrived), per second.

A restart (``Retrying(mode="restart")``) starts the content metrics over: they describe the
output that is kept. The clock is only used for the live rolling rate's "now" (read on
the first content and on the rare non-content events, never per delta).
"""

from __future__ import annotations

import itertools
import math
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

from tui.stream.events import (
    Connecting,
    Finished,
    RawEvent,
    ReasoningDelta,
    Retrying,
    RunEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)

__all__ = ["ROLLING_WINDOW_S", "LogHistogram", "MetricsAccumulator", "MetricsSnapshot"]

ROLLING_WINDOW_S = 2.0
"""Width of the live rolling-rate window."""


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000.0


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """An immutable view of a run's metrics at one moment (seconds; ``*_ms`` properties)."""

    ttft_s: float | None
    itl_p50_s: float | None
    itl_p95_s: float | None
    itl_p99_s: float | None
    tokens_per_s: float | None
    """Output tokens per second over the first-to-last-content window."""
    rolling_tokens_per_s: float | None
    """Live rate over the last ~2 s (None before the first content)."""
    chunks: int
    """Content chunks (text, reasoning and tool-call deltas)."""
    output_tokens: int
    """The server's usage when known (``tokens_estimated`` False), else the chunk count."""
    input_tokens: int | None
    tokens_estimated: bool
    duration_s: float | None
    """Whole run, start to ``Finished`` (None while running)."""
    elapsed_s: float
    """Seconds since the run started (the duration once finished)."""
    finished: bool

    @property
    def ttft_ms(self) -> float | None:
        """TTFT in milliseconds."""
        return _ms(self.ttft_s)

    @property
    def itl_p50_ms(self) -> float | None:
        """Median inter-token (chunk) latency in milliseconds."""
        return _ms(self.itl_p50_s)

    @property
    def itl_p95_ms(self) -> float | None:
        """95th percentile inter-token latency in milliseconds."""
        return _ms(self.itl_p95_s)

    @property
    def itl_p99_ms(self) -> float | None:
        """99th percentile inter-token latency in milliseconds."""
        return _ms(self.itl_p99_s)

    @property
    def duration_ms(self) -> float | None:
        """Run duration in milliseconds."""
        return _ms(self.duration_s)


class LogHistogram:
    """Positive values in logarithmic buckets of ratio ``1 + 2*rel_error``: O(1) insert,
    quantiles within ``rel_error`` (values below ``floor`` share one bucket)."""

    __slots__ = ("_counts", "_inv_log", "_ratio", "count", "floor")

    def __init__(self, rel_error: float = 0.005, floor: float = 1e-6) -> None:
        self._ratio = 1.0 + 2.0 * rel_error
        self._inv_log = 1.0 / math.log(self._ratio)
        self._counts: dict[int, int] = {}
        self.floor = floor
        self.count = 0

    def add(self, value: float) -> None:
        """Record one value."""
        key = int(math.log(value / self.floor) * self._inv_log) if value > self.floor else -1
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1
        self.count += 1

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` (0..1), None when empty."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for key in sorted(self._counts):
            seen += self._counts[key]
            if seen >= rank:
                if key < 0:
                    return 0.0
                # the bucket's geometric middle: within rel_error of any value in it
                return float(self.floor * self._ratio ** (key + 0.5))
        return None  # pragma: no cover - rank <= count always hits


def exact_quantile(ordered: list[float], q: float) -> float | None:
    """Linear-interpolated quantile of sorted values (numpy's default), None when empty."""
    if not ordered:
        return None
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class MetricsAccumulator:
    """Folds run events into metrics; :meth:`snapshot` is cheap enough for 10 Hz."""

    __slots__ = (
        "_clock",
        "_hist",
        "_offset",
        "_sorted",
        "_times",
        "chunks",
        "connect_t",
        "finished_t",
        "first_t",
        "input_tokens",
        "last_t",
        "ttft_s",
        "usage_output_tokens",
    )

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._offset: float | None = None  # clock() - event t: maps the clock to run time
        self.connect_t: float | None = None
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.ttft_s: float | None = None
        self.chunks = 0
        self.usage_output_tokens: int | None = None
        self.input_tokens: int | None = None
        self.finished_t: float | None = None
        self._hist = LogHistogram()
        self._times: list[float] = []  # content chunk times (non-decreasing)
        self._sorted: list[float] | None = None

    def _reset_content(self) -> None:
        self.first_t = self.last_t = self.ttft_s = None
        self.chunks = 0
        self.usage_output_tokens = self.input_tokens = None
        self._hist = LogHistogram()
        self._times = []
        self._sorted = None

    def apply(self, event: RunEvent) -> None:
        """Fold one event in."""
        cls = type(event)
        if cls is TextDelta:
            if event.text:  # type: ignore[union-attr]
                self.content(event.t)
            return
        if cls is ReasoningDelta or cls is ToolCallDelta:
            self.content(event.t)
            return
        if cls is RawEvent:
            return
        if cls is Usage:  # may come with every chunk (vLLM continuous usage): no clock read
            assert isinstance(event, Usage)
            if event.output_tokens is not None:
                self.usage_output_tokens = event.output_tokens
            if event.input_tokens is not None:
                self.input_tokens = event.input_tokens
            return
        t = event.t
        if self.finished_t is None:
            self._offset = self._clock() - t
        if cls is Connecting:
            self.connect_t = t
        elif cls is Retrying:
            assert isinstance(event, Retrying)
            if event.mode == "restart":
                self._reset_content()
        elif cls is Finished:
            self.finished_t = t

    def content(self, t: float) -> None:
        """One content chunk (text, reasoning or tool-call delta) arrived at run time ``t``
        (the hot path: :meth:`apply` calls it, so may a caller that already knows)."""
        last = self.last_t
        if last is None:
            self.first_t = t
            self.ttft_s = t - (self.connect_t or 0.0)
            self._offset = self._clock() - t
        else:
            if t < last:  # never let a clock hiccup reorder the chunk times
                t = last
            self._hist.add(t - last)
            self._sorted = None
        self.last_t = t
        self.chunks += 1
        self._times.append(t)

    def now(self) -> float:
        """Current run time (the finish time once finished)."""
        if self.finished_t is not None:
            return self.finished_t
        if self._offset is None:
            return 0.0
        return self._clock() - self._offset

    @property
    def reported_tokens(self) -> int | None:
        """The server's output tokens when they can be believed: a usage report of 0 tokens
        for a stream that carried content (some mock servers and gateways always send zeros)
        is no report at all."""
        u = self.usage_output_tokens
        if u == 0 and self.chunks:
            return None
        return u

    @property
    def output_tokens(self) -> int:
        """Server-reported output tokens, else the content chunk count."""
        u = self.reported_tokens
        return self.chunks if u is None else u

    def _rolling(self, now: float) -> float | None:
        if self.first_t is None:
            return None
        times = self._times
        recent = len(times) - bisect_right(times, now - ROLLING_WINDOW_S)
        window = min(ROLLING_WINDOW_S, max(now - self.first_t, 1e-9))
        scale = 1.0
        reported = self.reported_tokens
        if reported is not None and self.chunks:
            scale = reported / self.chunks
        return recent * scale / window

    def gaps(self) -> list[float]:
        """Every inter-chunk gap so far, in arrival order (exact ITL values)."""
        times = self._times
        return [b - a for a, b in itertools.pairwise(times)]

    def snapshot(self) -> MetricsSnapshot:
        """The metrics now (exact percentiles once finished, histogram ones before)."""
        now = self.now()
        finished = self.finished_t is not None
        if finished:
            if self._sorted is None:
                self._sorted = sorted(self.gaps())
            ordered = self._sorted
            p50 = exact_quantile(ordered, 0.50)
            p95 = exact_quantile(ordered, 0.95)
            p99 = exact_quantile(ordered, 0.99)
        else:
            hist = self._hist
            p50, p95, p99 = hist.quantile(0.50), hist.quantile(0.95), hist.quantile(0.99)
        tokens = self.output_tokens
        rate: float | None = None
        if self.first_t is not None and self.last_t is not None and tokens > 1:
            window = self.last_t - self.first_t
            if window > 0:
                rate = (tokens - 1) / window
        return MetricsSnapshot(
            ttft_s=self.ttft_s,
            itl_p50_s=p50,
            itl_p95_s=p95,
            itl_p99_s=p99,
            tokens_per_s=rate,
            rolling_tokens_per_s=self._rolling(now),
            chunks=self.chunks,
            output_tokens=tokens,
            input_tokens=self.input_tokens,
            tokens_estimated=self.reported_tokens is None,
            duration_s=self.finished_t,
            elapsed_s=now,
            finished=finished,
        )
