"""The streamed answer of one run: Markdown segments, then plain text past a size.

:class:`SegmentedAnswer` holds one run's answer widgets for :class:`TranscriptView`:

- Text goes into Markdown widgets through ``Markdown.get_stream`` (only the new part is
  parsed). Markdown re-parses from the start of its last block and copies its whole source on
  every append, so the answer is a series of *segments*: once a segment holds
  :data:`SEGMENT_CHARS`, the next write starts a new Markdown widget after a blank line
  outside a code fence. An append costs O(segment), whatever the length of the answer.
- Closed segments far from the view hide their blocks behind their measured height
  (:meth:`SegmentedAnswer.virtualize`), so a layout arranges only the blocks near the view.
- Past :data:`PLAIN_AFTER_CHARS` the answer becomes one :class:`PlainText` (a Line-API view
  whose cost does not grow with the text).
- When the run ends, the last segment gets one full ``update``, which fixes code fences the
  incremental parser left half-rendered.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

from textual.dom import DOMNode
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownStream

from tui.ui.widgets.plain_text import PlainText

SEGMENT_CHARS = 4_000
"""Start a new Markdown segment once the current one holds this many characters."""

PLAIN_AFTER_CHARS = 24_000
"""Past this many characters the answer switches to a plain Line-API view: Markdown lays
out every block on each layout refresh, so its cost grows with the answer."""


class MarkdownFeed:
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
        :meth:`SegmentedAnswer.virtualize`)."""
        self.restyle_on_thaw = False
        """A focus restyle left its hidden blocks out (see :func:`focus_restyled_nodes`)."""

    async def write(self, text: str) -> None:
        """Append ``text`` through the widget's Markdown stream."""
        if self.stream is None:
            self.stream = Markdown.get_stream(self.widget)
        self.parts.append(text)
        self.chars += len(text)
        await self.stream.write(text)

    async def close(self, *, full_render: bool) -> None:
        """No more text: stop the stream (and render the whole text once if asked)."""
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

    def freeze(self, height: int) -> None:
        """Hide the blocks behind a fixed ``height`` (inline styles, not a class: a class
        change restyles the whole subtree)."""
        self.frozen = True
        self.widget.styles.height = height
        for block in self.widget.children:
            block.display = False

    def thaw(self) -> None:
        """Show the blocks again at their natural height."""
        self.frozen = False
        for block in self.widget.children:
            block.display = True
        self.widget.styles.height = None
        if self.restyle_on_thaw:
            self.restyle_on_thaw = False
            self.widget.app.stylesheet.update_nodes(self.widget.walk_children(), animate=True)

    @property
    def text(self) -> str:
        """The text handed to the widget."""
        return "".join(self.parts)


def focus_restyled_nodes(root: Widget, answer: SegmentedAnswer) -> Iterator[DOMNode]:
    """``root`` and its descendants, but not the hidden blocks of ``answer``'s frozen
    segments (marked to be restyled when they show again).

    Textual restyles a widget's whole subtree when its focus changes; for a transcript that
    is every Markdown block of a long answer, most of them hidden far out of view.
    """
    frozen = {seg.widget: seg for seg in answer.segments if seg.frozen}
    stack: list[DOMNode] = [root]
    while stack:
        node = stack.pop()
        yield node
        seg = frozen.get(node) if isinstance(node, Markdown) else None
        if seg is not None:
            seg.restyle_on_thaw = True
        else:
            stack.extend(reversed(node.children))


def _toggles_fence(line: str) -> bool:
    stripped = line.lstrip()
    return stripped.startswith("```") or stripped.startswith("~~~")


class SegmentedAnswer:
    """One run's answer widgets: Markdown segments, or one :class:`PlainText`.

    A new run (or a restart) gets a new instance; the old one's widgets go with
    :meth:`drop`. Every Markdown feed it creates is added to ``live_feeds`` (the owner stops
    their streams on unmount) and removed again when dropped.
    """

    def __init__(self, live_feeds: set[MarkdownFeed]) -> None:
        self.segments: list[MarkdownFeed] = []
        """The Markdown segments, in order (the last one is the live one)."""
        self.plain: PlainText | None = None
        """The plain view, once the answer switched to it."""
        self._live_feeds = live_feeds
        self._in_fence = False
        self._line_carry = ""
        self._virtual_width = 0

    @property
    def text(self) -> str:
        """The answer text the widgets hold."""
        if self.plain is not None:
            return self.plain.text
        return "".join(seg.text for seg in self.segments)

    def switches_to_plain(self, chunk: str) -> bool:
        """True when writing ``chunk`` next switches the answer to the plain view."""
        return (
            self.plain is None
            and sum(seg.chars for seg in self.segments) + len(chunk) > PLAIN_AFTER_CHARS
        )

    async def write(self, chunk: str, container: Widget, stale: Callable[[], bool]) -> None:
        """Append ``chunk``, mounting new widgets in ``container``.

        ``stale`` is asked after every await: once it returns True (a new run or a restart
        began) nothing more is written; whatever this answer mounted goes with its
        :meth:`drop`.
        """
        if self.plain is not None:
            self.plain.append(chunk)
            return
        if self.switches_to_plain(chunk):
            await self._switch_to_plain(chunk, container)
            return
        segment = self.segments[-1] if self.segments else None
        if segment is not None and segment.chars >= SEGMENT_CHARS:
            cut = self._paragraph_cut(chunk)
            if cut >= 0:
                head, chunk = chunk[:cut], chunk[cut:]
                if head:
                    self._track_fences(head)
                    await segment.write(head)
                await segment.close(full_render=False)
                if stale():
                    return
                segment = None
        if segment is None:
            segment = MarkdownFeed(Markdown(classes="answer-segment"))
            # Listed before the mount: a drop during the mount removes it with the others.
            self.segments.append(segment)
            self._live_feeds.add(segment)
            await container.mount(segment.widget)
            if stale():
                return
        if chunk:
            self._track_fences(chunk)
            await segment.write(chunk)

    async def _switch_to_plain(self, chunk: str, container: Widget) -> None:
        text = "".join(seg.text for seg in self.segments) + chunk
        old_segments, self.segments = self.segments, []
        # Set before the first await: a drop meanwhile removes it like any answer widget.
        self.plain = plain = PlainText(text, classes="answer-plain")
        await container.mount(plain)
        await self._drop(old_segments, None, container)  # these are ours to drop in any case

    async def finish(self) -> None:
        """The run ended: render the last segment once in full."""
        if self.segments and self.plain is None:
            await self.segments[-1].close(full_render=True)

    async def drop(self, container: Widget) -> None:
        """Stop this answer's Markdown streams and remove its widgets from ``container``."""
        await self._drop(self.segments, self.plain, container)

    async def _drop(
        self, segments: Sequence[MarkdownFeed], plain: PlainText | None, container: Widget
    ) -> None:
        # Remove exactly these widgets: the container may already hold a newer answer's.
        for seg in segments:
            await seg.close(full_render=False)
            self._live_feeds.discard(seg)
        widgets: list[Widget] = [seg.widget for seg in segments]
        if plain is not None:
            widgets.append(plain)
        if widgets:
            await container.remove_children(widgets)

    # -- segments --

    def _paragraph_cut(self, chunk: str) -> int:
        """Where a new segment may start in ``chunk``: just after its last blank line, if
        that point is outside a code fence; -1 when there is no such point (yet)."""
        text = self._line_carry + chunk
        cut = text.rfind("\n\n")
        if cut < 0:
            return -1
        in_fence = self._in_fence
        for line in text[:cut].split("\n"):
            if _toggles_fence(line):
                in_fence = not in_fence
        position = cut + 2 - len(self._line_carry)
        # A blank line inside the carried-over text was already written: no cut there.
        return -1 if in_fence or position < 0 else position

    def _track_fences(self, chunk: str) -> None:
        lines = (self._line_carry + chunk).split("\n")
        self._line_carry = lines.pop()
        for line in lines:
            if _toggles_fence(line):
                self._in_fence = not self._in_fence

    # -- virtual segments --

    def virtualize(self, view: Region, width: int) -> None:
        """Hide the blocks of closed segments far from ``view`` (the scroll view's region,
        ``width`` its width) behind their measured height, and show them again as the view
        comes near.

        A layout then arranges the live segment and the ones within a screen of the view,
        not every block of the answer. The scroll height stays exact: a frozen segment keeps
        the height it had; a new width shows every segment again first (the heights no
        longer hold).
        """
        if len(self.segments) < 2:  # only the live segment: nothing to hide
            return
        if width != self._virtual_width:
            self._virtual_width = width
            self.thaw_all()
            return
        margin = max(view.height, 10)
        low, high = view.y - margin, view.bottom + margin
        for seg in self.segments[:-1]:
            if not seg.closed:
                continue
            region = seg.widget.region
            near = region.bottom > low and region.y < high
            if seg.frozen:
                if near:
                    seg.thaw()
            elif not near and region.height > 0:
                seg.freeze(region.height)

    def thaw_all(self) -> None:
        """Show every segment again (their heights no longer hold at a new width)."""
        for seg in self.segments:
            if seg.frozen:
                seg.thaw()
