"""Ticker: the one periodic timer of the dashboard's views.

A view that refreshes itself a few times a second (the overview's rows, a pane's metrics, a
transcript's flush, the raw log) subscribes to its app's ticker with its rate instead of
running a timer of its own. The ticker runs one ``set_interval`` on the app at
:data:`BASE_HZ` and calls, on each of its ticks, the subscribers that are due and on screen:
a subscriber whose widget is in a hidden tab, or on a screen that is not on top, is not
called at all, so a hundred hidden panes cost nothing between ticks and one dictionary
look-up each on a tick.

A view about to be shown again catches up at once with :meth:`Ticker.catch_up` (the screen
calls it just before it shows the tab), so the first frame that shows it is current.

A subscriber that raises is logged and stays subscribed: a timer callback that raises would
end the app.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from textual.app import App
from textual.errors import NoWidget
from textual.timer import Timer
from textual.widget import Widget

log = logging.getLogger(__name__)

BASE_HZ = 20.0
"""The ticker's own rate: the fastest rate a subscriber gets (slower rates are multiples of
its period)."""

HIDDEN_BACKOFF_TICKS = 4
"""A subscriber found hidden is looked at again this many ticks later, not on every tick it
is due (a hundred hidden transcripts at 20 Hz were 2,000 look-ups a second); a view shown
again is caught up by :meth:`Ticker.catch_up` in any case."""


def not_subscribed() -> None:
    """The unsubscribe function of a widget before it subscribed (does nothing)."""


_TICKERS: weakref.WeakKeyDictionary[App[Any], Ticker] = weakref.WeakKeyDictionary()


@dataclass(eq=False, slots=True)
class Subscription:
    """One widget's periodic callback (see :meth:`Ticker.subscribe`)."""

    widget: Widget
    callback: Callable[[], object]
    every: int
    """Call it on every ``every``-th tick of the ticker."""
    when_hidden: bool
    """Call it also while its widget is not on screen."""
    phase: int = 0
    skip_until: int = 0
    """A subscriber found hidden is not looked at again before this tick."""
    calls: int = field(default=0)
    """How many times it was called (tests)."""


class Ticker:
    """The app's one periodic timer; views subscribe with their rate (:meth:`of`)."""

    def __init__(self, app: App[Any], *, hz: float = BASE_HZ) -> None:
        self.app = app
        self.hz = hz
        self._subs: list[Subscription] = []
        self._timer: Timer | None = None
        self._count = 0
        self.ticks = 0
        """How many ticks ran (tests)."""

    @classmethod
    def of(cls, app: App[Any]) -> Ticker:
        """The ticker of ``app`` (made on first use; it starts with its first subscriber)."""
        ticker = _TICKERS.get(app)
        if ticker is None:
            ticker = _TICKERS[app] = cls(app)
        return ticker

    @property
    def subscriptions(self) -> list[Subscription]:
        """The current subscriptions (a copy)."""
        return list(self._subs)

    def subscribe(
        self,
        widget: Widget,
        callback: Callable[[], object],
        hz: float,
        *,
        when_hidden: bool = False,
    ) -> Callable[[], None]:
        """Call ``callback`` about ``hz`` times a second (at most :data:`BASE_HZ`) while
        ``widget`` is on the screen on top (also when it is not: ``when_hidden``). Returns
        the unsubscribe function; the widget calls it when it unmounts (a subscription whose
        widget stopped running is dropped on the next tick anyway)."""
        every = max(1, round(self.hz / hz))
        # spread the slow subscribers over the ticks instead of calling them all at once
        sub = Subscription(widget, callback, every, when_hidden, phase=len(self._subs) % every)
        self._subs.append(sub)
        if self._timer is None:
            self._timer = self.app.set_interval(1 / self.hz, self._tick, name="ticker")

        def unsubscribe() -> None:
            if sub in self._subs:
                self._subs.remove(sub)

        return unsubscribe

    def _tick(self) -> None:
        self.ticks += 1
        count = self._count = self._count + 1
        try:
            screen = self.app.screen
        except Exception:  # no screen yet, or the app is closing
            return
        find = screen.find_widget
        gone: list[Subscription] = []
        for sub in self._subs:
            if (count + sub.phase) % sub.every or count < sub.skip_until:
                continue
            widget = sub.widget
            if not sub.when_hidden:
                try:
                    find(widget)
                except NoWidget:
                    if widget.is_mounted and not widget.is_running:
                        gone.append(sub)
                    sub.skip_until = count + HIDDEN_BACKOFF_TICKS
                    continue
            self._call(sub)
        for sub in gone:
            self._subs.remove(sub)

    def _call(self, sub: Subscription) -> None:
        sub.calls += 1
        try:
            sub.callback()
        except Exception:
            log.exception("periodic refresh of %r failed", sub.widget)

    def catch_up(self, root: Widget) -> None:
        """Call now every subscriber of ``root`` and of the widgets inside it, on screen or
        not: ``root`` is about to be shown, and its first frame must not be stale."""
        for sub in list(self._subs):
            if _shown_within(sub.widget, root):
                sub.skip_until = 0
                self._call(sub)

    def stop(self) -> None:
        """Stop the timer and drop every subscription (the app is closing)."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._subs.clear()


def _shown_within(widget: Widget, root: Widget) -> bool:
    """True when ``widget`` is ``root`` or inside it, and neither it nor a widget between
    it and ``root`` is hidden (``display: none``, like a raw log that is switched off)."""
    node: Any = widget
    while node is not None and node is not root:
        if not node.display:
            return False
        node = node.parent
    return node is root
