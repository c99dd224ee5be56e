"""The engine loop's lag probe: a run during which the engine loop is really blocked (a
time.sleep in a callback on that loop) is flagged client-bound, with its lag; and the
session run's result record carries the figures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import cast

from tui.session.engine import Engine
from tui.session.loop_lag import CLIENT_BOUND_LAG_MS, PROBE_INTERVAL_S, ClientLag, LagProbe
from tui.stream.events import Finished, RunEvent, TextDelta
from tui.stream.runner import StreamRun

BLOCK_S = 0.3


class HeldRun:
    """A run that sends one chunk, then ends when ``release`` is set (on the engine loop)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()  # bound to the engine loop on first wait

    async def stream_to(self, sink: Callable[[list[RunEvent]], None]) -> None:
        sink([TextDelta(0.01, "hello")])
        await self.release.wait()
        sink([Finished(0.5, "completed", "stop", "stop", None)])

    async def aclose(self) -> None:
        return None


async def ticks(probe: LagProbe, count: int, every: float) -> None:
    """Wait until the probe has taken ``count`` more samples (its count is the state: the
    probe has no event to wait on)."""
    start = probe.count
    while probe.count < start + count:  # noqa: ASYNC110
        await asyncio.sleep(every)


async def stream_with(engine: Engine, block_s: float | None) -> tuple[ClientLag, list[RunEvent]]:
    lags: list[ClientLag] = []
    delivered: list[RunEvent] = []
    first = asyncio.Event()

    def deliver(events: Sequence[RunEvent]) -> None:
        if type(events[-1]) is Finished:
            assert lags, "the lag is known before the run's last batch is handed over"
        delivered.extend(events)
        first.set()

    run = HeldRun()
    task = asyncio.create_task(engine.stream(cast(StreamRun, run), deliver, lags.append))
    await asyncio.wait_for(first.wait(), 10)
    probe = engine.probe
    assert probe is not None
    await ticks(probe, 3, PROBE_INTERVAL_S)  # samples inside the run, whatever the load
    if block_s is not None:
        engine.call_soon(lambda: time.sleep(block_s))  # a real block of the engine loop
    engine.call_soon(run.release.set)
    await asyncio.wait_for(task, 10)
    assert len(lags) == 1
    return lags[0], delivered


async def test_a_blocked_engine_loop_makes_the_run_client_bound() -> None:
    engine = Engine("test-lag")
    try:
        lag, delivered = await stream_with(engine, BLOCK_S)
        assert type(delivered[-1]) is Finished
        assert lag.bound and lag.p99_ms is not None and lag.max_ms is not None
        # the block began somewhere in a probe interval: the tick is late by the rest of it
        assert lag.max_ms >= (BLOCK_S - PROBE_INTERVAL_S) * 1000 * 0.9 and lag.samples >= 3
        # the next run, on the same loop, is judged on its own samples only
        again, _ = await stream_with(engine, None)
        assert again.samples >= 3
        assert again.max_ms is not None and again.max_ms < lag.max_ms
    finally:
        engine.close()


async def test_the_probe_records_its_lateness_on_its_own_loop() -> None:
    loop = asyncio.get_running_loop()
    probe = LagProbe(loop, interval=0.01)
    probe.start()
    try:
        mark = probe.mark()
        await ticks(probe, 2, 0.01)
        time.sleep(0.2)  # noqa: ASYNC251 - block this loop: the due tick is late, and counted
        lag = probe.since(mark)
        assert lag.max_ms is not None and lag.max_ms >= 150
        assert lag.bound and CLIENT_BOUND_LAG_MS < 150
    finally:
        probe.stop()
    assert LagProbe(loop).since(0) == ClientLag(None, None, 0)
