"""Compare rounds in the dashboard: N runs per checked session, then the table that ranks them.

:class:`RoundSetup` asks for the round (how many runs per session, in which order, which
prompt); :class:`RoundScreen` runs a :class:`~tui.session.rounds.Round` (or shows one kept in
the store, :func:`open_stored_round`) and draws what :class:`~tui.session.round_report.RoundReport`
says: the progress while it runs, per session the successes, median, p95 and p25-p75 spread
of TTFT, tokens/s and duration, output tokens and cost per run, the ranking with its ties,
and why a session has no rank. The figures are the session layer's; this module only lays
out the cells :mod:`tui.session.round_table` makes, as ``tokentop compare`` prints them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Input, Label, Select, Static

from tui.session.round_plan import MAX_RUNS_PER_COLUMN, ROUND_ORDERS, RoundOrder
from tui.session.round_report import RoundReport
from tui.session.round_stats import METRICS, Metric
from tui.session.round_table import (
    RIGHT_ALIGNED,
    fit_cells,
    table_cells,
    title_line,
    verdict_lines,
)
from tui.ui.ticker import Ticker, not_subscribed
from tui.ui.widgets.footer import KeysFooter

if TYPE_CHECKING:
    from tui.session import SessionRuntime
    from tui.session.rounds import Round
    from tui.store import Store
    from tui.store.records import RoundRecord, RunDetail

__all__ = [
    "RoundList",
    "RoundRequest",
    "RoundScreen",
    "RoundSetup",
    "ask_for_round",
    "open_stored_round",
    "start_round",
]

DEFAULT_COUNT = 5
"""Runs per session a new round offers."""

REFRESH_S = 0.25
"""How often a running round's table is drawn again (when a run started or finished)."""


@dataclass(frozen=True, slots=True)
class RoundRequest:
    """What :class:`RoundSetup` asked for."""

    count: int
    order: RoundOrder
    prompt: str | None
    """None: each session's own prompt."""


class RoundSetup(ModalScreen[RoundRequest | None]):
    """How many runs per session, the order, and the prompt of a new round."""

    DEFAULT_CSS = """
    RoundSetup { align: center middle; }
    RoundSetup > Vertical {
        width: 72; height: auto; padding: 1 2; border: round $accent; background: $surface;
    }
    RoundSetup Label { margin-top: 1; }
    RoundSetup #round-error { color: $error; height: auto; }
    """
    AUTO_FOCUS = "#round-count"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Cancel", id="round_setup.cancel"),
    ]

    def __init__(self, sessions: Sequence[str], prompt: str | None = None) -> None:
        super().__init__()
        self.sessions = tuple(sessions)
        self.prompt = prompt or ""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"A round over {len(self.sessions)} sessions: {', '.join(self.sessions)}")
            yield Label("Runs per session (Enter starts the round)")
            yield Input(str(DEFAULT_COUNT), id="round-count", restrict=r"[0-9]*")
            yield Label("Order")
            yield Select(
                [(order, order) for order in ROUND_ORDERS],
                value="interleaved",
                allow_blank=False,
                id="round-order",
            )
            yield Label("Prompt (empty: each session's own)")
            yield Input(self.prompt, id="round-prompt")
            yield Static("", id="round-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = self.query_one("#round-count", Input).value.strip()
        count = int(text) if text.isdigit() else 0
        if not 1 <= count <= MAX_RUNS_PER_COLUMN:
            self.query_one("#round-error", Static).update(
                f"Runs per session: a whole number from 1 to {MAX_RUNS_PER_COLUMN}."
            )
            return
        order = self.query_one("#round-order", Select).value
        prompt = self.query_one("#round-prompt", Input).value
        self.dismiss(
            RoundRequest(
                count,
                order if isinstance(order, str) and order in ROUND_ORDERS else "interleaved",
                prompt if prompt.strip() else None,
            )
        )

    def action_dismiss_none(self) -> None:
        """Close without a round."""
        self.dismiss(None)


class RoundScreen(Screen[None]):
    """A round's progress and its ranking table (a live round, or one from the store)."""

    TITLE = "Round"
    DEFAULT_CSS = """
    RoundScreen { layout: vertical; }
    RoundScreen #round-title { text-style: bold; padding: 0 1; }
    RoundScreen #round-progress { color: $text-muted; padding: 0 1; }
    RoundScreen DataTable { height: auto; max-height: 60%; margin: 1 0; }
    RoundScreen #round-verdict { padding: 0 1; height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "b",
            "next_metric",
            "Rank by",
            id="round.by",
            tooltip="Rank the sessions by TTFT, tokens/s or duration",
        ),
        Binding(
            "ctrl+x",
            "cancel_round",
            "Cancel",
            id="round.cancel",
            tooltip="Cancel the round (the run in progress ends; the rest are skipped)",
        ),
        Binding("escape", "close", "Back", id="round.close"),
    ]

    def __init__(
        self,
        round: Round | None = None,
        *,
        stored: tuple[RoundRecord, Mapping[str, RunDetail]] | None = None,
        by: Metric = "ttft",
    ) -> None:
        super().__init__()
        if (round is None) == (stored is None):
            raise ValueError("a round screen shows a live round or a stored one")
        self.round = round
        self.stored = stored
        self.by: Metric = by
        self._drawn = -1

    def compose(self) -> ComposeResult:
        yield Static("", id="round-title")
        yield Static("", id="round-progress")
        yield DataTable(id="round-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="round-verdict")
        yield KeysFooter()

    def on_mount(self) -> None:
        self._untick = not_subscribed
        if self.round is not None:
            self.round.start()
            self._untick = Ticker.of(self.app).subscribe(self, self._draw_if_changed, 1 / REFRESH_S)
        self._draw()

    def on_unmount(self) -> None:
        self._untick()

    def report(self) -> RoundReport:
        """The round's figures now."""
        if self.round is not None:
            return RoundReport.of_round(self.round, self.by)
        assert self.stored is not None
        record, details = self.stored
        return RoundReport.of_stored(record, details, self.by)

    def _draw_if_changed(self) -> None:
        if self.round is not None and self.round.version != self._drawn:
            self._draw()

    def _draw(self) -> None:
        round = self.round
        if round is not None:
            self._drawn = round.version
        report = self.report()
        self.query_one("#round-title", Static).update(title_line(report))
        progress = ""
        if round is not None:
            running = ", ".join(f"{e.session} #{e.index}" for e in round.running)
            progress = f"{round.finished}/{round.total} runs finished"
            if running:
                progress += f" · running: {running}"
        elif report.ended_at is None:
            progress = "not ended (the tokentop that ran it may still be running)"
        self.query_one("#round-progress", Static).update(progress)
        cells, shown, dropped = fit_cells(
            table_cells(report), self.size.width - 2, by=report.by, measure=cell_len
        )
        self._fill(cells, shown)
        lines = verdict_lines(report) if report.runs else ["no run has finished yet"]
        if dropped:
            lines.append(
                f"left out at this width: {', '.join(dropped)} (a wider terminal shows "
                f"them; tokentop compare --round {report.round_id} prints them all)"
            )
        self.query_one("#round-verdict", Static).update("\n".join(lines))

    def on_resize(self) -> None:
        # The columns that fit depend on the width.
        self._draw()

    def _fill(self, cells: list[list[str]], shown: list[int]) -> None:
        table = self.query_one("#round-table", DataTable)
        header, rows = cells[0], cells[1:]
        if [str(c.label) for c in table.columns.values()] != header:
            table.clear(columns=True)
            for i, name in enumerate(header):
                table.add_column(name, key=str(i))
        else:
            table.clear()
        for row in rows:
            table.add_row(
                *(_cell(value, i in RIGHT_ALIGNED) for i, value in zip(shown, row, strict=True)),
                key=row[1],
            )

    def action_next_metric(self) -> None:
        """Rank by the next metric (TTFT, tokens/s, duration)."""
        self.by = METRICS[(METRICS.index(self.by) + 1) % len(METRICS)]
        self._draw()
        self.notify(f"Ranked by {self.by}.", timeout=2)

    def action_cancel_round(self) -> None:
        """Cancel the running round."""
        if self.round is not None and self.round.status in ("pending", "running"):
            self.round.cancel()
            self.notify("Round cancelled: the run in progress ends, the rest are skipped.")

    def action_close(self) -> None:
        """Back to compare (a running round goes on; its runs show in the columns)."""
        self.dismiss()


class RoundList(Screen[None]):
    """The stored compare rounds, newest first; Enter opens one's table (from History)."""

    TITLE = "Rounds"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_round", "Open", id="rounds.open", tooltip="Show the round's table"),
        Binding("escape", "close", "Back", id="rounds.close"),
    ]

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    def compose(self) -> ComposeResult:
        yield Static("stored compare rounds, newest first (Enter opens one)", id="rounds-title")
        yield DataTable(id="rounds-table", cursor_type="row", zebra_stripes=True)
        yield KeysFooter()

    async def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for name in ("round", "started", "sessions", "runs", "order", "status"):
            table.add_column(name)
        try:
            rounds = await self.store.list_rounds(limit=200)
        except Exception as exc:
            self.notify(f"Cannot read the rounds: {exc}", severity="error")
            return
        import time

        for record in rounds:
            started = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.started_at))
            table.add_row(
                record.id[:12],
                started,
                ", ".join(record.sessions),
                f"{len(record.runs)}/{record.count * len(record.sessions)}",
                record.order,
                record.status,
                key=record.id,
            )
        if not rounds:
            self.query_one("#rounds-title", Static).update("no compare round is stored yet")
        table.focus()

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row (the table takes the key): open that round."""
        event.stop()
        if event.row_key.value is not None:
            await open_stored_round(self, self.store, event.row_key.value)

    async def action_open_round(self) -> None:
        """Open the selected round's table."""
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        if row_key.value is not None:
            await open_stored_round(self, self.store, row_key.value)

    def action_close(self) -> None:
        """Back to History."""
        self.dismiss()


def _cell(value: str, right: bool) -> str | object:
    """A table cell, numbers aligned right."""
    if not right:
        return value
    from rich.text import Text

    return Text(value, justify="right")


def start_round(
    screen: Screen[Any],
    runtime: SessionRuntime,
    sessions: Sequence[str],
    request: RoundRequest,
) -> RoundScreen | None:
    """Start a round of ``request`` over ``sessions`` and show it (a bad argument is said in a
    notification instead)."""
    from tui.session.rounds import Round

    try:
        round = Round(
            runtime, sessions, count=request.count, prompt=request.prompt, order=request.order
        )
    except ValueError as exc:
        screen.notify(f"Cannot start the round: {exc}", severity="error")
        return None
    view = RoundScreen(round)
    screen.app.push_screen(view)
    return view


def ask_for_round(screen: Screen[Any], sessions: Sequence[str], prompt: str | None) -> None:
    """Ask for a round over ``sessions`` (:class:`RoundSetup`, ``prompt`` offered), then
    start it (:func:`start_round`) on the app's runtime."""
    if not sessions:
        screen.notify("No session is checked: check one in a column header.", severity="warning")
        return
    runtime: SessionRuntime | None = getattr(screen.app, "runtime", None)
    if runtime is None:
        screen.notify("Rounds need the dashboard's sessions.", severity="error")
        return

    def chosen(request: RoundRequest | None) -> None:
        if request is not None and runtime is not None:
            start_round(screen, runtime, sessions, request)

    screen.app.push_screen(RoundSetup(sessions, prompt), chosen)


async def open_stored_round(screen: Screen[Any], store: Store, round_id: str) -> None:
    """Show a round kept in the store (a missing or unreadable one is said)."""
    try:
        record = await store.get_round(round_id)
        if record is None:
            screen.notify(f"No round {round_id!r} in the store.", severity="warning")
            return
        details: dict[str, RunDetail] = {}
        for member in record.runs:
            detail = await store.get_run(member.run_id)
            if detail is not None:
                details[member.run_id] = detail
    except Exception as exc:
        screen.notify(f"Cannot read the round: {exc}", severity="error")
        return
    screen.app.push_screen(RoundScreen(stored=(record, details)))
