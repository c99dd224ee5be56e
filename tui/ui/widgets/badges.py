"""Badges that must not be missed: how a run ended, and what the reconnect logic is doing.

Both are plain :class:`Static` widgets whose state lives in reactives; the look comes from
CSS classes styled with theme variables in ``app.tcss`` (defaults in ``DEFAULT_CSS``): the
finish badge's tone (:func:`tui.ui.style.tone_class` of :func:`tui.vocab.outcome_tone`) and
the reconnect status's ``-retrying``, ``-resumed``, ``-reconnected``, ``-failed``.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.reactive import reactive
from textual.widgets import Static

from tui.stream.events import Finished, Resumed, Retrying, RunError, RunEvent, Started
from tui.ui.style import LOUD_TONES, TONE_CLASSES, tone_class
from tui.vocab import TONE_GLYPHS, outcome_tone

_TONE_CLASS_SET = frozenset(TONE_CLASSES)


class FinishBadge(Static):
    """Shows a run's final status and reason; ``length``, ``content_filter``, ``truncated``
    and failures get loud tones, a normal ``stop``/``completed`` a quiet one."""

    DEFAULT_CSS = """
    FinishBadge {
        width: auto;
        height: 1;
        padding: 0 1;
        text-style: bold;
    }
    FinishBadge.-running { color: $text-muted; text-style: none; }
    FinishBadge.-ok { background: $success-muted; color: $text-success; }
    FinishBadge.-warn { background: $warning; color: $background; }
    FinishBadge.-failed { background: $error; color: $background; }
    FinishBadge.-cancelled { background: $panel; color: $text-muted; }
    """

    status: reactive[str | None] = reactive(None)
    """Final run status (``completed``/``incomplete``/``failed``/``cancelled``), None live."""
    reason: reactive[str | None] = reactive(None)
    """Normalized finish reason, None while the run is live."""
    live_label: reactive[str] = reactive("running")
    """What the badge says while the run is live (``queued``, ``streaming``, ...)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes, markup=False)
        self._shown = ""

    def set_finished(self, event: Finished) -> None:
        """Show the outcome of a :class:`Finished` event."""
        self.status = event.status
        self.reason = event.reason

    def clear(self, live_label: str = "queued") -> None:
        """Back to the live state for a new run."""
        self.status = None
        self.reason = None
        self.live_label = live_label

    @property
    def text(self) -> str:
        """The badge text as displayed."""
        if self.status is None:
            return f"{TONE_GLYPHS['running']} {self.live_label}"
        tone = outcome_tone(self.status, self.reason)
        glyph = TONE_GLYPHS[tone]
        reason = self.reason or self.status
        loud = tone in LOUD_TONES
        label = reason.replace("_", " ")
        label = label.upper() if loud else label
        if reason != self.status and self.status not in ("completed",):
            label = f"{label} · {self.status}"
        return f"{glyph} {label}"

    def _refresh_badge(self) -> None:
        # Each of the three reactives calls this: only a real change of tone restyles the
        # badge (once), and only a new width lays it out again.
        classes = (self.classes - _TONE_CLASS_SET) | {
            tone_class(outcome_tone(self.status, self.reason))
        }
        if classes != self.classes:
            self.set_classes(classes)
        text = self.text
        if text != self._shown:
            resized = cell_len(text) != cell_len(self._shown)
            self._shown = text
            self.update(text, layout=resized)

    def watch_status(self) -> None:
        self._refresh_badge()

    def watch_reason(self) -> None:
        self._refresh_badge()

    def watch_live_label(self) -> None:
        self._refresh_badge()


def _cause(error: RunError) -> str:
    if error.http_status is not None:
        return f"HTTP {error.http_status}"
    return error.kind


class ReconnectStatus(Static):
    """The reconnect story of the current run, visible while it matters:
    ``retrying 2/4 in 1.6 s (HTTP 429)``, ``stalled 60 s, reconnecting``,
    ``resumed after event 812``, ``gave up after 4 retries: ...``.

    Hidden (``display: none``) until the first retry of a run.
    """

    DEFAULT_CSS = """
    ReconnectStatus { width: auto; height: 1; padding: 0 1; display: none; }
    ReconnectStatus.-retrying { display: block; color: $warning; text-style: bold; }
    ReconnectStatus.-resumed { display: block; color: $success; }
    ReconnectStatus.-reconnected { display: block; color: $text-muted; }
    ReconnectStatus.-failed { display: block; color: $error; text-style: bold; }
    """

    message: reactive[str] = reactive("")
    """The current reconnect message ("" = nothing to report)."""
    tone: reactive[str] = reactive("")
    """``retrying``, ``resumed``, ``reconnected``, ``failed`` or "" (hidden)."""

    def __init__(
        self,
        *,
        idle_timeout_s: float | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__("", id=id, classes=classes, markup=False)
        self.idle_timeout_s = idle_timeout_s
        self._retries = 0

    def clear(self) -> None:
        """Nothing to report (a new run)."""
        self._retries = 0
        self.message = ""
        self.tone = ""

    def apply(self, event: RunEvent) -> None:
        """Update from one run event (cheap; ignores events that do not matter here)."""
        if isinstance(event, Retrying):
            self._retries = max(self._retries, event.attempt)
            cause = event.cause
            if cause.kind == "stalled":
                idle = self.idle_timeout_s
                stalled = f"stalled {idle:g} s" if idle is not None else "stalled"
                text = f"{stalled}, reconnecting {event.attempt}/{event.max_retries}"
            elif event.mode == "resume":
                text = (
                    f"{cause.kind}, resuming {event.attempt}/{event.max_retries} "
                    f"in {event.delay_s:.1f} s"
                )
            elif event.mode == "restart":
                text = (
                    f"{cause.kind}, restarting {event.attempt}/{event.max_retries} "
                    f"in {event.delay_s:.1f} s"
                )
            else:
                text = (
                    f"retrying {event.attempt}/{event.max_retries} in {event.delay_s:.1f} s "
                    f"({_cause(cause)})"
                )
            self._set(text, "retrying")
        elif isinstance(event, Resumed):
            where = (
                event.after_sequence if event.after_sequence is not None else event.last_event_id
            )
            self._set(f"resumed after event {where}", "resumed")
        elif isinstance(event, Started) and self.tone == "retrying":
            self._set(f"connected on attempt {event.attempt}", "reconnected")
        elif isinstance(event, Finished):
            if event.status == "failed" and self._retries:
                why = event.error.message if event.error else event.reason
                if why.startswith("gave up after"):  # the engine already said it
                    self._set(why, "failed")
                else:
                    plural = "retry" if self._retries == 1 else "retries"
                    self._set(f"gave up after {self._retries} {plural}: {why}", "failed")
            elif self.tone == "retrying":
                self._set("", "")

    def _set(self, message: str, tone: str) -> None:
        self.message = message
        self.tone = tone

    def watch_message(self, message: str) -> None:
        self.update(message)

    def watch_tone(self, old: str, new: str) -> None:
        if old:
            self.remove_class(f"-{old}")
        if new:
            self.add_class(f"-{new}")
