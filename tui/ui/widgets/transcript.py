"""TranscriptView: one run rendered as it streams (answer, reasoning, tool calls, notices).

Cost model (STYLE.md section 3):

- :meth:`TranscriptView.apply` is O(1) per event: text goes into a pending list.
- A 20 Hz timer merges the pending text and appends it with ``Markdown.get_stream`` (only
  the new part is parsed). Hidden panes skip the flush, so background tabs buffer for free
  and render everything in one append when they are shown.
- Markdown re-parses from the start of its last block and copies its whole source on every
  append, so a very long answer is split into *segments*: once a segment passes
  :data:`SEGMENT_CHARS` the next flush starts a new Markdown widget (after a blank line outside a
  code fence). Each append then costs O(segment), and a 200k-token answer stays linear.
- Closed segments far from the view hide their blocks behind their measured height
  (:meth:`TranscriptView._virtualize`), so a layout only arranges the blocks near the view.
- When the run finishes, the last segment gets one full ``update`` (fixes code fences left
  half-rendered by the incremental parser, as oterm does).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Collapsible, Markdown, Static
from textual.widgets.markdown import MarkdownStream

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
from tui.ui.widgets.plain_text import PlainText
from tui.vocab import STATE_GLYPHS, TONE_GLYPHS

log = logging.getLogger(__name__)

FLUSH_HZ = 20.0
"""How often buffered text is pushed into the Markdown widgets."""

SEGMENT_CHARS = 4_000
"""Start a new Markdown segment once the current one holds this many characters."""

PLAIN_AFTER_CHARS = 24_000
"""Past this many characters the answer switches to a plain Line-API view: Markdown lays
out every block on each refresh, which made each flush slower as the answer grew."""


class TranscriptNotice(NamedTuple):
    """One line under the answer: a notice (a restart, a flagged event, the switch to plain
    text) or the error a failed run ended with; ``kind`` picks its CSS class
    (``transcript-notice`` / ``transcript-error``)."""

    kind: Literal["notice", "error"]
    text: str


@dataclass(slots=True)
class _ToolCallView:
    """Accumulated fragments of one tool call, and the Static that shows it."""

    index: int
    name: str | None = None
    call_id: str | None = None
    arguments: list[str] = field(default_factory=list)
    widget: Static | None = None
    dirty: bool = True

    def render_text(self) -> str:
        args = "".join(self.arguments)
        # Still streaming (or not JSON): show it as received.
        with contextlib.suppress(ValueError):
            args = json.dumps(json.loads(args), indent=2, ensure_ascii=False)
        head = f"⚙ {self.name or '…'}"
        if self.call_id:
            head += f"  ({self.call_id})"
        return f"{head}\n{args}" if args else head


class _MarkdownFeed:
    """A Markdown widget plus its stream and the text already handed to it."""

    def __init__(self, widget: Markdown) -> None:
        self.widget = widget
        self.stream: MarkdownStream | None = None
        self.chars = 0
        self.parts: list[str] = []
        self.closed = False
        """No more text comes (a later segment took over, or the run ended)."""
        self.frozen = False
        """Its blocks are hidden behind a fixed height (far out of view, see
        :meth:`TranscriptView._virtualize`)."""

    async def write(self, text: str) -> None:
        if self.stream is None:
            self.stream = Markdown.get_stream(self.widget)
        self.parts.append(text)
        self.chars += len(text)
        await self.stream.write(text)

    async def close(self, *, full_render: bool) -> None:
        self.closed = True
        if self.stream is not None:
            await self.stream.stop()
            self.stream = None
        if full_render and self.parts:
            await self.widget.update("".join(self.parts))

    async def abandon(self) -> None:
        """Stop the stream without rendering more (its widget is going away)."""
        stream, self.stream = self.stream, None
        if stream is None:
            return
        # MarkdownStream's updater is a bare asyncio task: left running, it outlives the
        # app and the loop reports "Task was destroyed but it is pending" at exit. Its
        # cancellation appends what is still queued, which fails on a removed widget.
        with contextlib.suppress(Exception):
            await stream.stop()

    @property
    def text(self) -> str:
        return "".join(self.parts)


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
        self._tools: dict[int, _ToolCallView] = {}
        self._notices: list[TranscriptNotice] = []
        self._notices_dirty = False
        self._segments: list[_MarkdownFeed] = []
        self._live_feeds: set[_MarkdownFeed] = set()
        """Answer segments not dropped yet, including those a reset is about to drop (their
        Markdown streams are stopped on unmount)."""
        self._reasoning_feed: _MarkdownFeed | None = None
        self._finished = False
        self._final_done = False
        self._flushing = False
        self._generation = 0
        self._in_fence = False
        self._line_carry = ""
        self._lock = asyncio.Lock()
        self._follow = True
        self._plain: PlainText | None = None
        self._virtual_width = 0
        self._has_output = False
        self._pending_since: float | None = None
        self.display_lags: deque[float] = deque(maxlen=2_000)
        """Seconds from the oldest buffered text to its render, per flush (while shown)."""

    def compose(self) -> ComposeResult:
        with Collapsible(title="reasoning", collapsed=True, id="reasoning"):
            yield Markdown(id="reasoning-md")
        yield Vertical(id="tools")
        yield Static(self._placeholder, id="placeholder")
        yield Vertical(id="answer")
        yield Vertical(id="notices")

    def on_mount(self) -> None:
        self._reasoning_feed = _MarkdownFeed(self.query_one("#reasoning-md", Markdown))
        self.set_interval(1 / FLUSH_HZ, self._tick, name="transcript-flush")

    async def on_unmount(self) -> None:
        # Stop every Markdown stream (answer segments and reasoning) with the view.
        feeds = [*self._live_feeds]
        if self._reasoning_feed is not None:
            feeds.append(self._reasoning_feed)
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
    # whole subtree, hundreds of Markdown blocks in a long answer (50-200 ms each time).

    @property
    def has_output(self) -> bool:
        """True once answer text (or a tool call) of this run was rendered."""
        return self._has_output

    @property
    def plain_mode(self) -> bool:
        """True once the answer switched to the plain Line-API view (a very long answer)."""
        return self._plain is not None

    def _set_state(
        self, *, has_reasoning: bool | None = None, has_output: bool | None = None
    ) -> None:
        """Show the reasoning block and the placeholder as the run's state says (the
        placeholder goes once there is output or the run's end was rendered)."""
        if has_output is not None:
            self._has_output = has_output
        if has_reasoning is not None and self.is_mounted:
            self.query_one("#reasoning").display = has_reasoning
        if self.is_mounted:
            self.query_one("#placeholder").display = not (self._has_output or self._final_done)

    # -- feeding ----

    @property
    def text(self) -> str:
        """The whole answer text received so far (including what is not rendered yet)."""
        return "".join(self._received)

    @property
    def rendered_text(self) -> str:
        """The answer text the Markdown widgets hold."""
        if self._plain is not None:
            return self._plain.text
        return "".join(seg.text for seg in self._segments)

    @property
    def reasoning_text(self) -> str:
        """All reasoning text received so far."""
        return "".join(self._reasoning)

    @property
    def notices(self) -> list[str]:
        """The notice lines shown under the answer (restarts, flagged stops, errors)."""
        return [notice.text for notice in self._notices]

    @property
    def has_pending(self) -> bool:
        """True while received content waits for the next flush."""
        return bool(
            self._pending_text
            or self._pending_reasoning
            or self._notices_dirty
            or any(t.dirty for t in self._tools.values())
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
        self._tools = {}
        self._notices = []
        self._notices_dirty = False
        self._finished = False
        self._final_done = False
        self._in_fence = False
        self._line_carry = ""
        old_segments, self._segments = self._segments, []
        old_plain, self._plain = self._plain, None
        self._set_state(has_reasoning=False, has_output=False)
        if self.is_mounted:
            self.run_worker(
                self._clear(old_segments, old_plain), group="transcript-reset", exit_on_error=False
            )

    async def _clear(self, old_segments: list[_MarkdownFeed], old_plain: PlainText | None) -> None:
        async with self._lock:
            await self._drop_answer(old_segments, old_plain)
            await self.query_one("#tools").remove_children()
            await self.query_one("#notices").remove_children()
            await self._clear_reasoning()
            self.anchor(False)
            self.scroll_home(animate=False, immediate=True)

    async def _drop_answer(
        self, old_segments: list[_MarkdownFeed], old_plain: PlainText | None
    ) -> None:
        # Remove exactly the old widgets: a flush may already have mounted new ones.
        for seg in old_segments:
            await seg.close(full_render=False)
            self._live_feeds.discard(seg)
        widgets: list[Widget] = [seg.widget for seg in old_segments]
        if old_plain is not None:
            widgets.append(old_plain)
        if widgets:
            await self.query_one("#answer").remove_children(widgets)

    async def _clear_reasoning(self) -> None:
        if self._reasoning_feed is not None:
            await self._reasoning_feed.close(full_render=False)
            self._reasoning_feed.parts.clear()
            self._reasoning_feed.chars = 0
            await self._reasoning_feed.widget.update("")

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
            view = self._tools.get(event.index)
            if view is None:
                view = self._tools[event.index] = _ToolCallView(event.index)
            if event.name:
                view.name = event.name
            if event.call_id:
                view.call_id = event.call_id
            if event.arguments:
                view.arguments.append(event.arguments)
            view.dirty = True
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
        self._notices.append(TranscriptNotice(kind, text))
        self._notices_dirty = True

    def _restart_answer(self, attempt: int) -> None:
        self._generation += 1  # an in-flight flush stops writing the old attempt's text
        self._pending_text.clear()
        self._pending_since = None
        self._pending_reasoning.clear()
        self._received = []
        self._reasoning = []
        self._tools = {}
        self._add_notice(
            f"{STATE_GLYPHS['retrying']} restarted (retry {attempt}): the answer starts over",
            "notice",
        )
        old_segments, self._segments = self._segments, []
        old_plain, self._plain = self._plain, None
        self._in_fence = False
        self._line_carry = ""
        if self.is_mounted:
            self.run_worker(
                self._drop_segments(old_segments, old_plain),
                group="transcript-reset",
                exit_on_error=False,
            )

    async def _drop_segments(
        self, old_segments: list[_MarkdownFeed], old_plain: PlainText | None
    ) -> None:
        async with self._lock:
            await self._drop_answer(old_segments, old_plain)
            await self.query_one("#tools").remove_children()
            await self._clear_reasoning()

    # -- virtual segments ----

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._virtualize()

    def _virtualize(self) -> None:
        """Hide the blocks of closed segments far from the view behind their measured height,
        and show them again as the view comes near.

        Every layout arranges every Markdown block of the answer, so a long answer made each
        flush slower (hundreds of block widgets, 60-300 ms layouts under load); with this, a
        layout sees the live segment and the ones within a screen of the view. The scroll
        height stays exact: a frozen segment keeps the height it had at this width (a new
        width shows everything again, the next ticks freeze anew)."""
        if len(self._segments) < 2:  # only the live segment: nothing to hide
            return
        width = self.size.width
        if width != self._virtual_width:
            self._virtual_width = width
            for seg in self._segments:
                if seg.frozen:
                    self._thaw(seg)
            return
        view = self.region
        margin = max(view.height, 10)
        low, high = view.y - margin, view.bottom + margin
        for seg in self._segments[:-1]:
            if not seg.closed:
                continue
            region = seg.widget.region
            near = region.bottom > low and region.y < high
            if seg.frozen:
                if near:
                    self._thaw(seg)
            elif not near and region.height > 0:
                seg.frozen = True
                seg.widget.styles.height = region.height
                # inline styles, not a class: a class change restyles the whole subtree
                for block in seg.widget.children:
                    block.display = False

    @staticmethod
    def _thaw(seg: _MarkdownFeed) -> None:
        seg.frozen = False
        for block in seg.widget.children:
            block.display = True
        seg.widget.styles.height = None

    # -- flushing ----

    def _tick(self) -> None:
        if self._follow and not self.is_anchored and self.max_scroll_y > 0:
            # Content can grow after a flush (Markdown mounts blocks later): pin it now.
            self.anchor()
        self._virtualize()
        if self._flushing or not self.has_pending or not self.is_on_screen:
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
        if any(t.dirty for t in self._tools.values()):
            await self._render_tools()
            if self._stale(generation):
                return
        if self._notices_dirty:
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
            if self._segments and self._plain is None:
                await self._segments[-1].close(full_render=True)
            if self._reasoning_feed is not None:
                await self._reasoning_feed.close(full_render=True)

    async def _write_answer(self, chunk: str, generation: int) -> None:
        """Append ``chunk`` (answer text of ``generation``) to the answer widgets."""
        if self._stale(generation):  # the text of a run (or attempt) that is gone
            return
        if self._plain is not None:
            self._plain.append(chunk)
            return
        if sum(seg.chars for seg in self._segments) + len(chunk) > PLAIN_AFTER_CHARS:
            await self._switch_to_plain(chunk, generation)
            return
        segment = self._segments[-1] if self._segments else None
        if segment is not None and segment.chars >= SEGMENT_CHARS:
            cut = self._paragraph_cut(chunk)
            if cut >= 0:
                head, chunk = chunk[:cut], chunk[cut:]
                if head:
                    self._track_fences(head)
                    await segment.write(head)
                await segment.close(full_render=False)
                if self._stale(generation):
                    return
                segment = None
        if segment is None:
            segment = _MarkdownFeed(Markdown(classes="answer-segment"))
            # Listed before the mount: a reset during the mount drops it with the others.
            self._segments.append(segment)
            self._live_feeds.add(segment)
            await self.query_one("#answer").mount(segment.widget)
            if self._stale(generation):
                return
        if chunk:
            self._track_fences(chunk)
            await segment.write(chunk)

    async def _switch_to_plain(self, chunk: str, generation: int) -> None:
        text = "".join(seg.text for seg in self._segments) + chunk
        old_segments, self._segments = self._segments, []
        # Current before the first await: a reset meanwhile drops it like any answer widget.
        self._plain = plain = PlainText(text, classes="answer-plain")
        self._add_notice(
            "long answer: shown as plain text (Markdown is off past 24,000 characters)", "notice"
        )
        await self.query_one("#answer").mount(plain)
        await self._drop_answer(old_segments, None)  # these are ours to drop in any case
        if not self._stale(generation):
            await self._render_notices()

    def _paragraph_cut(self, chunk: str) -> int:
        """Where a new segment may start in ``chunk``: just after its last blank line, if
        that point is outside a code fence; -1 when there is no such point (yet)."""
        text = self._line_carry + chunk
        cut = text.rfind("\n\n")
        if cut < 0:
            return -1
        in_fence = self._in_fence
        for line in text[:cut].split("\n"):
            stripped = line.lstrip()
            if stripped.startswith("```") or stripped.startswith("~~~"):
                in_fence = not in_fence
        position = cut + 2 - len(self._line_carry)
        # A blank line inside the carried-over text was already written: no cut there.
        return -1 if in_fence or position < 0 else position

    def _track_fences(self, chunk: str) -> None:
        lines = (self._line_carry + chunk).split("\n")
        self._line_carry = lines.pop()
        for line in lines:
            stripped = line.lstrip()
            if stripped.startswith("```") or stripped.startswith("~~~"):
                self._in_fence = not self._in_fence

    async def _render_tools(self) -> None:
        container = self.query_one("#tools")
        tools = self._tools  # a reset during a mount below replaces the dict
        for index in sorted(tools):
            view = tools[index]
            if not view.dirty:
                continue
            view.dirty = False
            if view.widget is None:
                view.widget = Static(view.render_text(), classes="tool-call", markup=False)
                await container.mount(view.widget)
            else:
                view.widget.update(view.render_text())
        self._set_state(has_output=True)

    async def _render_notices(self) -> None:
        self._notices_dirty = False
        container = self.query_one("#notices")
        shown = len(container.children)
        new = [
            Static(notice.text, classes=f"transcript-{notice.kind}", markup=False)
            for notice in self._notices[shown:]
        ]
        if new:
            await container.mount_all(new)
