"""What a transcript shows besides the answer text, as data: tool calls being streamed and
notice lines; and the events that rebuild a run's view when it opens mid-run."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from textual.widget import Widget
from textual.widgets import Collapsible, Markdown, Static

from tui.stream.accumulate import RunAccumulator
from tui.stream.events import ReasoningDelta, RunEvent, TextDelta, ToolCallDelta
from tui.ui.widgets.answer import PLAIN_AFTER_CHARS, MarkdownFeed
from tui.ui.widgets.plain_text import PlainText


def reasoning_title(collapsed: bool, key: str | None) -> str:
    """The reasoning block's title: how to open it while collapsed, how to close it open."""
    if key is None:
        return "reasoning · enter or a click shows it" if collapsed else "reasoning"
    return f"reasoning · press {key} to {'show' if collapsed else 'hide'} it"


class ReasoningBlock(Collapsible):
    """A run's reasoning, collapsed at first; its title says which key opens and closes it
    (:attr:`key`, set by the owner that binds one; without, enter or a click)."""

    def __init__(self, *children: Widget, id: str | None = None) -> None:
        super().__init__(*children, title=reasoning_title(True, None), collapsed=True, id=id)
        self._key: str | None = None

    @property
    def key(self) -> str | None:
        """The key shown in the title (as displayed, ``t`` or ``^k``)."""
        return self._key

    @key.setter
    def key(self, key: str | None) -> None:
        self._key = key
        self.title = reasoning_title(self.collapsed, key)

    def watch_collapsed(self, collapsed: bool) -> None:
        self.title = reasoning_title(collapsed, self._key)


class ReasoningText:
    """The reasoning block's text: a Markdown stream, switched to one :class:`PlainText`
    past :data:`~tui.ui.widgets.answer.PLAIN_AFTER_CHARS` (as the answer is), so a very
    long reasoning costs what its appends cost, not a Markdown layout of all of it."""

    def __init__(self, markdown: Markdown) -> None:
        self.feed = MarkdownFeed(markdown)
        """The Markdown widget's stream (its widget stays, hidden, once plain)."""
        self.plain: PlainText | None = None
        """The plain view, once the reasoning switched to it."""

    @property
    def text(self) -> str:
        """The reasoning text the widgets hold."""
        return self.plain.text if self.plain is not None else self.feed.text

    async def write(self, chunk: str) -> None:
        """Append ``chunk``; the write that crosses the limit moves the text to plain."""
        if self.plain is not None:
            self.plain.append(chunk)
            return
        if self.feed.chars + len(chunk) <= PLAIN_AFTER_CHARS:
            await self.feed.write(chunk)
            return
        markdown = self.feed.widget
        self.plain = PlainText(self.feed.text + chunk, classes="reasoning-plain")
        await self._empty_feed()
        markdown.display = False
        if isinstance(markdown.parent, Widget):
            await markdown.parent.mount(self.plain, after=markdown)

    async def close(self, *, full_render: bool) -> None:
        """No more text: stop the Markdown stream (and render it once in full if asked)."""
        await self.feed.close(full_render=full_render and self.plain is None)

    async def clear(self) -> None:
        """Empty the block for a new run (or a restart): back to an empty Markdown."""
        await self._empty_feed()
        plain, self.plain = self.plain, None
        if plain is not None:
            self.feed.widget.display = True
            await plain.remove()

    async def _empty_feed(self) -> None:
        await self.feed.close(full_render=False)
        self.feed.parts.clear()
        self.feed.chars = 0
        await self.feed.widget.update("")


class TranscriptNotice(NamedTuple):
    """One line under the answer: a notice (a restart, a flagged event, the switch to plain
    text) or the error a failed run ended with; ``kind`` picks its CSS class
    (``transcript-notice`` / ``transcript-error``)."""

    kind: Literal["notice", "error"]
    text: str


@dataclass(slots=True)
class ToolCallView:
    """Accumulated fragments of one tool call, and the Static that shows it."""

    index: int
    name: str | None = None
    call_id: str | None = None
    arguments: list[str] = field(default_factory=list)
    widget: Static | None = None
    dirty: bool = True

    def render_text(self) -> str:
        """The call as shown: a head line (name, call id), then the arguments (indented
        JSON once they parse)."""
        args = "".join(self.arguments)
        # Still streaming (or not JSON): show it as received.
        with contextlib.suppress(ValueError):
            args = json.dumps(json.loads(args), indent=2, ensure_ascii=False)
        head = f"⚙ {self.name or '…'}"
        if self.call_id:
            head += f"  ({self.call_id})"
        return f"{head}\n{args}" if args else head


class ToolCalls:
    """The tool calls of one attempt as their fragments arrive, by index."""

    def __init__(self) -> None:
        self.views: dict[int, ToolCallView] = {}

    @property
    def dirty(self) -> bool:
        """True while a call changed since it was last rendered."""
        return any(view.dirty for view in self.views.values())

    def apply(self, event: ToolCallDelta) -> None:
        """Take one fragment (O(1))."""
        view = self.views.get(event.index)
        if view is None:
            view = self.views[event.index] = ToolCallView(event.index)
        if event.name:
            view.name = event.name
        if event.call_id:
            view.call_id = event.call_id
        if event.arguments:
            view.arguments.append(event.arguments)
        view.dirty = True

    async def render(self, container: Widget) -> None:
        """Show the changed calls: update their Statics, mount new ones in ``container``."""
        for index in sorted(self.views):
            view = self.views[index]
            if not view.dirty:
                continue
            view.dirty = False
            if view.widget is None:
                view.widget = Static(view.render_text(), classes="tool-call", markup=False)
                await container.mount(view.widget)
            else:
                view.widget.update(view.render_text())


class Notices:
    """The notice lines of one run, and how many of them are shown."""

    def __init__(self) -> None:
        self.items: list[TranscriptNotice] = []
        self.dirty = False
        """True while a notice waits to be shown."""

    def add(self, text: str, kind: Literal["notice", "error"]) -> None:
        """Add one line (shown on the next :meth:`render`)."""
        self.items.append(TranscriptNotice(kind, text))
        self.dirty = True

    async def render(self, container: Widget) -> None:
        """Mount a Static in ``container`` for each notice it does not show yet."""
        self.dirty = False
        shown = len(container.children)
        new = [
            Static(notice.text, classes=f"transcript-{notice.kind}", markup=False)
            for notice in self.items[shown:]
        ]
        if new:
            await container.mount_all(new)


def catch_up_events(acc: RunAccumulator) -> list[RunEvent]:
    """Events that rebuild what a run shows so far: its reasoning, tool calls and answer
    folded into one delta each (for a view that opens in the middle of a run)."""
    events: list[RunEvent] = []
    if acc.reasoning_text:
        events.append(ReasoningDelta(0.0, acc.reasoning_text))
    for call in acc.tool_calls:
        events.append(ToolCallDelta(0.0, call.index, call.arguments, call.name, call.call_id))
    if acc.output_text:
        events.append(TextDelta(0.0, acc.output_text))
    return events
