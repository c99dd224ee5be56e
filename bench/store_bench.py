"""Benchmark of the transcript store's batched writer (not a test).

    python bench/store_bench.py [--seconds 3] [--runs 4]

Phase 1, throughput: a producer adds TextDelta and RawEvent events (alternately, spread over
``--runs`` concurrent runs) as fast as the event loop allows, in chunks of 1000 with a yield
between chunks; the background flusher writes them. Reported: events/s added and events/s
committed (sustained, measured until everything is on disk).

Phase 2, loop blocking: a producer adds events at a steady 100k events/s (100 per ms) while a
ticker task sleeps 1 ms at a time and records how late it wakes. The longest lateness is the
longest the event loop was blocked (by a flush, or by the producer itself). Reported: max and
p99 lag overall and the max lag within 20 ms after each flush started.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.config import SessionConfig, StoreConfig
from tui.store import Store
from tui.stream.events import Finished, RawEvent, TextDelta

RAW_DATA = (
    '{"type":"response.output_text.delta","sequence_number":12,"item_id":"msg_1",'
    '"output_index":0,"content_index":0,"delta":" token"}'
)


KEEP_ALL = StoreConfig(keep_raw_events="all")
"""Every event is written (the default holds a running run's raw events back, and drops
them when it completes): the bench measures the writer with all of them."""


async def start_runs(store: Store, count: int) -> list[str]:
    session = SessionConfig(name="bench", model="bench-model", prompt="benchmark")
    return [await store.start_run(session, prompt=session.prompt) for _ in range(count)]


async def throughput(db: Path, seconds: float, runs: int) -> dict[str, float]:
    store = await Store.open(db, retention=KEEP_ALL)
    try:
        run_ids = await start_runs(store, runs)
        added = 0
        t0 = time.perf_counter()
        t = 0.0
        max_pending = 0
        while time.perf_counter() - t0 < seconds:
            for i in range(500):
                run_id = run_ids[i % runs]
                t += 1e-5
                store.add_event(run_id, TextDelta(t, " token"))
                store.add_event(run_id, RawEvent(t, 1, "response.output_text.delta", RAW_DATA))
            added += 1000
            max_pending = max(max_pending, len(store.queue))
            await asyncio.sleep(0)
        add_s = time.perf_counter() - t0
        for run_id in run_ids:
            store.add_event(run_id, Finished(t, "completed", "stop", "stop"))
        await store.flush()
        total_s = time.perf_counter() - t0
        assert store.events_written == added + runs, (store.events_written, added)
        assert not store.errors, store.errors
    finally:
        await store.close()
    return {
        "added_per_s": added / add_s,
        "written_per_s": (added + runs) / total_s,
        "events": float(added + runs),
        "seconds": total_s,
        "max_pending": float(max_pending),
        "db_mb": await asyncio.to_thread(os.path.getsize, db) / 1e6,
    }


async def loop_lag(db: Path, seconds: float, runs: int) -> dict[str, float]:
    store = await Store.open(db, retention=KEEP_ALL)
    loop = asyncio.get_running_loop()
    lags: list[tuple[float, float, float]] = []  # (when, lateness, loop-thread CPU in tick)
    gc_pauses: list[float] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        elif info["generation"] == 2:
            gc_pauses.append(time.perf_counter() - gc_started[0])

    gc.callbacks.append(on_gc)
    flush_starts: list[float] = []
    original = store._flush_batch

    async def timed_flush(*, closing: bool = False, checkpoint_s: float = 0.0) -> None:
        flush_starts.append(loop.time())
        await original(closing=closing, checkpoint_s=checkpoint_s)

    store._flush_batch = timed_flush  # type: ignore[method-assign]
    stop = False

    async def ticker() -> None:
        while not stop:
            before, cpu_before = loop.time(), time.thread_time()
            await asyncio.sleep(0.001)
            after = loop.time()
            lags.append((after, after - before - 0.001, time.thread_time() - cpu_before))

    max_pending = [0]

    async def producer(run_ids: list[str]) -> int:
        added = 0
        t = 0.0
        next_tick = loop.time()
        while not stop:
            for i in range(50):
                run_id = run_ids[i % runs]
                t += 1e-5
                store.add_event(run_id, TextDelta(t, " token"))
                store.add_event(run_id, RawEvent(t, 1, "response.output_text.delta", RAW_DATA))
            added += 100
            max_pending[0] = max(max_pending[0], len(store.queue))
            next_tick += 0.001
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
        return added

    try:
        run_ids = await start_runs(store, runs)
        tick = asyncio.create_task(ticker())
        prod = asyncio.create_task(producer(run_ids))
        t0 = time.perf_counter()
        await asyncio.sleep(seconds)
        stop = True
        added = await prod
        await tick
        elapsed = time.perf_counter() - t0
        await store.flush()
    finally:
        await store.close()
        gc.callbacks.remove(on_gc)
    values = sorted(lag for _, lag, _ in lags)
    near_flush = [
        lag for at, lag, _ in lags if any(0 <= at - start <= 0.02 for start in flush_starts)
    ]
    busy = sorted(cpu for _, _, cpu in lags)
    return {
        "rate": added / elapsed,
        "ticks": float(len(values)),
        "max_ms": values[-1] * 1000,
        "p99_ms": values[int(len(values) * 0.99)] * 1000,
        "median_ms": statistics.median(values) * 1000,
        "flushes": float(len(flush_starts)),
        "max_near_flush_ms": max(near_flush, default=0.0) * 1000,
        "over_10ms": float(sum(v > 0.010 for v in values)),
        "busy_max_ms": busy[-1] * 1000,
        "busy_p99_ms": busy[int(len(busy) * 0.99)] * 1000,
        "gc2_max_ms": max(gc_pauses, default=0.0) * 1000,
        "gc2_count": float(len(gc_pauses)),
        "max_pending": float(max_pending[0]),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=4, help="concurrent runs")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tp = await throughput(Path(tmp) / "throughput.db", args.seconds, args.runs)
        print(
            f"throughput: {tp['events']:.0f} events ({args.runs} runs, TextDelta+RawEvent) in "
            f"{tp['seconds']:.2f} s; added {tp['added_per_s']:,.0f}/s, committed "
            f"{tp['written_per_s']:,.0f}/s sustained (target >= 100,000/s); "
            f"max queued {tp['max_pending']:,.0f}; db {tp['db_mb']:.1f} MB"
        )
        lag = await loop_lag(Path(tmp) / "lag.db", args.seconds, args.runs)
        print(
            f"loop lag at {lag['rate']:,.0f} events/s: {lag['ticks']:.0f} ticks, "
            f"{lag['flushes']:.0f} flushes; median {lag['median_ms']:.2f} ms, "
            f"p99 {lag['p99_ms']:.2f} ms, max {lag['max_ms']:.2f} ms "
            f"(max within 20 ms of a flush start {lag['max_near_flush_ms']:.2f} ms); "
            f"ticks over 10 ms: {lag['over_10ms']:.0f} (target: none); max queued "
            f"{lag['max_pending']:,.0f} (the writer keeps up when this stays near one period)"
        )
        print(
            f"  loop-thread CPU per 1 ms tick (time actually spent running on the loop, "
            f"excluding preemption by other processes): p99 {lag['busy_p99_ms']:.2f} ms, "
            f"max {lag['busy_max_ms']:.2f} ms; full GC passes {lag['gc2_count']:.0f}, longest "
            f"{lag['gc2_max_ms']:.2f} ms; load average {os.getloadavg()[0]:.2f} on "
            f"{os.cpu_count()} CPUs"
        )


if __name__ == "__main__":
    asyncio.run(main())
