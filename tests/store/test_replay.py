"""Replay: recorded events paced by a ReplayClock (speed, pause, instant), without Textual."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.store.conftest import record
from tui.store import Store
from tui.store.replay import ReplayClock
from tui.stream.events import Connecting, Finished, RunEvent, TextDelta

EVENTS: list[RunEvent] = [
    Connecting(0.0, 1, "POST", "u"),
    TextDelta(0.5, "a"),
    TextDelta(0.5, "b"),  # same offset: no wait
    TextDelta(1.25, "c"),
    Finished(2.0, "completed", "stop", "stop"),
]


class FakeTime:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- the clock -------------------------------------------------------------------------------


def test_clock_plays_at_speed_and_pauses() -> None:
    wall = FakeTime()
    clock = ReplayClock(2.0, now=wall)
    wall.now += 1.0
    assert clock.position == pytest.approx(2.0)
    clock.set_paused(True)
    wall.now += 5.0
    assert clock.position == pytest.approx(2.0)
    clock.set_paused(False)
    clock.set_speed(0.25)
    wall.now += 4.0
    assert clock.position == pytest.approx(3.0)


def test_clock_instant_jumps_to_each_event() -> None:
    wall = FakeTime()
    clock = ReplayClock(1.0, now=wall)
    clock.go_instant()
    clock.advance_to(7.5)
    assert clock.position == 7.5
    wall.now += 100
    assert clock.position == 7.5  # instant mode does not drift with wall time


async def test_a_late_consumer_does_not_accumulate_drift() -> None:
    # The position comes from the wall clock since the start, not from event to event: a
    # consumer that took longer than the gap gets the next event at once.
    wall = FakeTime()
    clock = ReplayClock(1.0, now=wall)
    wall.now += 0.6  # the consumer spent 0.6 s on the first event
    await asyncio.wait_for(clock.wait_until(0.5), 1)
    assert clock.position == pytest.approx(0.6)


async def test_clock_wait_until_wakes_on_instant() -> None:
    clock = ReplayClock(0.25)
    waiter = asyncio.create_task(clock.wait_until(1000.0))
    await asyncio.sleep(0)
    assert not waiter.done()
    clock.go_instant()
    await asyncio.wait_for(waiter, 5)
    assert clock.position == 1000.0


async def test_clock_wait_until_holds_while_paused() -> None:
    clock = ReplayClock(10.0)
    clock.set_paused(True)
    waiter = asyncio.create_task(clock.wait_until(0.01))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # 0.01 s at 10x would have passed long ago
    clock.set_paused(False)
    await asyncio.wait_for(waiter, 5)


@pytest.mark.parametrize("speed", [0.0, -1.0, float("nan")])
def test_bad_speed_is_refused(speed: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        ReplayClock(speed)
    with pytest.raises(ValueError, match="positive"):
        ReplayClock().set_speed(speed)


# -- the store's replay ----------------------------------------------------------------------


async def test_without_a_clock_every_event_comes_at_once(store: Store) -> None:
    run_id = await record(store, EVENTS)
    started = time.monotonic()
    events = [e async for e in store.replay(run_id)]
    assert events == EVENTS
    assert time.monotonic() - started < 1.0  # the run lasted 2 s


async def test_events_come_at_their_offsets_over_the_speed(store: Store) -> None:
    run_id = await record(store, EVENTS)
    clock = ReplayClock(20.0)
    seen: list[tuple[float, RunEvent]] = []
    started = time.monotonic()
    async for event in store.replay(run_id[:12], clock):
        seen.append((time.monotonic() - started, event))
    assert [e for _, e in seen] == EVENTS
    for at, event in seen:
        assert at >= event.t / 20.0 * 0.9  # never early (the 2 s run takes ~100 ms at 20x)
    assert clock.position >= 2.0


async def test_going_instant_mid_replay_plays_the_rest_at_once(store: Store) -> None:
    run_id = await record(store, EVENTS)
    clock = ReplayClock(0.25)  # the whole run would take 8 s
    events: list[RunEvent] = []
    async for event in store.replay(run_id, clock):
        events.append(event)
        if len(events) == 1:
            clock.go_instant()
    assert events == EVENTS and clock.position == 2.0
