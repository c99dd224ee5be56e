"""Pacing recorded events by their original offsets (for ``tokentop replay``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from tui.stream.events import RunEvent


async def paced(
    events: Sequence[RunEvent],
    speed: float | None,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
) -> AsyncIterator[RunEvent]:
    """Yield ``events`` so that each comes ``event.t / speed`` seconds after the start.

    Sleeps are computed against ``clock`` from the start (not event to event), so time spent
    by the consumer does not accumulate as drift. ``speed=None`` is instant.
    """
    if speed is not None and speed <= 0:
        raise ValueError(f"replay speed must be positive, not {speed}")
    if not events:
        return
    origin = events[0].t if events[0].t < 0 else 0.0
    start = clock()
    for event in events:
        if speed is not None:
            delay = (event.t - origin) / speed - (clock() - start)
            if delay > 0:
                await sleep(delay)
        yield event
