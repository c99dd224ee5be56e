"""Replay: recorded events paced by their original offsets divided by the speed."""

from __future__ import annotations

import pytest

from tests.store.conftest import record
from tui.store import Store
from tui.stream.events import Connecting, Finished, RunEvent, TextDelta

EVENTS: list[RunEvent] = [
    Connecting(0.0, 1, "POST", "u"),
    TextDelta(0.5, "a"),
    TextDelta(0.5, "b"),  # same offset: no sleep
    TextDelta(1.25, "c"),
    Finished(2.0, "completed", "stop", "stop"),
]


class FakeTime:
    """A clock that only moves when the replay sleeps (plus optional consumer work)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.parametrize("speed", [1.0, 2.0, 0.5])
async def test_paced_by_offsets_over_speed(store: Store, speed: float) -> None:
    run_id = await record(store, EVENTS)
    fake = FakeTime()
    seen: list[tuple[float, RunEvent]] = []
    async for event in store.replay(run_id, speed, clock=fake.clock, sleep=fake.sleep):
        seen.append((fake.now - 100.0, event))
    assert [e for _, e in seen] == EVENTS
    for at, event in seen:
        assert at == pytest.approx(event.t / speed)
    assert fake.sleeps == pytest.approx([0.5 / speed, 0.75 / speed, 0.75 / speed])


async def test_slow_consumers_do_not_accumulate_drift(store: Store) -> None:
    run_id = await record(store, EVENTS)
    fake = FakeTime()
    seen: list[float] = []
    async for _event in store.replay(run_id[:12], 1.0, clock=fake.clock, sleep=fake.sleep):
        seen.append(fake.now - 100.0)
        fake.now += 0.1  # the consumer takes 100 ms per event
    # each event still comes at its original offset (when the consumer is not already late)
    assert seen == pytest.approx([0.0, 0.5, 0.6, 1.25, 2.0])


async def test_instant_replay_never_sleeps(store: Store) -> None:
    run_id = await record(store, EVENTS)
    fake = FakeTime()
    events = [e async for e in store.replay(run_id, None, clock=fake.clock, sleep=fake.sleep)]
    assert events == EVENTS and fake.sleeps == []


async def test_real_clock_replay_at_high_speed(store: Store) -> None:
    import time

    run_id = await record(store, EVENTS)
    started = time.monotonic()
    events = [e async for e in store.replay(run_id, 20.0)]
    elapsed = time.monotonic() - started
    assert events == EVENTS
    assert elapsed >= 2.0 / 20.0 * 0.9  # paced: the 2 s run takes ~100 ms at 20x


async def test_bad_speed_is_refused(store: Store) -> None:
    run_id = await record(store, EVENTS)
    with pytest.raises(ValueError, match="positive"):
        async for _ in store.replay(run_id, 0.0):
            pass
