"""Pacing recorded events by their original offsets: :class:`ReplayClock`, and the timeline
of a conversation's replay (:class:`TurnStart`, :func:`next_turn_offset`).

Headless: the store's :meth:`~tui.store.reading.RunQueries.replay` and
:meth:`~tui.store.conversations.ConversationQueries.replay_conversation` and the replay
screen all pace events with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from tui.stream.events import RunEvent


def _checked(speed: float) -> float:
    if not speed > 0:
        raise ValueError(f"replay speed must be positive, not {speed}")
    return speed


class ReplayClock:
    """Original run time, played back at a variable speed, with pause and instant mode.

    ``position`` is in seconds of the original run. It advances ``speed`` times as fast as
    wall time while playing, stands still while paused, and jumps to the end in instant mode.
    :meth:`wait_until` is the pacing: it returns once the position reaches an event's offset,
    and wakes early when the speed, pause or instant mode changes. The position is computed
    from the wall clock since the last change, so time the consumer spends between events
    does not add up as drift.
    """

    def __init__(self, speed: float = 1.0, *, now: Callable[[], float] = time.monotonic) -> None:
        """Start at position 0, playing at ``speed`` (raises ValueError unless positive);
        ``now`` is the wall clock (injectable for tests)."""
        self._now = now
        self._speed = _checked(speed)
        self._anchor_wall = now()
        self._anchor_pos = 0.0
        self._paused = False
        self._instant = False
        self._changed = asyncio.Event()

    @property
    def position(self) -> float:
        """Seconds of original run time played so far."""
        if self._paused or self._instant:
            return self._anchor_pos
        return self._anchor_pos + (self._now() - self._anchor_wall) * self._speed

    @property
    def speed(self) -> float:
        """Playback speed factor (1.0 = original timing)."""
        return self._speed

    @property
    def paused(self) -> bool:
        """True while paused."""
        return self._paused

    @property
    def instant(self) -> bool:
        """True once instant mode plays everything without waiting."""
        return self._instant

    def _rebase(self) -> None:
        """Freeze the position at now, so a change of speed or pause starts from here."""
        self._anchor_pos = self.position
        self._anchor_wall = self._now()

    def _notify(self) -> None:
        """Wake whoever waits in :meth:`wait_until`."""
        self._changed.set()
        self._changed = asyncio.Event()

    def set_speed(self, speed: float) -> None:
        """Play at ``speed`` from now on (leaves instant mode; ValueError unless positive)."""
        speed = _checked(speed)
        self._rebase()
        self._speed = speed
        self._instant = False
        self._notify()

    def set_paused(self, paused: bool) -> None:
        """Pause or resume."""
        self._rebase()
        self._paused = paused
        self._notify()

    def go_instant(self) -> None:
        """Play the rest without waiting (also un-pauses)."""
        self._rebase()
        self._instant = True
        self._paused = False
        self._notify()

    def advance_to(self, t: float) -> None:
        """Record that an event at ``t`` was played (instant mode moves the position)."""
        if t > self._anchor_pos and (self._instant or self.position < t):
            # Instant mode and late wake-ups: the position is never behind a played event.
            self._anchor_pos = t
            self._anchor_wall = self._now()

    async def wait_until(self, t: float) -> None:
        """Return once the position reaches ``t`` (at once in instant mode)."""
        while not self._instant:
            remaining = t - self.position
            if remaining <= 0 and not self._paused:
                break
            changed = self._changed
            timeout = None if self._paused else remaining / self._speed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)
        self.advance_to(t)


async def due_parts(
    events: list[RunEvent], clock: ReplayClock | None
) -> AsyncIterator[list[RunEvent]]:
    """``events`` (in order) in parts, each yielded once ``clock`` reached all of its
    events' offsets: the whole of them at once in instant mode or without a clock."""
    start = 0
    for i, event in enumerate(events):
        if clock is None or clock.instant:
            break
        if clock.paused or event.t > clock.position:  # not due yet: hand on what is
            if i > start:
                clock.advance_to(events[i - 1].t)
                yield events[start:i]
                start = i
            await clock.wait_until(event.t)
    if start < len(events):
        if clock is not None:
            clock.advance_to(events[-1].t)
        yield events[start:]


TURN_GAP_MAX_S = 2.0
"""The longest pause a conversation's replay makes between two turns: the person read the
answer and typed the next prompt for as long as they did, which is shortened to this (and
kept when shorter) so that the turns still come one after the other."""


@dataclass(frozen=True, slots=True)
class TurnStart:
    """Yielded by a conversation's replay before each turn's events (views show the prompt).

    The turn's events keep their own ``t`` (seconds since that run started); ``offset_s``
    is where on the replay's clock that run starts, so the clock's position minus it is the
    run's own time (for a live fold of the turn, such as the metrics of the replay screen).
    """

    turn: int
    prompt: str
    run_id: str
    offset_s: float = 0.0


def next_turn_offset(offset_s: float, run_end_s: float, gap_s: float) -> float:
    """Where the next turn starts on a conversation replay's clock: after this turn (which
    started at ``offset_s`` and lasted ``run_end_s``) and the pause between the two runs
    (``gap_s`` of wall time, at most :data:`TURN_GAP_MAX_S`; none when they overlapped)."""
    return offset_s + max(0.0, run_end_s) + min(max(0.0, gap_s), TURN_GAP_MAX_S)
