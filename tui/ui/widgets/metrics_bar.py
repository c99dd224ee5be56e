"""MetricsBar: one dense line of a run's metrics, from an immutable snapshot, each figure
named for what it measures.

``TTFT 312 ms · chunk gap p50 18 ms p95 44 ms · TPOT 21 ms · 52.3 tok/s · in 24 · out 512 ·
elapsed 8.4 s · usage ✓``

- ``chunk gap``: the inter-chunk latency (a chunk may carry several tokens), not a
  per-token figure; ``TPOT`` (time per output token) is shown once the tokens are counted.
- The output tokens are the server's usage (``usage ✓``), a tokenizer's estimate (``est.``,
  on the count, its rate and TPOT) or, when nothing better counted them, content chunks
  (``out 512 chunks``, ``chunks/s``, and no TPOT).
- ``▲ client-bound``: tokentop's own engine loop lagged during the run
  (:mod:`tui.session.loop_lag`), so its timing may be tokentop's rather than the server's.

The owner publishes a new :class:`~tui.stream.metrics.MetricsSnapshot` a few times a second
(never per token) and the run's client lag once it is known (:func:`client_bound_ms`); the
reactives re-render only when they change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from tui.stream.metrics import MetricsSnapshot
from tui.ui.widgets.format import fmt_count, fmt_elapsed, fmt_ms, fmt_rate
from tui.vocab import TONE_GLYPHS

if TYPE_CHECKING:
    from textual.css.styles import RulesMap

    from tui.session import SessionRun

__all__ = ["CLIENT_BOUND", "MetricsBar", "client_bound_ms", "metrics_content", "metrics_parts"]

CLIENT_BOUND = "client-bound"
"""The mark of a run whose timing tokentop's own lag made untrustworthy."""


def client_bound_ms(run: SessionRun | None) -> float | None:
    """The engine-loop lag p99 (ms) of a client-bound ``run``; None when its timing is the
    server's (or not judged yet)."""
    if run is None or not run.client_bound or run.client_lag is None:
        return None
    return run.client_lag.p99_ms


def metrics_parts(snapshot: MetricsSnapshot) -> list[tuple[str, str]]:
    """``(label, value)`` pairs in display order (also used by tests and the compare view):
    the rate's label is its unit (``tok/s``, ``tok/s est.`` or ``chunks/s``)."""
    source = snapshot.tokens_source
    est = " est." if source == "estimated" else ""
    out = fmt_count(snapshot.output_tokens)
    out += " chunks" if source == "chunks" and snapshot.output_tokens is not None else est
    parts = [
        ("TTFT", fmt_ms(snapshot.ttft_ms)),
        ("chunk gap p50", fmt_ms(snapshot.itl_p50_ms)),
        ("p95", fmt_ms(snapshot.itl_p95_ms)),
    ]
    if snapshot.tpot_ms is not None:
        parts.append(("TPOT", fmt_ms(snapshot.tpot_ms) + est))
    rate_unit = "chunks/s" if source == "chunks" else "tok/s" + est
    parts += [
        (rate_unit, fmt_rate(snapshot.tokens_per_s)),
        ("in", fmt_count(snapshot.input_tokens)),
        ("out", out),
        ("elapsed", fmt_elapsed(snapshot.elapsed_s)),
    ]
    return parts


def metrics_content(snapshot: MetricsSnapshot | None, bound_ms: float | None = None) -> Content:
    """The bar's content: labels muted, values bold, groups separated by a dim dot; the
    client-bound mark last (``bound_ms``: the lag p99 of a client-bound run)."""
    if snapshot is None:
        return Content.from_markup("[$text-muted]no metrics yet[/]")
    pieces: list[Content] = []
    for label, value in metrics_parts(snapshot):
        # a rate's label is its unit, after the value
        rate = "/s" in label
        markup = (
            "[b]$value[/] [$text-muted]$label[/]" if rate else "[$text-muted]$label[/] [b]$value[/]"
        )
        pieces.append(Content.from_markup(markup, label=label, value=value))
    if snapshot.tokens_source == "usage":
        pieces.append(Content.from_markup("[$text-success]usage ✓[/]"))
    if bound_ms is not None:
        pieces.append(
            Content.from_markup(
                "[b $text-warning]$mark[/] [$text-muted](tokentop lag p99 $lag)[/]",
                mark=f"{TONE_GLYPHS['warn']} {CLIENT_BOUND}",
                lag=fmt_ms(bound_ms),
            )
        )
    return Content(" · ").join(pieces)


class MetricsBar(Static):
    """TTFT, chunk gap p50/p95, TPOT, the output rate, tokens in/out (``est.`` for a
    tokenizer's estimate, ``chunks`` when nothing counted tokens), elapsed and the
    client-bound mark: one line (wrapping on narrow terminals), from :attr:`snapshot` and
    :attr:`client_bound_ms`."""

    DEFAULT_CSS = """
    MetricsBar { height: auto; width: 1fr; padding: 0 1; }
    """

    snapshot: reactive[MetricsSnapshot | None] = reactive(None, always_update=False)
    """The latest metrics snapshot of the run shown (None before the first)."""
    client_bound_ms: reactive[float | None] = reactive(None, always_update=False)
    """The engine-loop lag p99 of the run shown when it is client-bound, else None (see
    :func:`client_bound_ms`)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self._shown: Content | None = None

    def on_mount(self) -> None:
        self._show(metrics_content(self.snapshot, self.client_bound_ms))

    def watch_snapshot(self, snapshot: MetricsSnapshot | None) -> None:
        self._show(metrics_content(snapshot, self.client_bound_ms))

    def watch_client_bound_ms(self, bound_ms: float | None) -> None:
        self._show(metrics_content(self.snapshot, bound_ms))

    def _show(self, content: Content) -> None:
        """Show ``content``: nothing to do when it is the line already shown, and a repaint
        of the bar alone (no layout of the screen) while it wraps to as many lines as the
        bar has (a layout five times a second was a third of a shown pane's UI time)."""
        if self._shown is not None and content.is_same(self._shown):
            return
        self._shown = content
        width = self.content_size.width
        # the widget's styles as the rules, as Widget.get_content_height passes them
        rules = cast("RulesMap", self.styles)
        fits = width > 0 and content.get_height(rules, width) == self.content_size.height
        self.update(content, layout=not fits)

    def show_run(self, snapshot: MetricsSnapshot | None, run: SessionRun | None) -> None:
        """Show ``snapshot`` of ``run`` (its client-bound mark too, once it is known)."""
        self.snapshot = snapshot
        self.client_bound_ms = client_bound_ms(run)
