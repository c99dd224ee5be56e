"""The keys of a replay: pause, speed, instant, again, close, on a screen's
:class:`~tui.store.replay.ReplayClock`.

:class:`ReplayControls` is the base of the replay screens (one run or conversation:
:class:`~tui.ui.screens.replay.ReplayScreen`; a compare's columns:
:class:`~tui.ui.screens.compare_replay.CompareReplayScreen`): they share these bindings and
their ids, so a key remapped for one is remapped for both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.screen import Screen

from tui.store.replay import ReplayClock
from tui.ui.commands import ScreenBindingCommands

__all__ = ["PUBLISH_HZ", "SPEEDS", "ReplayControls"]

SPEEDS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 10.0)
"""Playback speeds that ``-`` and ``+`` step through."""

PUBLISH_HZ = 5.0
"""How often a replay screen shows its figures and state line (on the app's ticker)."""


class ReplayControls(Screen[None]):
    """A screen that plays stored events on :attr:`clock`: the replay keys (subclasses
    give :meth:`play` and :meth:`_publish`)."""

    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {ScreenBindingCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "space",
            "toggle_pause",
            "Pause/resume",
            id="replay.pause",
            tooltip="Pause or resume the replay",
        ),
        Binding(
            "minus",
            "slower",
            "Slower",
            id="replay.slower",
            tooltip="Halve the replay speed (down to 0.25x)",
        ),
        Binding(
            "plus,equals_sign",
            "faster",
            "Faster",
            id="replay.faster",
            tooltip="Double the replay speed (up to 10x)",
            key_display="+",
        ),
        Binding(
            "i",
            "instant",
            "Instant",
            id="replay.instant",
            tooltip="Show the rest of the run at once",
        ),
        Binding(
            "r",
            "restart",
            "Replay again",
            id="replay.restart",
            tooltip="Replay the run again from the start",
        ),
        Binding("escape,q", "close", "Close", key_display="esc", id="replay.close"),
    ]

    clock: ReplayClock
    done: bool
    """True once everything has been played."""
    error: str | None
    """Why the replay could not go on (None: it plays)."""

    def play(self) -> Any:
        """(Re)start playing from the clock's position 0 (a worker)."""
        raise NotImplementedError

    def _publish(self) -> None:
        """Show the figures and the state line now."""
        raise NotImplementedError

    def action_toggle_pause(self) -> None:
        """Pause or resume the playback."""
        self.clock.set_paused(not self.clock.paused)
        self._publish()

    def _step_speed(self, step: int) -> None:
        current = self.clock.speed
        index = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - current))
        index = min(max(index + step, 0), len(SPEEDS) - 1)
        self.clock.set_speed(SPEEDS[index])
        self._publish()

    def action_slower(self) -> None:
        """Halve the speed (down to 0.25x)."""
        self._step_speed(-1)

    def action_faster(self) -> None:
        """Double the speed (up to 10x)."""
        self._step_speed(+1)

    def action_instant(self) -> None:
        """Play the rest at once: what is replayed is shown whole, as an instant replay
        shows it, rather than the rest of its events fed one by one (a long run has a
        million of them)."""
        playing = not (self.clock.instant or self.done or self.error is not None)
        self.clock.go_instant()
        if playing:
            self.play()
        self._publish()

    def action_restart(self) -> None:
        """Play it again from the start at the current speed (instant stays instant)."""
        instant = self.clock.instant
        self.clock = ReplayClock(self.clock.speed)
        if instant:
            self.clock.go_instant()
        self.remove_class("-error")
        self.error = None
        self.play()

    def action_close(self) -> None:
        """Back to where the replay was opened from (quit when it is the only screen)."""
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        else:
            self.app.exit()
