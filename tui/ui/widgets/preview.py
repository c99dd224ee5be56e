"""SessionPreview: the overview's detail panel for the selected row (on tall terminals).

Shows who the session is, what its current run is doing (state, request id, attempts, error),
its tool calls (name and arguments, shortened) and the tail of its answer, refreshed a few
times a second from the session's accumulator (never per token, and not at all while hidden).

The answer is Markdown; the preview shows it as readable text (:func:`markdown_lines`):
markdown-it-py (which Textual uses) parses only the tail, headings are bold, list items get
their markers, code is indented and dimmed, emphasis and link syntax are dropped. A tail cut
inside a code fence is parsed as code (:func:`open_fence`).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from functools import cache, lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from tui.session import SessionController
from tui.stream.result import ToolCall
from tui.ui.style import TONE_VARIABLES
from tui.ui.ticker import Ticker, not_subscribed
from tui.ui.widgets.format import elide
from tui.vocab import TONE_GLYPHS

PREVIEW_HZ = 4.0
TAIL_CHARS = 3_000
"""How much of the answer's end the preview keeps and parses (the panel shows what fits)."""

TOOL_ARGS_CELLS = 160
"""A tool call's arguments are shortened to this many cells."""

TOOL_CALLS_SHOWN = 8
"""At most this many tool calls are listed (the last ones; a line says how many more)."""

CODE_STYLE = "$text-muted"

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$", re.MULTILINE)


@cache
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def open_fence(text: str) -> str | None:
    """The marker of the code fence ``text`` ends inside (None when it ends outside one),
    following CommonMark: a fence closes with the same character, at least as long, and
    nothing after it."""
    opener: str | None = None
    for match in _FENCE.finditer(text):
        mark, rest = match.group(1), match.group(2)
        if opener is None:
            if not (mark[0] == "`" and "`" in rest):  # a backtick in the info string: text
                opener = mark
        elif mark[0] == opener[0] and len(mark) >= len(opener) and not rest.strip():
            opener = None
    return opener


def _inline(tokens: Sequence[Token] | None) -> Content:
    """The text of inline tokens: emphasis as styles, links and images by their text."""
    parts: list[tuple[str, str]] = []
    bold = italic = 0
    for token in tokens or ():
        kind = token.type
        if kind in ("text", "html_inline"):
            style = " ".join(s for s, on in (("bold", bold), ("italic", italic)) if on)
            parts.append((token.content, style))
        elif kind == "code_inline":
            parts.append((token.content, CODE_STYLE))
        elif kind in ("softbreak", "hardbreak"):
            parts.append(("\n", ""))
        elif kind == "image":
            parts.append((token.content, ""))
        elif kind in ("strong_open", "strong_close"):
            bold += 1 if kind == "strong_open" else -1
        elif kind in ("em_open", "em_close"):
            italic += 1 if kind == "em_open" else -1
    return Content.assemble(*parts)


def markdown_blocks(text: str) -> list[str]:
    """``text`` cut into its top-level blocks: at blank lines outside code fences."""
    blocks: list[str] = []
    current: list[str] = []
    opener: str | None = None
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if match is not None:
            mark, rest = match.group(1), match.group(2)
            if opener is None:
                if not (mark[0] == "`" and "`" in rest):
                    opener = mark
            elif mark[0] == opener[0] and len(mark) >= len(opener) and not rest.strip():
                opener = None
        if opener is None and not line.strip():
            if current:
                blocks.append("\n".join(current))
                current = []
        else:
            current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def markdown_lines(text: str) -> list[Content]:
    """``text`` (Markdown) as lines of styled plain text, blocks apart by one blank line.

    Each block is parsed on its own and remembered (:func:`_block_lines`): while an answer
    streams only its last block changes, so a refresh parses that block, not the whole tail.
    """
    lines: list[Content] = []
    for block in markdown_blocks(text):
        if lines:
            lines.append(Content(""))
        lines.extend(_block_lines(block))
    return lines


@lru_cache(maxsize=512)
def _block_lines(text: str) -> tuple[Content, ...]:
    """One block of Markdown as lines of styled plain text."""
    lines: list[Content] = []
    lists: list[list[int]] = []  # per open list: [ordered, next number]
    quote = 0
    marker: str | None = None
    row: list[Content] | None = None  # the cells of a table row, inside a table
    heading = False

    def add(content: Content, style: str = "", indent: str = "") -> None:
        nonlocal marker
        indent += "  " * max(0, len(lists) - 1)
        for number, line in enumerate(content.split("\n")):
            lead = "│ " * quote + indent
            if number == 0 and marker is not None:
                lead += marker
                marker = None
            elif lists:
                lead += "  "
            lines.append(Content(lead) + (line.stylize(style) if style else line))

    def gap() -> None:
        if lines and lines[-1].plain and not lists:
            lines.append(Content(""))

    for token in _parser().parse(text):
        kind = token.type
        if kind == "heading_open":
            heading = True
        elif kind == "inline":
            if row is not None:
                row.append(_inline(token.children))
            else:
                add(_inline(token.children), "bold" if heading else "")
        elif kind in ("heading_close", "paragraph_close") and not token.hidden:
            heading = False
            gap()
        elif kind in ("fence", "code_block"):
            add(Content(token.content.rstrip("\n")), CODE_STYLE, indent="  ")
            gap()
        elif kind == "hr":
            add(Content("─" * 24), CODE_STYLE)
            gap()
        elif kind == "html_block":
            add(Content(token.content.rstrip("\n")))
            gap()
        elif kind in ("bullet_list_open", "ordered_list_open"):
            lists.append([kind == "ordered_list_open", int(token.attrGet("start") or 1)])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            gap()
        elif kind == "list_item_open" and lists:
            ordered, number = lists[-1]
            marker = f"{number}. " if ordered else "• "
            lists[-1][1] = number + 1
        elif kind == "blockquote_open":
            quote += 1
        elif kind == "blockquote_close":
            quote -= 1
            gap()
        elif kind == "table_open":
            row = []
        elif kind == "tr_close" and row is not None:
            add(Content(" │ ").join(row))
            row = []
        elif kind == "table_close":
            row = None
            gap()
    while lines and not lines[-1].plain:
        lines.pop()
    return tuple(lines)


def tool_call_lines(calls: Sequence[ToolCall]) -> list[Content]:
    """One line per tool call: ``⚙ name(arguments)``, the arguments as compact JSON once
    they parse, shortened to :data:`TOOL_ARGS_CELLS`; the last :data:`TOOL_CALLS_SHOWN`."""
    lines: list[Content] = []
    if len(calls) > TOOL_CALLS_SHOWN:
        more = len(calls) - TOOL_CALLS_SHOWN
        lines.append(Content.styled(f"… {more} earlier tool calls", "$text-muted"))
    for call in calls[-TOOL_CALLS_SHOWN:]:
        args = call.arguments
        if len(args) < 64_000:  # a huge argument string is shown as received, cut
            with contextlib.suppress(ValueError):  # still streaming, or not JSON
                args = json.dumps(json.loads(args), ensure_ascii=False, separators=(", ", ": "))
        shown = elide(" ".join(args.split()), TOOL_ARGS_CELLS)
        lines.append(
            Content.assemble(("⚙ ", "$secondary"), (call.name or "…", "bold"), f"({shown})")
        )
    return lines


def preview_content(live: SessionController | None) -> Content:
    """Header lines plus the answer tail of ``live`` (a hint when nothing is selected)."""
    if live is None:
        return Content.from_markup("[$text-muted]no session selected[/]")
    session = live.session
    run = live.current
    head = Content.from_markup(
        "[b]$name[/]  [$text-muted]$model · $api[/]  [b]$state[/]",
        name=live.name,
        model=session.model,
        api=session.api,
        state=live.state,
    )
    lines = [head]
    if run is None:
        lines.append(Content.from_markup("[$text-muted]not started[/]"))
        return Content("\n").join(lines)
    acc = run.accumulator
    details = f"run {run.run_id}  ·  attempts {len(acc.attempts)}  ·  resumes {acc.resumes}"
    if acc.request_id:
        details += f"  ·  request {acc.request_id}"
    lines.append(Content.from_markup("[$text-muted]$details[/]", details=details))
    prompt = run.prompt.strip().replace("\n", " ")
    lines.append(Content.from_markup("[$text-muted]prompt[/] $prompt", prompt=prompt[:300]))
    if acc.error is not None:
        lines.append(
            Content.from_markup(
                f"[${TONE_VARIABLES['failed']} b]$glyph $kind:[/] $message",
                glyph=TONE_GLYPHS["failed"],
                kind=acc.error.kind,
                message=acc.error.message,
            )
        )
    calls = acc.tool_calls
    if calls:
        lines.extend(tool_call_lines(calls))
    text = acc.output_text
    if not text and acc.reasoning_text:
        text = acc.reasoning_text
    if text:
        lines.append(Content(""))
        lines.extend(answer_tail(text))
    return Content("\n").join(lines)


def answer_tail(text: str) -> list[Content]:
    """The end of the answer ``text`` as readable lines (from a line start; ``…`` first when
    the start is cut)."""
    if len(text) <= TAIL_CHARS:
        return markdown_lines(text)
    cut = len(text) - TAIL_CHARS
    newline = text.find("\n", cut)
    cut = newline + 1 if newline != -1 else cut
    tail = text[cut:]
    fence = open_fence(text[:cut])
    if fence is not None:
        tail = f"{fence}\n{tail}"
    return [Content.styled("…", "$text-muted"), *markdown_lines(tail)]


class SessionPreview(VerticalScroll, can_focus=False):
    """The selected session at a glance; the overview tells it which one. Kept scrolled
    to the end, so the newest text is what shows."""

    DEFAULT_CSS = """
    SessionPreview { height: 1fr; padding: 0 1; }
    SessionPreview > Static { height: auto; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.live: SessionController | None = None
        self._shown: tuple[int, int, str] | None = None
        self._body = Static("", id="preview-body")
        self._untick = not_subscribed

    def compose(self) -> ComposeResult:
        yield self._body

    @property
    def text(self) -> str:
        """The preview as plain text (what the panel shows, before cropping)."""
        return str(self._body.render())

    def on_mount(self) -> None:
        self._untick = Ticker.of(self.app).subscribe(self, self.refresh_preview, PREVIEW_HZ)

    def on_unmount(self) -> None:
        self._untick()

    def show_session(self, live: SessionController | None) -> None:
        """Follow ``live`` (None: nothing selected)."""
        self.live = live
        self.refresh_preview()

    def refresh_preview(self, *, hidden_too: bool = False) -> None:
        """Re-render when the session changed since the last render (only while shown,
        unless ``hidden_too``: the overview is about to be shown)."""
        if not hidden_too and not self.is_on_screen and self._shown is not None:
            return
        live = self.live
        key = (id(live), live.version if live else -1, live.state if live else "")
        if key == self._shown:
            return
        self._shown = key
        self._body.update(preview_content(live))
        self.call_after_refresh(self.scroll_end, animate=False, immediate=True)
