"""SessionPreview: the overview's detail panel for the selected row (on tall terminals).

Shows who the session is, what its current run is doing (state, request id, attempts, error)
and the tail of its answer as plain text, refreshed a few times a second from the session's
accumulator (never per token, and not at all while hidden).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from tui.session import SessionController
from tui.ui.style import TONE_VARIABLES
from tui.vocab import TONE_GLYPHS

PREVIEW_HZ = 4.0
TAIL_CHARS = 4_000
"""How much of the answer's end the preview keeps (the panel shows what fits)."""


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
    text = acc.output_text
    if not text and acc.reasoning_text:
        text = acc.reasoning_text
    if text:
        tail = text[-TAIL_CHARS:]
        if len(text) > TAIL_CHARS:
            tail = "…" + tail[tail.find("\n") + 1 :] if "\n" in tail else "…" + tail
        lines.append(Content(""))
        lines.append(Content(tail))
    return Content("\n").join(lines)


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

    def compose(self) -> ComposeResult:
        yield self._body

    @property
    def text(self) -> str:
        """The preview as plain text (what the panel shows, before cropping)."""
        return str(self._body.render())

    def on_mount(self) -> None:
        self.set_interval(1 / PREVIEW_HZ, self.refresh_preview, name="preview-refresh")

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
