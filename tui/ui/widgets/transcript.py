"""TranscriptView: one run rendered as it streams (answer, reasoning, tool calls, notices).

- :meth:`TranscriptView.apply` is O(1) per event: text goes into a pending list.
- 20 times a second (on the app's :class:`~tui.ui.ticker.Ticker`) the pending text is
  merged and appended to the answer (:class:`~tui.ui.widgets.answer.SegmentedAnswer`:
  Markdown segments, plain text past a size) and the reasoning. The ticker does not call a
  view that is not on screen, so a background tab only buffers, and renders everything in
  one append when it is shown (``Ticker.catch_up``).
- The view stays pinned to the end with Textual's ``anchor()`` while it follows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Markdown, Static

from tui.stream.events import (
    Finished,
    Notice,
    ReasoningDelta,
    Retrying,
    RunEvent,
    TextDelta,
    ToolCallDelta,
)
from tui.ui.textual_private import anchor_released
from tui.ui.ticker import Ticker, not_subscribed
from tui.ui.widgets.answer import (
    PLAIN_AFTER_CHARS,
    MarkdownFeed,
    SegmentedAnswer,
    focus_restyled_nodes,
)
from tui.ui.widgets.transcript_items import Notices, ReasoningBlock, ReasoningText, ToolCalls
from tui.vocab import STATE_GLYPHS, TONE_GLYPHS

log = logging.getLogger(__name__)

FLUSH_HZ = 20.0
"""How often buffered text is pushed into the Markdown widgets."""


class TranscriptView(VerticalScroll):
    """Renders one run: streamed Markdown answer, collapsible reasoning, tool calls.

    Feed it with :meth:`apply` (cheap, buffers) and :meth:`reset` for a new run; it flushes
    itself at :data:`FLUSH_HZ` while on screen. :attr:`text` is everything received,
    :attr:`rendered_text` what the Markdown widgets hold (equal once :meth:`flush` ran).
    """

    DEFAULT_CSS = """
    TranscriptView {
        height: 1fr;
        padding: 0 1;
    }
    TranscriptView > #reasoning { display: none; margin: 0 0 1 0; }
    TranscriptView #tools { height: auto; }
    TranscriptView .tool-call { margin: 0 0 1 0; padding: 0 1; }
    TranscriptView #answer { height: auto; }
    TranscriptView #answer > Markdown { margin: 0; padding: 0; }
    TranscriptView #notices { height: auto; }
    TranscriptView #placeholder { color: $text-muted; }
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        placeholder: str = "waiting for the first token…",
        show_errors: bool = True,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._placeholder = placeholder
        self.show_errors = show_errors
        """Show a failed run's error at the end of the transcript (off when the owner
        shows it elsewhere, like the session pane's banner)."""
        self._pending_text: list[str] = []
        self._pending_reasoning: list[str] = []
        self._received: list[str] = []
        self._reasoning: list[str] = []
        self._tools = ToolCalls()
        self._notices = Notices()
        self._live_feeds: set[MarkdownFeed] = set()
        """Answer segments not dropped yet, including those a reset is about to drop (their
        Markdown streams are stopped on unmount)."""
        self._answer = SegmentedAnswer(self._live_feeds)
        self._reasoning_feed: ReasoningText | None = None
        self._finished = False
        self._final_done = False
        self._flushing = False
        self._generation = 0
        self._lock = asyncio.Lock()
        self._follow = True
        self._has_output = False
        self._pending_since: float | None = None
        self.display_lags: deque[float] = deque(maxlen=2_000)
        """Seconds from the oldest buffered text to its render, per flush (while shown)."""
        self._untick: Callable[[], None] = not_subscribed
        # kept, not queried: they are set on every run start, also while the app closes
        self._reasoning_block = ReasoningBlock(id="reasoning")
        self._placeholder_line = Static(placeholder, id="placeholder")

    def compose(self) -> ComposeResult:
        with self._reasoning_block:
            yield Markdown(id="reasoning-md")
        yield Vertical(id="tools")
        yield self._placeholder_line
        yield Vertical(id="answer")
        yield Vertical(id="notices")

    def on_mount(self) -> None:
        self._reasoning_feed = ReasoningText(self.query_one("#reasoning-md", Markdown))
        self._untick = Ticker.of(self.app).subscribe(self, self._tick, FLUSH_HZ)

    async def on_unmount(self) -> None:
        self._untick()
        # Stop every Markdown stream (answer segments and reasoning) with the view.
        feeds = [*self._live_feeds]
        if self._reasoning_feed is not None:
            feeds.append(self._reasoning_feed.feed)
        for feed in feeds:
            await feed.abandon()

    def on_show(self) -> None:
        self.call_after_refresh(self._maybe_anchor)

    def on_resize(self) -> None:
        self.call_after_refresh(self._maybe_anchor)

    def _maybe_anchor(self) -> None:
        # Textual's anchor bottom-aligns content shorter than the view (chat style), which
        # leaves a short answer floating at the bottom: anchor only once the view overflows.
        if self._follow and not self.is_anchored and self.max_scroll_y > 0:
            self.anchor()

    # -- state ----
    # Set on the widgets themselves, not as classes of the view: a class change restyles the
    # whole subtree, which holds every Markdown block of the answer.

    def toggle_reasoning(self) -> bool | None:
        """Open or close the reasoning block: True once open, False once closed, None when
        the run has no reasoning."""
        if not self._reasoning:
            return None
        block = self.query_one("#reasoning", ReasoningBlock)
        block.collapsed = not block.collapsed
        return not block.collapsed

    @property
    def has_output(self) -> bool:
        """True once answer text (or a tool call) of this run was rendered."""
        return self._has_output

    @property
    def plain_mode(self) -> bool:
        """True once the answer switched to the plain Line-API view (a very long answer)."""
        return self._answer.plain is not None

    def _set_state(
        self, *, has_reasoning: bool | None = None, has_output: bool | None = None
    ) -> None:
        """Show the reasoning block and the placeholder as the run's state says (the
        placeholder goes once there is output or the run's end was rendered)."""
        if has_output is not None:
            self._has_output = has_output
        if has_reasoning is not None:
            self._reasoning_block.display = has_reasoning
        self._placeholder_line.display = not (self._has_output or self._final_done)

    # -- feeding ----

    @property
    def text(self) -> str:
        """The whole answer text received so far (including what is not rendered yet)."""
        return "".join(self._received)

    @property
    def rendered_text(self) -> str:
        """The answer text the answer's widgets hold."""
        return self._answer.text

    @property
    def reasoning_text(self) -> str:
        """All reasoning text received so far."""
        return "".join(self._reasoning)

    @property
    def notices(self) -> list[str]:
        """The notice lines shown under the answer (restarts, flagged stops, errors)."""
        return [notice.text for notice in self._notices.items]

    @property
    def has_pending(self) -> bool:
        """True while received content waits for the next flush."""
        return bool(
            self._pending_text
            or self._pending_reasoning
            or self._notices.dirty
            or self._tools.dirty
            or (self._finished and not self._final_done)
        )

    @property
    def following(self) -> bool:
        """True while the view is pinned to the end (a user scroll up releases the anchor;
        scrolling back to the end re-engages it)."""
        return self._follow and not (self.is_anchored and anchor_released(self))

    def set_following(self, follow: bool) -> None:
        """Pin the view to the end (and jump there), or stop pinning it."""
        self._follow = follow
        if follow:
            self.anchor(False)
            self.scroll_end(animate=False, immediate=True)
            self._maybe_anchor()
        else:
            self.anchor(False)

    def reset(self) -> None:
        """Forget the current run and clear the view (for a new run)."""
        self._generation += 1
        self._pending_text.clear()
        self._pending_since = None
        self._pending_reasoning.clear()
        self._received = []
        self._reasoning = []
        self._tools = ToolCalls()
        self._notices = Notices()
        self._finished = False
        self._final_done = False
        old_answer, self._answer = self._answer, SegmentedAnswer(self._live_feeds)
        self._set_state(has_reasoning=False, has_output=False)
        if self.is_mounted:
            self.run_worker(self._clear(old_answer), group="transcript-reset", exit_on_error=False)

    async def _clear(self, old_answer: SegmentedAnswer) -> None:
        async with self._lock:
            await old_answer.drop(self.query_one("#answer"))
            await self.query_one("#tools").remove_children()
            await self.query_one("#notices").remove_children()
            await self._clear_reasoning()
            self.anchor(False)
            self.scroll_home(animate=False, immediate=True)

    async def _clear_reasoning(self) -> None:
        if self._reasoning_feed is not None:
            await self._reasoning_feed.clear()

    def apply(self, event: RunEvent) -> None:
        """Take one event into the buffers (O(1)); rendering happens on the next flush."""
        if isinstance(event, TextDelta):
            if event.text:
                if not self._pending_text:
                    self._pending_since = time.monotonic()
                self._pending_text.append(event.text)
                self._received.append(event.text)
        elif isinstance(event, ReasoningDelta):
            if event.text:
                self._pending_reasoning.append(event.text)
                self._reasoning.append(event.text)
        elif isinstance(event, ToolCallDelta):
            self._tools.apply(event)
        elif isinstance(event, Notice):
            self._add_notice(f"⚑ {event.code}: {event.message}", "notice")
        elif isinstance(event, Retrying) and event.mode == "restart":
            # A restart is a new request: its text starts over, the earlier partial
            # output stays in the store as that attempt's record.
            self._restart_answer(event.attempt)
        elif isinstance(event, Finished):
            self._finished = True
            if event.error is not None and self.show_errors:
                self._add_notice(
                    f"{TONE_GLYPHS['failed']} {event.error.kind}: {event.error.message}", "error"
                )

    def _add_notice(self, text: str, kind: Literal["notice", "error"]) -> None:
        self._notices.add(text, kind)

    def _restart_answer(self, attempt: int) -> None:
        self._generation += 1  # an in-flight flush stops writing the old attempt's text
        self._pending_text.clear()
        self._pending_since = None
        self._pending_reasoning.clear()
        self._received = []
        self._reasoning = []
        self._tools = ToolCalls()
        self._add_notice(
            f"{STATE_GLYPHS['retrying']} restarted (retry {attempt}): the answer starts over",
            "notice",
        )
        old_answer, self._answer = self._answer, SegmentedAnswer(self._live_feeds)
        if self.is_mounted:
            self.run_worker(
                self._drop_attempt(old_answer), group="transcript-reset", exit_on_error=False
            )

    async def _drop_attempt(self, old_answer: SegmentedAnswer) -> None:
        async with self._lock:
            await old_answer.drop(self.query_one("#answer"))
            await self.query_one("#tools").remove_children()
            await self._clear_reasoning()

    # -- virtual segments ----

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._virtualize()

    def watch_has_focus(self, has_focus: bool) -> None:
        self.app.stylesheet.update_nodes(focus_restyled_nodes(self, self._answer), animate=True)

    def _virtualize(self) -> None:
        """Let the answer hide the segments far from the view (see
        :meth:`SegmentedAnswer.virtualize`); a new width shows them all again first."""
        self._answer.virtualize(self.region, self.size.width)

    # -- flushing ----

    def _tick(self) -> None:
        # The ticker calls this only while the view is on screen, or about to be shown
        # (Ticker.catch_up). Content can grow after a flush (Markdown mounts blocks later).
        self._maybe_anchor()
        self._virtualize()
        if self._flushing or not self.has_pending:
            return
        self._flushing = True
        self.run_worker(self._flush_once(), group="transcript-flush", exit_on_error=False)

    async def _flush_once(self) -> None:
        # A worker error ends the app by default: a failed render is logged instead (the
        # text stays received; the next flush goes on with what arrives next).
        try:
            await self.flush()
        except Exception:
            log.exception("transcript flush failed")
        finally:
            self._flushing = False

    async def flush(self) -> None:
        """Render everything buffered now (the timer calls this; tests may too)."""
        async with self._lock:
            await self._flush_locked()

    def _stale(self, generation: int) -> bool:
        """True once a new run (reset) or a restart began after ``generation``."""
        return generation != self._generation

    async def _flush_locked(self) -> None:
        # Any await below can let a new run begin (reset) or a restart: from then on the
        # buffers and the widget lists belong to the new content, so this flush stops. What
        # it mounted is dropped by the reset's cleanup, which waits for the lock.
        generation = self._generation
        if self._pending_reasoning and self._reasoning_feed is not None:
            chunk = "".join(self._pending_reasoning)
            self._pending_reasoning.clear()
            self._set_state(has_reasoning=True)
            await self._reasoning_feed.write(chunk)
            if self._stale(generation):
                return
        if self._tools.dirty:
            await self._render_tools()
            if self._stale(generation):
                return
        if self._notices.dirty:
            await self._render_notices()
            if self._stale(generation):
                return
        if self._pending_text:
            chunk = "".join(self._pending_text)
            self._pending_text.clear()
            self._set_state(has_output=True)
            await self._write_answer(chunk, generation)
            if self._stale(generation):
                return
            if self._pending_since is not None:
                self.display_lags.append(time.monotonic() - self._pending_since)
                self._pending_since = None
        if self._follow and not self.is_anchored:
            self.call_after_refresh(self._maybe_anchor)
        if self._finished and not self._final_done:
            self._final_done = True
            self._set_state()
            await self._answer.finish()
            if self._reasoning_feed is not None:
                await self._reasoning_feed.close(full_render=True)

    async def _write_answer(self, chunk: str, generation: int) -> None:
        """Append ``chunk`` (answer text of ``generation``) to the answer widgets."""
        if self._stale(generation):  # the text of a run (or attempt) that is gone
            return
        answer = self._answer
        switching = answer.switches_to_plain(chunk)
        if switching:
            self._add_notice(
                "long answer: shown as plain text "
                f"(Markdown is off past {PLAIN_AFTER_CHARS:,} characters)",
                "notice",
            )
        await answer.write(chunk, self.query_one("#answer"), lambda: self._stale(generation))
        if switching and not self._stale(generation):
            await self._render_notices()

    async def _render_tools(self) -> None:
        # Renders this attempt's calls even if a reset replaces self._tools during a mount.
        await self._tools.render(self.query_one("#tools"))
        self._set_state(has_output=True)

    async def _render_notices(self) -> None:
        await self._notices.render(self.query_one("#notices"))
