"""The engine thread's hand-over of a run's events to the face's loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import cast

import pytest

from tui.session.engine import Engine
from tui.stream.events import Finished, RunEvent, TextDelta
from tui.stream.runner import StreamRun


class LateEnd:
    """A run that, when its consumer is cancelled, still ends with its own Finished a moment
    later (as a run cut mid-read does), from the engine's thread."""

    def __init__(self) -> None:
        self.first = TextDelta(0.01, "hello")
        self.last = Finished(0.02, "cancelled", "cancelled", None, None)

    async def stream_to(self, sink: Callable[[list[RunEvent]], None]) -> None:
        sink([self.first])
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)
            sink([self.last])
            raise

    async def aclose(self) -> None:
        return None


async def test_a_cancelled_stream_delivers_the_runs_last_events_before_it_returns() -> None:
    engine = Engine("test-engine")
    delivered: list[RunEvent] = []
    arrived = asyncio.Event()

    def deliver(events: Sequence[RunEvent]) -> None:
        delivered.extend(events)
        arrived.set()

    run = LateEnd()
    try:
        task = asyncio.create_task(engine.stream(cast(StreamRun, run), deliver))
        await asyncio.wait_for(arrived.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # at the moment the caller moves on, the run's end is already in its hands
        assert delivered == [run.first, run.last]
    finally:
        engine.close()
