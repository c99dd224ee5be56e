"""Run metrics from normalized events: TTFT, inter-token latency percentiles, tokens/s, a
live rolling rate, chunk and token counts.

Definitions (all times are event ``t``, seconds since the run started):

- ``ttft_s``: from the ``Connecting`` of the attempt that produced the first content to that
  first content delta (text, reasoning and tool-call deltas all count as content).
- ``itl_*``: the **inter-chunk** latency, gaps between consecutive content chunks (per
  chunk, as vLLM's ITL: a chunk may carry several tokens; the p99 shows stalls). Live
  percentiles come from a log-bucket histogram (O(1) insert, < 0.5% relative error); once
  the run has finished they are exact (linear interpolation over the sorted gaps).
- ``tpot_s``: time per output token, ``(duration - TTFT) / (tokens - 1)`` (guidellm's and
  aiperf's per-token "ITL"), only when the tokens are counted (``tokens_source`` ``usage``
  or ``estimated``), never from chunks. The duration is the whole run's, so after a retry
  it also counts the earlier attempts.
- tokens (``tokens_source``): the server's ``usage`` output tokens when it sent them
  (``usage``), else, once the run has finished, an estimate of a real tokenizer over the
  output (``estimated``, see :mod:`tui.stream.tokenize`), else the content chunk count
  (``chunks``). ``tokens_estimated`` is True unless the count is the server's.
- ``tokens_per_s``: ``(tokens - 1) / (last content - first content)``.
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
from array import array
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

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

__all__ = [
    "ROLLING_WINDOW_S",
    "LogHistogram",
    "MetricsAccumulator",
    "MetricsSnapshot",
    "TokensSource",
    "time_per_output_token",
]

TokensSource = Literal["usage", "estimated", "chunks"]
"""Where a run's output token count comes from: the server's usage, a tokenizer's estimate
of the output text, or (no usage, no tokenizer) the content chunk count."""

ROLLING_WINDOW_S = 2.0
"""Width of the live rolling-rate window."""


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000.0


def time_per_output_token(
    duration: float | None, ttft: float | None, tokens: int | None, source: str
) -> float | None:
    """``(duration - ttft) / (tokens - 1)`` in the unit of the times; None unless the
    tokens are counted (``source`` is not ``chunks``) and there are at least two."""
    if duration is None or ttft is None or tokens is None or tokens < 2 or source == "chunks":
        return None
    return max(duration - ttft, 0.0) / (tokens - 1)


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """An immutable view of a run's metrics at one moment (seconds; ``*_ms`` properties)."""

    ttft_s: float | None
    itl_p50_s: float | None
    """Inter-**chunk** latency percentiles (a chunk may carry several tokens)."""
    itl_p95_s: float | None
    itl_p99_s: float | None
    tokens_per_s: float | None
    """Output tokens per second over the first-to-last-content window."""
    rolling_tokens_per_s: float | None
    """Live rate over the last ~2 s (None before the first content)."""
    chunks: int
    """Content chunks (text, reasoning and tool-call deltas)."""
    output_tokens: int
    """The server's usage when known (``tokens_estimated`` False), else the tokenizer's
    estimate once finished, else the chunk count (see ``tokens_source``)."""
    input_tokens: int | None
    tokens_estimated: bool
    duration_s: float | None
    """Whole run, start to ``Finished`` (None while running)."""
    elapsed_s: float
    """Seconds since the run started (the duration once finished)."""
    finished: bool
    tokens_source: TokensSource = "chunks"
    """What ``output_tokens`` counts: ``usage``, ``estimated`` or ``chunks``."""
    tpot_s: float | None = None
    """Time per output token (None while the tokens are chunks; see the module doc)."""

    @property
    def tpot_ms(self) -> float | None:
        """Time per output token in milliseconds."""
        return _ms(self.tpot_s)

    @property
    def ttft_ms(self) -> float | None:
        """TTFT in milliseconds."""
        return _ms(self.ttft_s)

    @property
    def itl_p50_ms(self) -> float | None:
        """Median inter-chunk latency in milliseconds."""
        return _ms(self.itl_p50_s)

    @property
    def itl_p95_ms(self) -> float | None:
        """95th percentile inter-chunk latency in milliseconds."""
        return _ms(self.itl_p95_s)

    @property
    def itl_p99_ms(self) -> float | None:
        """99th percentile inter-chunk latency in milliseconds."""
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
        "estimated_tokens",
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
        self.estimated_tokens: int | None = None
        """A tokenizer's count of the kept output (set by the run's fold when it ends)."""
        self._hist = LogHistogram()
        # content chunk times (non-decreasing), as C doubles: 8 bytes per chunk instead of a
        # float object and its list slot (40), for runs of a million chunks or a thousand runs
        self._times = array("d")
        self._sorted: list[float] | None = None

    def _reset_content(self) -> None:
        self.first_t = self.last_t = self.ttft_s = None
        self.chunks = 0
        self.usage_output_tokens = self.input_tokens = self.estimated_tokens = None
        self._hist = LogHistogram()
        self._times = array("d")
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
    def tokens_source(self) -> TokensSource:
        """Where :attr:`output_tokens` comes from."""
        if self.reported_tokens is not None:
            return "usage"
        return "chunks" if self.estimated_tokens is None else "estimated"

    @property
    def output_tokens(self) -> int:
        """Server-reported output tokens, else the tokenizer's estimate, else the chunks."""
        u = self.reported_tokens
        if u is not None:
            return u
        e = self.estimated_tokens
        return self.chunks if e is None else e

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
        source = self.tokens_source
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
            tokens_source=source,
            tpot_s=time_per_output_token(self.finished_t, self.ttft_s, tokens, source),
        )
