"""MetricsBar: one dense line of a run's metrics, from an immutable snapshot.

``TTFT 312 ms · ITL p50 18 ms p95 44 ms · 52.3 tok/s · in 24 · out 512 est. · 8.4 s``

The owner publishes a new :class:`~tui.stream.metrics.MetricsSnapshot` a few times a second
(never per token); the reactive re-renders only when the snapshot changes.
"""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from tui.stream.metrics import MetricsSnapshot
from tui.ui.widgets.format import fmt_count, fmt_elapsed, fmt_ms, fmt_rate


def metrics_parts(snapshot: MetricsSnapshot) -> list[tuple[str, str]]:
    """``(label, value)`` pairs in display order (also used by tests and the compare view)."""
    out_tokens = fmt_count(snapshot.output_tokens)
    if snapshot.tokens_estimated:
        out_tokens += " est."
    return [
        ("TTFT", fmt_ms(snapshot.ttft_ms)),
        ("ITL p50", fmt_ms(snapshot.itl_p50_ms)),
        ("p95", fmt_ms(snapshot.itl_p95_ms)),
        ("tok/s", fmt_rate(snapshot.tokens_per_s)),
        ("in", fmt_count(snapshot.input_tokens)),
        ("out", out_tokens),
        ("elapsed", fmt_elapsed(snapshot.elapsed_s)),
    ]


def metrics_content(snapshot: MetricsSnapshot | None) -> Content:
    """The bar's content: labels muted, values bold, groups separated by a dim dot."""
    if snapshot is None:
        return Content.from_markup("[$text-muted]no metrics yet[/]")
    pieces: list[Content] = []
    for label, value in metrics_parts(snapshot):
        if label == "tok/s":
            pieces.append(Content.from_markup("[b]$value[/] [$text-muted]tok/s[/]", value=value))
        else:
            pieces.append(
                Content.from_markup("[$text-muted]$label[/] [b]$value[/]", label=label, value=value)
            )
    if not snapshot.tokens_estimated and snapshot.output_tokens is not None:
        pieces.append(Content.from_markup("[$text-success]usage ✓[/]"))
    return Content(" · ").join(pieces)


class MetricsBar(Static):
    """TTFT, ITL p50/p95, tokens/s, tokens in/out (``est.`` until the server's usage
    confirms them), elapsed: one line (wrapping on narrow terminals), from :attr:`snapshot`."""

    DEFAULT_CSS = """
    MetricsBar { height: auto; width: 1fr; padding: 0 1; }
    """

    snapshot: reactive[MetricsSnapshot | None] = reactive(None, always_update=False)
    """The latest metrics snapshot of the run shown (None before the first)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)

    def on_mount(self) -> None:
        self.update(metrics_content(self.snapshot))

    def watch_snapshot(self, snapshot: MetricsSnapshot | None) -> None:
        self.update(metrics_content(snapshot))
