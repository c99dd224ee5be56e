"""RawEventLog: every server event of every attempt, for debugging gateways.

A :class:`~textual.widgets.Log` (Line API: renders only visible lines) with ``max_lines``.
It pulls from the run's bounded debug deque 10 times a second (on the app's
:class:`~tui.ui.ticker.Ticker`) while it is on screen, so a hidden raw view costs nothing.
It follows the newest events until the user scrolls up (``home``, page up, the wheel);
``end`` (or scrolling back to the bottom) follows again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Log

from tui.session import RAW_EVENT_LIMIT, DebugEvent, SessionRun
from tui.stream.events import Connecting, Resumed, Retrying, Started
from tui.ui.keymap import BINDING_IDS
from tui.ui.ticker import Ticker, not_subscribed
from tui.vocab import MISSING

RAW_REFRESH_HZ = 10.0

INTERESTING_HEADER_PREFIXES = (
    "x-request-id",
    "request-id",
    "x-ratelimit",
    "ratelimit",
    "retry-after",
)


def format_debug_event(event: DebugEvent) -> str:
    """One log line for a debug event (attempt boundaries are drawn as rules)."""
    if isinstance(event, tuple):
        t, attempt, name, data, event_id = event
        parts = [f"{t:9.3f}", f"#{attempt}"]
        if event_id is not None:
            parts.append(f"id={event_id}")
        parts.append(name or "message")
        parts.append(data)
        return "  ".join(parts)
    if isinstance(event, Connecting):
        return f"{event.t:9.3f}  ── attempt {event.attempt}: {event.method} {event.url}"
    if isinstance(event, Started):
        line = (
            f"{event.t:9.3f}  ── HTTP {event.http_status}  request id {event.request_id or MISSING}"
        )
        headers = [
            f"{k}: {v}"
            for k, v in event.headers
            if k.lower().startswith(INTERESTING_HEADER_PREFIXES)
        ]
        others = [f"{k}: {v}" for k, v in event.headers if f"{k}: {v}" not in headers]
        return "  ".join([line, *headers, *others])
    if isinstance(event, Retrying):
        cause = event.cause
        status = f" HTTP {cause.http_status}" if cause.http_status else ""
        return (
            f"{event.t:9.3f}  ── {event.mode} {event.attempt}/{event.max_retries} in "
            f"{event.delay_s:.2f} s: {cause.kind}{status}: {cause.message}"
        )
    if isinstance(event, Resumed):
        where = event.after_sequence if event.after_sequence is not None else event.last_event_id
        return f"{event.t:9.3f}  ── resumed (attempt {event.attempt}) after event {where}"
    error = f"  {event.error.kind}: {event.error.message}" if event.error else ""
    return (
        f"{event.t:9.3f}  ── finished {event.status} / {event.reason}"
        f" (raw {event.raw_reason!r}){error}"
    )


class RawEventLog(Log):
    """The raw events of one run, appended in batches while visible."""

    DEFAULT_CSS = """
    RawEventLog { height: 1fr; }
    """

    BINDING_GROUP_TITLE = "Raw events"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "top", "Top", id="raw.top", tooltip=BINDING_IDS["raw.top"], show=False),
        Binding(
            "end",
            "bottom",
            "Bottom",
            id="raw.bottom",
            tooltip=BINDING_IDS["raw.bottom"],
            show=False,
        ),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        # Room for the kept events plus the attempt summary written above them.
        super().__init__(max_lines=RAW_EVENT_LIMIT + 200, id=id, classes=classes, auto_scroll=True)
        self._run: SessionRun | None = None
        self._shown = 0
        self._untick: Callable[[], None] = not_subscribed

    def on_mount(self) -> None:
        self._untick = Ticker.of(self.app).subscribe(self, self._pull_shown, RAW_REFRESH_HZ)

    def on_unmount(self) -> None:
        self._untick()

    @property
    def following(self) -> bool:
        """True while new events scroll the log to its end."""
        return self.auto_scroll

    def action_top(self) -> None:
        """Jump to the first event and stay there while more arrive."""
        self.auto_scroll = False
        self.scroll_home(animate=False, immediate=True)

    def action_bottom(self) -> None:
        """Jump to the newest event and follow the new ones again."""
        self.auto_scroll = True
        self.scroll_end(animate=False, immediate=True)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # a scroll away from the end stops following; back at the end, it follows again
        self.auto_scroll = new_value >= self.max_scroll_y

    def follow_run(self, run: SessionRun | None) -> None:
        """Show ``run`` from its start (clears the log)."""
        self._run = run
        self._shown = 0
        self.clear()

    def pull(self) -> None:
        """Append the debug events that arrived since the last pull (only when visible)."""
        if self.is_on_screen:
            self._pull_shown()

    def _pull_shown(self) -> None:
        # The ticker calls this only while the log is on screen (or about to be).
        run = self._run
        if run is None or run.debug_total == self._shown:
            return
        new = run.debug_total - self._shown
        events = (
            list(run.debug_events)[-new:] if new < len(run.debug_events) else list(run.debug_events)
        )
        if new > len(run.debug_events):
            dropped = new - len(run.debug_events)
            self.write_line(f"… {dropped} older events not kept; the attempts so far:")
            kept = {id(e) for e in events}
            self.write_lines(
                [format_debug_event(e) for e in run.attempt_events if id(e) not in kept]
            )
        self.write_lines([format_debug_event(e) for e in events])
        self._shown = run.debug_total
