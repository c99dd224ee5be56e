"""The engine loop's own lag, measured during every run: is a run's timing the server's?

Every time a run's events carry is read on the engine's loop. When that loop is late (too
many runs for one core, a callback that blocks, the GIL held elsewhere), chunks are read
late and in bursts: TTFT grows and inter-chunk gaps shrink to zero, and a saturated
tokentop would pass its own lag off as the server's. One :class:`LagProbe` per engine loop
(never one per run) wakes every :data:`PROBE_INTERVAL_S` and records how late it woke; a
run takes the samples of its own lifetime (:meth:`LagProbe.mark`, :meth:`LagProbe.since`)
and is **client-bound** when their p99 is past :data:`CLIENT_BOUND_LAG_MS`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from itertools import islice

from tui.stream.metrics import exact_quantile

__all__ = ["CLIENT_BOUND_LAG_MS", "PROBE_INTERVAL_S", "PROBE_KEEP", "ClientLag", "LagProbe"]

PROBE_INTERVAL_S = 0.05
"""How often the probe wakes (20 Hz: a few microseconds of the loop per second)."""

CLIENT_BOUND_LAG_MS = 50.0
"""A run whose engine-loop lag p99 is past this is flagged ``client_bound``: its times may
be tokentop's own (50 ms is the loop-lag bar the benchmarks hold tokentop to, and more than
the inter-token gap of a model at 20 tokens a second)."""

PROBE_KEEP = 12_000
"""Samples kept (10 minutes at 20 Hz): a longer run is judged on its last 10 minutes."""


@dataclass(frozen=True, slots=True)
class ClientLag:
    """The engine loop's lag over one run."""

    p99_ms: float | None
    """99th percentile of how late the probe woke during the run (None: no sample)."""
    max_ms: float | None
    samples: int

    @property
    def bound(self) -> bool:
        """True when the run's timing may be the client's: p99 past the bound."""
        return self.p99_ms is not None and self.p99_ms > CLIENT_BOUND_LAG_MS


class LagProbe:
    """A timer on one event loop that records its own lateness. :meth:`start` and every
    other method run on that loop (the engine's pump calls them there)."""

    __slots__ = ("_due", "_handle", "_interval", "_loop", "_samples", "count")

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = PROBE_INTERVAL_S) -> None:
        self._loop = loop
        self._interval = interval
        self._samples: deque[float] = deque(maxlen=PROBE_KEEP)
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self.count = 0
        """Samples ever taken."""

    def start(self) -> None:
        """Arm the timer (on the loop)."""
        if self._handle is None:
            self._arm(self._loop.time())

    def stop(self) -> None:
        """Disarm it."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, now: float) -> None:
        self._due = now + self._interval
        self._handle = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        now = self._loop.time()
        self._samples.append(max(now - self._due, 0.0))
        self.count += 1
        self._arm(now)

    def mark(self) -> int:
        """Where a run starts (pass it to :meth:`since` when the run ends)."""
        return self.count

    def since(self, mark: int) -> ClientLag:
        """The lag over the samples taken since ``mark``, plus the lateness of the tick
        that is due but has not run yet (the loop is busy right now: that counts too)."""
        taken = min(self.count - mark, len(self._samples))
        samples = list(islice(reversed(self._samples), taken))  # O(the run's samples)
        if self._handle is not None:
            pending = self._loop.time() - self._due
            if pending > 0:
                samples.append(pending)
        if not samples:
            return ClientLag(None, None, 0)
        samples.sort()
        p99 = exact_quantile(samples, 0.99)
        return ClientLag(None if p99 is None else p99 * 1000.0, samples[-1] * 1000.0, len(samples))
