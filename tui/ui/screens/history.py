"""History: the saved runs from the store, searchable and filterable; Enter replays one.

The table is reloaded from the store whenever the search text (full-text search over
prompts and outputs, debounced) or a filter (session, model, finish reason) changes. Store
errors (a locked or broken database, a malformed search) are shown above the table and
never end the app.

While it is open the screen follows the runs that are running: those of this dashboard show
their sessions' live figures (updated every :data:`LIVE_REFRESH_S`) and the table is read
again when one starts or ends; runs running elsewhere are read again every
:data:`STORE_RUNNING_RELOAD_S`. The count line says how many are running.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Input, Select, Static

from tui.ui.commands import ScreenBindingCommands, shown_key
from tui.ui.key_routing import take_typed_key
from tui.ui.screens.replay import ReplayScreen
from tui.ui.ticker import Ticker
from tui.ui.widgets.footer import KeysFooter
from tui.ui.widgets.recording import RecordingStatus
from tui.ui.widgets.run_table import RunTable
from tui.vocab import FINISH_REASONS

if TYPE_CHECKING:
    from tui.session import SessionController
    from tui.store import Store
    from tui.store.records import RunSummary
    from tui.stream.metrics import MetricsSnapshot

SEARCH_DEBOUNCE_S = 0.25
"""Typing in the search box reloads the table this long after the last key."""

LIVE_REFRESH_S = 1.0
"""How often the screen follows the runs that are running (live figures, their end)."""

STORE_RUNNING_RELOAD_S = 2.0
"""A run running elsewhere (another tokentop) is read again this often: the store rewrites
a running run's row every ``CHECKPOINT_S`` = 2 s."""


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
        Binding(
            "C",
            "replay_columns",
            "Compare replay",
            id="history.replay_columns",
            tooltip="Replay the compare the selected run was sent in: its columns side by side",
        ),
        Binding("ctrl+r", "reload", "Reload", id="history.reload", tooltip="Read the store again"),
        Binding(
            "ctrl+o",
            "rounds",
            "Rounds",
            id="history.rounds",
            tooltip="The stored compare rounds: Enter opens one's table",
        ),
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

    def __init__(
        self,
        store: Store,
        *,
        limit: int = 500,
        sessions: Sequence[SessionController] = (),
        recording: Callable[[], str | None] | None = None,
    ) -> None:
        """List up to ``limit`` runs of ``store`` (newest first); ``sessions``: this
        dashboard's sessions, whose running runs show their live figures; ``recording``
        says why runs are not saved (a line at the top while so)."""
        super().__init__()
        self._recording = recording
        self.store = store
        self.limit = limit
        self.sessions = list(sessions)
        self.runs: list[RunSummary] = []
        """The runs shown, in table order."""
        self.error: str | None = None
        """The last store error, shown above the table (None when the last load worked)."""
        self.loads = 0
        """How many loads have completed (tests wait on it)."""
        self._debounce: Timer | None = None
        self._live_at_load: frozenset[str] = frozenset()
        self._loaded_at = 0.0
        self._options_loaded = False

    def compose(self) -> ComposeResult:
        """Search box and filters, the runs table, empty and error states, footer."""
        if self._recording is not None:
            yield RecordingStatus(self._recording)
        with Horizontal(id="history-filters"):
            yield Input(placeholder="search prompts and answers…", id="history-search")
            yield Select[str]([], prompt="session", id="filter-session")
            yield Select[str]([], prompt="model", id="filter-model")
            yield Select[str](
                [(reason, reason) for reason in FINISH_REASONS], prompt="finish", id="filter-finish"
            )
        yield Static("", id="history-count")
        yield Static("", id="history-error", markup=False)
        yield RunTable(id="history-table")
        yield Static("", id="history-empty")
        yield KeysFooter()

    def on_mount(self) -> None:
        """Load the newest runs, and follow the running ones."""
        table = self.query_one(RunTable)
        self.set_focus(table)
        self.watch(self.app, "theme", table.recolour, init=False)
        self._untick = Ticker.of(self.app).subscribe(self, self._follow_running, 1 / LIVE_REFRESH_S)
        self.load_runs()

    def on_unmount(self) -> None:
        self._untick()

    def live_runs(self) -> dict[str, MetricsSnapshot]:
        """The runs of this dashboard's sessions that are running, with their figures."""
        live: dict[str, MetricsSnapshot] = {}
        for session in self.sessions:
            run = session.current
            snapshot = session.snapshot() if run is not None and not run.done else None
            if run is not None and snapshot is not None:
                live[run.run_id] = snapshot
        return live

    def _follow_running(self) -> None:
        """Live figures for the running runs; read the table again when one of this
        dashboard's runs started or ended, or when a run running elsewhere may have moved."""
        live = self.live_runs()
        elsewhere = any(r.status == "running" and r.run_id not in live for r in self.runs)
        if frozenset(live) != self._live_at_load or (
            elsewhere and time.monotonic() - self._loaded_at >= STORE_RUNNING_RELOAD_S
        ):
            self.load_runs()
            return
        if live:
            self.query_one(RunTable).update_live(live)

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
        live = self.live_runs()
        try:
            runs = await self.store.list_runs(
                search=search, session=session, model=model, finish=finish, limit=self.limit
            )
            if not self._options_loaded:
                await self._load_filter_options(runs if not (search or session or model) else None)
        except Exception as exc:  # any store failure is shown, never fatal
            self._show_error(f"could not read the history: {exc}")
            self._live_at_load = frozenset(live)
            self.loads += 1
            return
        self._show_error(None)
        self.runs = list(runs)
        self._live_at_load = frozenset(live)
        self._loaded_at = time.monotonic()
        self.query_one(RunTable).show(self.runs, live)
        self._describe(filtered=bool(search or session or model or finish), live=live)
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

    def _describe(self, *, filtered: bool, live: dict[str, MetricsSnapshot]) -> None:
        """The empty state and the count line for the runs just shown."""
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
        running = self._running_note(live, filtered=filtered)
        columns = shown_key(self, "replay_columns", "C")
        hint = f" · enter replays the selected run, o shows it at once, {columns} its compare"
        hint = hint if self.runs else ""
        self.query_one("#history-count", Static).update(
            f"{len(self.runs)} {noun}{more}{running}{hint}"
        )

    def _running_note(self, live: dict[str, MetricsSnapshot], *, filtered: bool) -> str:
        """`` · 3 running (2 in this dashboard)``: the shown runs the store has as running
        and this dashboard's running runs (also those not saved, when nothing is filtered
        out), or nothing when none runs."""
        shown = {run.run_id for run in self.runs}
        here = [run_id for run_id in live if run_id in shown or not filtered]
        elsewhere = [r for r in self.runs if r.status == "running" and r.run_id not in live]
        unsaved = "" if all(run_id in shown for run_id in here) else ", not all saved"
        total = len(here) + len(elsewhere)
        if not total:
            return ""
        if not here:
            return f" · {total} running"
        if not elsewhere:
            return f" · {total} running in this dashboard{unsaved}"
        return f" · {total} running ({len(here)} in this dashboard{unsaved})"

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
        self.set_focus(self.query_one(RunTable))

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
        table = self.query_one(RunTable)
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

    @work(exclusive=True, group="history-columns", exit_on_error=False)
    async def action_replay_columns(self) -> None:
        """Replay the compare the selected run's conversation was a column of (every
        conversation a compare broadcast sent with it, side by side), or say that no
        broadcast sent it with others."""
        from tui.ui.screens.compare_replay import CompareReplayScreen, no_columns_message

        if (run_id := self.selected_run_id) is None:
            return
        try:
            columns = await self.store.compared_conversations(run_id)
        except Exception as exc:  # any store failure is shown, never fatal
            self.notify(f"cannot read the compare of {run_id}: {exc}", severity="error")
            return
        if len(columns) < 2:
            self.notify(no_columns_message(columns[0]), title="Compare replay", markup=False)
            return
        cid = columns[0].conversation_id
        self.app.push_screen(CompareReplayScreen(self.store, cid, columns=columns))

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

    def action_rounds(self) -> None:
        """List the stored compare rounds (Enter opens one's ranking table)."""
        from tui.ui.screens.rounds import RoundList

        self.app.push_screen(RoundList(self.store))

    def action_close(self) -> None:
        """Clear the search first (wherever the focus is), then leave the search box, then
        go back to the dashboard."""
        search = self.query_one("#history-search", Input)
        if search.value:
            search.value = ""  # the table reloads as for any change of the search
            return
        if self.focused is search:
            self.set_focus(self.query_one(RunTable))
            return
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        else:
            self.app.exit()
