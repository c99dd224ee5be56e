"""History: the saved runs from the store, searchable and filterable; Enter replays one.

The table is reloaded from the store whenever the search text (full-text search over
prompts and outputs, debounced) or a filter (session, model, finish reason) changes. Store
errors (a locked or broken database, a malformed search) are shown above the table and
never end the app.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Select, Static

from tui.ui.commands import ScreenBindingCommands
from tui.ui.key_routing import take_typed_key
from tui.ui.screens.replay import ReplayScreen
from tui.ui.style import TONE_VARIABLES, theme_styles
from tui.ui.widgets.format import fmt_count, fmt_ms, fmt_rate
from tui.vocab import FINISH_REASONS, MISSING, outcome_tone

if TYPE_CHECKING:
    from tui.store import Store
    from tui.store.records import RunSummary

SEARCH_DEBOUNCE_S = 0.25
"""Typing in the search box reloads the table this long after the last key."""

COLUMNS: tuple[tuple[str, str], ...] = (
    ("time", "time"),
    ("session", "session"),
    ("model", "model"),
    ("status", "status"),
    ("finish", "finish"),
    ("tokens", "tokens"),
    ("ttft", "TTFT"),
    ("rate", "tok/s"),
    ("prompt", "prompt"),
)
"""(column key, label) of the runs table, in order."""


def fmt_started(value: object) -> str:
    """A run's start time for the table: ``11-25 19:52:03`` (local time)."""
    when: datetime | None = None
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, int | float):
        when = datetime.fromtimestamp(value)
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return value
    if when is None:
        return MISSING
    if when.tzinfo is not None:
        when = when.astimezone()
    return when.strftime("%m-%d %H:%M:%S")


class HistoryScreen(Screen[None]):
    """Saved runs, newest first: search, filter, and open one in a :class:`ReplayScreen`."""

    TITLE = "History"
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {ScreenBindingCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "slash",
            "focus_search",
            "Search",
            id="history.search",
            tooltip="Full-text search over prompts and answers",
            key_display="/",
        ),
        Binding(
            "enter",
            "open_run",
            "Replay",
            id="history.open",
            tooltip="Replay the selected run with its original timing",
            show=True,
            priority=False,
        ),
        Binding(
            "o",
            "open_instant",
            "Open instantly",
            id="history.open_instant",
            tooltip="Show the selected run at once",
        ),
        Binding("ctrl+r", "reload", "Reload", id="history.reload", tooltip="Read the store again"),
        Binding(
            "ctrl+l",
            "clear_filters",
            "Clear filters",
            id="history.clear_filters",
            tooltip="Clear the search and every filter",
        ),
        Binding(
            "escape",
            "close",
            "Back",
            id="history.close",
            tooltip="Clear the search, leave the search box, or go back to the dashboard",
        ),
    ]

    DEFAULT_CSS = """
    HistoryScreen { layout: vertical; }
    HistoryScreen #history-filters { height: auto; padding: 0 1; }
    HistoryScreen #history-search { width: 2fr; min-width: 20; }
    HistoryScreen #history-filters Select { width: 1fr; min-width: 14; }
    HistoryScreen #history-count { height: 1; padding: 0 1; color: $text-muted; }
    HistoryScreen #history-error { height: auto; padding: 0 1; color: $error; display: none; }
    HistoryScreen.-error #history-error { display: block; }
    HistoryScreen #history-empty {
        height: 1fr; content-align: center middle; color: $text-muted; display: none;
    }
    HistoryScreen.-empty #history-empty { display: block; }
    HistoryScreen.-empty #history-table { display: none; }
    HistoryScreen #history-table { height: 1fr; }
    """

    def __init__(self, store: Store, *, limit: int = 500) -> None:
        """List up to ``limit`` runs of ``store`` (newest first)."""
        super().__init__()
        self.store = store
        self.limit = limit
        self.runs: list[RunSummary] = []
        """The runs shown, in table order."""
        self.error: str | None = None
        """The last store error, shown above the table (None when the last load worked)."""
        self.loads = 0
        """How many loads have completed (tests wait on it)."""
        self._debounce: Timer | None = None
        self._colours: dict[str, Style] = {}
        self._filtered = False
        self._options_loaded = False

    def compose(self) -> ComposeResult:
        """Search box and filters, the runs table, empty and error states, footer."""
        with Horizontal(id="history-filters"):
            yield Input(placeholder="search prompts and answers…", id="history-search")
            yield Select[str]([], prompt="session", id="filter-session")
            yield Select[str]([], prompt="model", id="filter-model")
            yield Select[str](
                [(reason, reason) for reason in FINISH_REASONS], prompt="finish", id="filter-finish"
            )
        yield Static("", id="history-count")
        yield Static("", id="history-error", markup=False)
        table: DataTable[Any] = DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="history-empty")
        yield Footer()

    def on_mount(self) -> None:
        """Set up the columns and load the newest runs."""
        table = self.query_one(DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self.set_focus(table)
        self.watch(self.app, "theme", self._recolour, init=False)
        self.load_runs()

    def _recolour(self) -> None:
        """A new theme: the status colours come from its variables."""
        self._fill_table(filtered=self._filtered)

    def on_screen_resume(self) -> None:
        """Back from a replay or the dashboard: show runs saved in the meantime."""
        if self.loads:
            self.load_runs()

    # -- loading --------------------------------------------------------------------------

    def _filter(self, select_id: str) -> str | None:
        value = self.query_one(f"#{select_id}", Select).value
        return value if isinstance(value, str) else None

    @property
    def search_text(self) -> str | None:
        """The current search text (None when empty)."""
        return self.query_one("#history-search", Input).value.strip() or None

    @work(exclusive=True, group="history-load", exit_on_error=False)
    async def load_runs(self) -> None:
        """Query the store with the current search and filters and fill the table."""
        search = self.search_text
        session = self._filter("filter-session")
        model = self._filter("filter-model")
        finish = self._filter("filter-finish")
        try:
            runs = await self.store.list_runs(
                search=search, session=session, model=model, finish=finish, limit=self.limit
            )
            if not self._options_loaded:
                await self._load_filter_options(runs if not (search or session or model) else None)
        except Exception as exc:  # any store failure is shown, never fatal
            self._show_error(f"could not read the history: {exc}")
            self.loads += 1
            return
        self._show_error(None)
        self.runs = list(runs)
        self._fill_table(filtered=bool(search or session or model or finish))
        self.loads += 1

    async def _load_filter_options(self, runs: list[RunSummary] | None) -> None:
        """Offer the sessions and models that occur in the store."""
        if runs is None:
            runs = await self.store.list_runs(limit=self.limit)
        sessions = sorted({run.session for run in runs})
        models = sorted({run.model for run in runs if run.model})
        self.query_one("#filter-session", Select).set_options((s, s) for s in sessions)
        self.query_one("#filter-model", Select).set_options((m, m) for m in models)
        self._options_loaded = True

    def _fill_table(self, *, filtered: bool) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self._colours = theme_styles(self.app.get_css_variables(), TONE_VARIABLES.values())
        for run in self.runs:
            table.add_row(*self._cells(run), key=run.run_id)
        self._filtered = filtered
        empty = not self.runs
        self.set_class(empty, "-empty")
        if empty:
            message = (
                "No saved run matches this search and these filters.\nctrl+l clears the filters."
                if filtered
                else "No saved runs yet.\n"
                "Runs from the dashboard and from `tokentop run` are kept here."
            )
            self.query_one("#history-empty", Static).update(message)
        noun = "run" if len(self.runs) == 1 else "runs"
        more = f" (newest {self.limit})" if len(self.runs) >= self.limit else ""
        hint = " · enter replays the selected run, o shows it at once" if self.runs else ""
        self.query_one("#history-count", Static).update(f"{len(self.runs)} {noun}{more}{hint}")

    def _cells(self, run: RunSummary) -> tuple[str | Text, ...]:
        """The table cells of one run (same order as :data:`COLUMNS`)."""
        prompt = " ".join(run.prompt.split())
        tone = outcome_tone(run.status, run.finish_reason)
        style = self._colours.get(TONE_VARIABLES[tone], Style())
        return (
            fmt_started(run.started_at),
            run.session,
            run.model or MISSING,
            Text(run.status, style=style),
            Text(run.finish_reason or MISSING, style=style),
            Text(fmt_count(run.output_tokens), justify="right"),
            Text(fmt_ms(run.ttft_ms), justify="right"),
            Text(fmt_rate(run.tokens_per_s), justify="right"),
            prompt[:60] + ("…" if len(prompt) > 60 else ""),
        )

    def _show_error(self, message: str | None) -> None:
        self.error = message
        self.query_one("#history-error", Static).update(message or "")
        self.set_class(message is not None, "-error")

    # -- events ---------------------------------------------------------------------------

    def on_key(self, event: events.Key) -> None:
        """Letters typed together with ``/`` go to the search box, never to commands."""
        search = self.query_one("#history-search", Input)
        take_typed_key(self, search, event, focus_action="focus_search", type_ahead=False)

    @on(Input.Changed, "#history-search")
    def _search_changed(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(SEARCH_DEBOUNCE_S, self.load_runs)

    @on(Input.Submitted, "#history-search")
    def _search_submitted(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self.load_runs()
        self.set_focus(self.query_one(DataTable))

    @on(Select.Changed)
    def _filter_changed(self) -> None:
        self.load_runs()

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.open_run(event.row_key.value)

    # -- actions --------------------------------------------------------------------------

    @property
    def selected_run_id(self) -> str | None:
        """The run under the table cursor."""
        table = self.query_one(DataTable)
        if not self.runs or table.cursor_row < 0:
            return None
        return self.runs[min(table.cursor_row, len(self.runs) - 1)].run_id

    def open_run(self, run_id: str, speed: float | None = 1.0) -> None:
        """Replay ``run_id`` on top of the history."""
        self.app.push_screen(ReplayScreen(self.store, run_id, speed))

    def action_open_run(self) -> None:
        """Replay the selected run with its original timing."""
        if (run_id := self.selected_run_id) is not None:
            self.open_run(run_id)

    def action_open_instant(self) -> None:
        """Show the selected run at once (instant replay)."""
        if (run_id := self.selected_run_id) is not None:
            self.open_run(run_id, None)

    def action_focus_search(self) -> None:
        """Move the focus to the search box (at once: keys typed right after go there)."""
        self.set_focus(self.query_one("#history-search", Input))

    def action_reload(self) -> None:
        """Read the store again (new runs, new sessions and models in the filters)."""
        self._options_loaded = False
        self.load_runs()

    def action_clear_filters(self) -> None:
        """Clear the search and every filter."""
        self.query_one("#history-search", Input).value = ""
        for select in self.query(Select):
            select.clear()
        self.load_runs()

    def action_close(self) -> None:
        """Clear the search first (wherever the focus is), then leave the search box, then
        go back to the dashboard."""
        search = self.query_one("#history-search", Input)
        if search.value:
            search.value = ""  # the table reloads as for any change of the search
            return
        if self.focused is search:
            self.set_focus(self.query_one(DataTable))
            return
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        else:
            self.app.exit()
