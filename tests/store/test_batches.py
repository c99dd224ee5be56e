"""Reading a run's events in bounded batches (``iter_run_events``), and replaying them in
lists of events due together (``replay_batches``): the same events, in the same order, as
reading them whole, with memory bounded by the batch on a run of any size."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import pytest

from tests.store.conftest import make_session
from tui.config import StoreConfig
from tui.store import Store
from tui.store.replay import ReplayClock
from tui.stream.events import (
    Connecting,
    Finished,
    RawEvent,
    ReasoningDelta,
    RunEvent,
    TextDelta,
    ToolCallDelta,
)

KEEP_ALL = StoreConfig(keep_raw_events="all")


def mixed_events(n: int) -> list[RunEvent]:
    """Reasoning and text deltas interleaved with each other, raw events and tool calls: the
    rows of one flush then overlap (a deltas row of each kind, events rows between)."""
    events: list[RunEvent] = [Connecting(0.0, 1, "POST", "http://x")]
    for i in range(n):
        t = 0.1 + i * 1e-3
        events.append(RawEvent(t, 1, "delta", f'{{"i":{i}}}'))
        events.append(ReasoningDelta(t, f"r{i} ") if i % 3 == 0 else TextDelta(t, f"w{i} "))
        if i % 250 == 249:
            events.append(ToolCallDelta(t, 0, "{}", "f", "c"))
    events.append(Finished(0.2 + n * 1e-3, "completed", "stop", "stop"))
    return events


async def stored_run(store: Store, events: list[RunEvent], flushes: int) -> str:
    run_id = await store.start_run(make_session(), prompt="p")
    step = -(-len(events) // flushes)
    for start in range(0, len(events), step):  # several flushes, so several rows of each
        store.add_events(run_id, events[start : start + step])
        await store.flush()
    return run_id


@pytest.mark.parametrize("batch", [1, 7, 1000, 100_000])
async def test_batches_hold_every_event_in_order(db_path: Path, batch: int) -> None:
    events = mixed_events(600)
    async with await Store.open(db_path, retention=KEEP_ALL) as store:
        run_id = await stored_run(store, events, flushes=9)
        chunks = [chunk async for chunk in store.iter_run_events(run_id, batch)]
        assert [e for chunk in chunks for e in chunk] == events
        assert all(len(chunk) == batch for chunk in chunks[:-1])
        assert 1 <= len(chunks[-1]) <= batch
        assert await store.run_events(run_id) == events
        others = [e for e in events if not isinstance(e, TextDelta | ReasoningDelta)]
        chunks = [chunk async for chunk in store.iter_run_events(run_id, batch, deltas=False)]
        assert [e for chunk in chunks for e in chunk] == others
        with pytest.raises(ValueError, match="at least one"):
            await anext(store.iter_run_events(run_id, 0))


async def test_reading_a_long_run_in_batches_keeps_memory_bounded(db_path: Path) -> None:
    events = mixed_events(5_000)
    async with await Store.open(db_path, retention=KEEP_ALL) as store:
        run_id = await stored_run(store, events, flushes=20)
        del events
        tracemalloc.start()
        try:
            count = 0
            async for chunk in store.iter_run_events(run_id, 100):
                count += len(chunk)
            _, batched = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            whole = await store.run_events(run_id)
            _, loaded = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert count == len(whole) == 10_022
        assert batched < loaded / 4, (batched, loaded)


async def test_replay_batches_hand_on_what_the_clock_reached(db_path: Path) -> None:
    events: list[RunEvent] = [
        Connecting(0.0, 1, "POST", "http://x"),
        TextDelta(0.1, "a"),
        TextDelta(0.1, "b"),
        TextDelta(0.3, "c"),
        Finished(0.4, "completed", "stop", "stop"),
    ]
    async with await Store.open(db_path) as store:
        run_id = await stored_run(store, events, flushes=1)
        assert [e async for b in store.replay_batches(run_id) for e in b] == events
        instant = ReplayClock()
        instant.go_instant()
        assert [b async for b in store.replay_batches(run_id, instant)] == [events]
        paced = [b async for b in store.replay_batches(run_id, ReplayClock(4.0))]
        assert [e for b in paced for e in b] == events
        assert [len(b) for b in paced] in ([1, 2, 1, 1], [1, 2, 2], [1, 4], [3, 1, 1])
        # a clock that goes instant while playing hands on the rest at once
        clock = ReplayClock(0.001)
        parts: list[list[RunEvent]] = []
        async for part in store.replay_batches(run_id, clock):
            parts.append(part)
            clock.go_instant()
        assert parts == [events[:1], events[1:]]
        await asyncio.sleep(0)
