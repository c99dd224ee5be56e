"""MonitorScreen: one session over time: runs, success rate, last failure, p50/p95, charts.

The figures and the series come from the store (:func:`tui.store.stats.session_stats` and
:func:`tui.store.stats.series`) over a window: the last 10 minutes, the last hour, or every
run (``w`` switches). The charts are Textual's :class:`~textual.widgets.Sparkline` over
:data:`SERIES_BUCKETS` time buckets: the store reduces hours of runs to a fixed number of
points, so a render costs the same after a minute or a day. The screen reads again when a
run of its session finishes (debounced), every :data:`REFRESH_S` seconds (the window
slides), and when the window changes; each read is an exclusive worker, off the loop's
critical path. Without a store it shows the session's in-memory history and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Sparkline, Static

from tui.session import SessionController
from tui.stream.events import Finished
from tui.ui.commands import ScreenBindingCommands
from tui.ui.figures import figures_of_history
from tui.ui.monitor_view import (
    WINDOWS,
    Charts,
    charts_of_history,
    charts_of_series,
    memory_summary,
    stats_summary,
)
from tui.ui.ticker import Ticker
from tui.ui.widgets.footer import KeysFooter

if TYPE_CHECKING:
    from tui.ui.monitoring import Monitoring

SERIES_BUCKETS = 120
"""Time buckets of each chart (the store's :func:`~tui.store.stats.series`)."""

REFRESH_S = 15.0
"""Read again this often even without new runs (the window slides)."""

FINISH_DEBOUNCE_S = 1.0
"""After a run of the session finishes, read again at most this often."""


class MonitorScreen(Screen[None]):
    """One session's monitoring figures and charts (``[`` / ``]`` for the other sessions)."""

    COMMANDS: ClassVar = {ScreenBindingCommands}
    TITLE = "Monitor"

    DEFAULT_CSS = """
    MonitorScreen #monitor-title { height: 1; padding: 0 1; background: $panel; }
    MonitorScreen #monitor-summary { height: auto; padding: 1 1 0 1; }
    MonitorScreen .chart-label { height: 1; padding: 0 1; margin: 1 0 0 0; color: $text-muted; }
    MonitorScreen Sparkline { height: 3; margin: 0 1; }
    MonitorScreen #chart-failures > .sparkline--max-color { color: $status-failed; }
    MonitorScreen #chart-failures > .sparkline--min-color { color: $status-failed 20%; }
    MonitorScreen #chart-rate > .sparkline--max-color { color: $secondary; }
    MonitorScreen #chart-rate > .sparkline--min-color { color: $secondary 30%; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "next_window", "Window", id="monitor.window"),
        Binding("right_square_bracket", "next_session", "Next", id="monitor.next_session"),
        Binding(
            "left_square_bracket",
            "previous_session",
            "Prev",
            id="monitor.previous_session",
            show=False,
        ),
        Binding("escape,m", "close", "Back", id="monitor.close"),
    ]

    def __init__(
        self, sessions: Sequence[SessionController], name: str, monitoring: Monitoring
    ) -> None:
        super().__init__()
        self.sessions = list(sessions)
        self.monitoring = monitoring
        self.index = next((i for i, s in enumerate(self.sessions) if s.name == name), 0)
        self.window_index = 1  # the last hour
        self.reads = 0
        """How many times the figures were read (tests wait on it)."""
        self.charts: Charts | None = None
        """The series last shown (None before the first read)."""
        self._debounce: Timer | None = None
        self._remove_finish = _nothing

    @property
    def live(self) -> SessionController:
        """The session shown."""
        return self.sessions[self.index]

    def compose(self) -> ComposeResult:
        yield Static("", id="monitor-title")
        with VerticalScroll():
            yield Static("", id="monitor-summary")
            with Vertical(id="monitor-charts"):
                yield Static("", id="label-ttft", classes="chart-label")
                yield Sparkline([], id="chart-ttft", summary_function=max)
                yield Static("", id="label-rate", classes="chart-label")
                yield Sparkline([], id="chart-rate", summary_function=min)
                yield Static("", id="label-failures", classes="chart-label")
                yield Sparkline([], id="chart-failures", summary_function=sum)
        yield KeysFooter()

    def on_mount(self) -> None:
        self._remove_finish = self.monitoring.tally.on_finish(self._run_finished)
        self._untick = Ticker.of(self.app).subscribe(self, self.reload, 1 / REFRESH_S)
        self.reload()

    def on_unmount(self) -> None:
        self._remove_finish()
        self._untick()

    # -- reading ----

    def _run_finished(self, live: SessionController, finished: Finished) -> None:
        if live is not self.live or self._debounce is not None:
            return
        self._debounce = self.set_timer(FINISH_DEBOUNCE_S, self._debounced, name="monitor-run")

    def _debounced(self) -> None:
        self._debounce = None
        self.reload()

    def reload(self) -> None:
        """Read the figures and the series of the session and window shown."""
        self._load(self.live, self.window_index)

    @work(exclusive=True, group="monitor", exit_on_error=False)
    async def _load(self, live: SessionController, window_index: int) -> None:
        label, seconds = WINDOWS[window_index]
        store = self.monitoring.figures.store
        summary: Content
        if store is None:
            summary = memory_summary(figures_of_history(live.history), live)
            charts = charts_of_history(live.history)
            source = f"the last {len(live.history)} runs in memory (no store)"
        else:
            from tui.store.stats import series, session_stats
            from tui.store.stats_records import utc_time as utc
            from tui.store.window import started_since

            since = None if seconds is None else started_since(seconds)
            try:
                stats = await session_stats(store, session=live.name, since=since)
                # the charts start at the window's first run: an hour's window of a session
                # that began a minute ago is drawn over that minute, not squeezed into one bucket
                first = stats[0].first_run_at
                start = (
                    first if first is not None and (since is None or first > utc(since)) else since
                )
                points = await series(store, live.name, since=start, buckets=SERIES_BUCKETS)
            except Exception as exc:
                self.query_one("#monitor-summary", Static).update(
                    Content(f"Cannot read the store: {exc}")
                )
                return
            summary = stats_summary(stats[0])
            charts = charts_of_series(points)
            source = "from the store"
        if live is not self.live or window_index != self.window_index:
            return  # the user moved on while this read ran
        self._show(live, label, source, summary, charts)

    def _show(
        self, live: SessionController, label: str, source: str, summary: Content, charts: Charts
    ) -> None:
        self.charts = charts
        self.query_one("#monitor-title", Static).update(
            Content.from_markup(
                "[b]$name[/]  [$text-muted]$model · window:[/] [b]$window[/] "
                "[$text-muted](w) · $source[/]",
                name=live.name,
                model=live.session.model,
                window=label,
                source=source,
            )
        )
        self.query_one("#monitor-summary", Static).update(summary)
        for key, title, values in (
            ("ttft", "TTFT p50 (ms)", charts.ttft_ms),
            ("rate", "tokens/s p50", charts.tokens_per_s),
            ("failures", "failed runs", charts.failures),
        ):
            caption = charts.label(title, values, counts=key == "failures")
            self.query_one(f"#label-{key}", Static).update(caption)
            self.query_one(f"#chart-{key}", Sparkline).data = values
        self.reads += 1

    # -- actions ----

    def action_next_window(self) -> None:
        """Switch the window: last 10 minutes, last hour, every run."""
        self.window_index = (self.window_index + 1) % len(WINDOWS)
        self.reload()

    def _step(self, step: int) -> None:
        self.index = (self.index + step) % len(self.sessions)
        self.reload()

    def action_next_session(self) -> None:
        """Show the next session."""
        self._step(1)

    def action_previous_session(self) -> None:
        """Show the previous session."""
        self._step(-1)

    def action_close(self) -> None:
        """Back to the dashboard."""
        self.dismiss()


def _nothing() -> None:
    """Placeholder for the tally's remove function before mount."""
