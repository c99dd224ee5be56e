"""MainScreen: totals header, then tabs: the overview first and one tab per session.

The screen only composes and routes: session actions (cancel, restart, edit prompt, copy,
follow, raw) apply to the *current session*: the active tab's session, or on the overview
the session under the cursor. Tab labels show the state's glyph; the Tab's classes (from
:data:`tui.ui.style.STATE_CLASSES`, plus ``-unread``) colour it in app.tcss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import TabbedContent, TabPane

from tui.session import SessionController
from tui.ui.keymap import BINDING_IDS
from tui.ui.screens import main_actions
from tui.ui.ticker import Ticker, not_subscribed
from tui.ui.toasts import RunEndToasts, ToastBatcher
from tui.ui.widgets.footer import KeysFooter
from tui.ui.widgets.overview import OverviewTable
from tui.ui.widgets.pending_pane import PendingPane
from tui.ui.widgets.session_tabs import TAB_CLASSES, SessionTabs, session_tab_id
from tui.ui.widgets.totals import TotalsBar

if TYPE_CHECKING:
    from tui.ui.monitoring import Monitoring
    from tui.ui.sessions_edit import SessionsEditor
    from tui.ui.widgets.session_pane import SessionPane

TAB_REFRESH_HZ = 4.0

__all__ = ["TAB_CLASSES", "MainScreen", "PendingPane", "session_tab_id"]


def _bind(key: str, action: str, description: str, **options: Any) -> Binding:
    """A binding whose id is its action and whose tooltip is the keymap's description."""
    return Binding(key, action, description, id=action, tooltip=BINDING_IDS[action], **options)


class MainScreen(Screen[None]):
    """Overview and session tabs."""

    BINDING_GROUP_TITLE = "Dashboard"
    BINDINGS: ClassVar[list[BindingType]] = [
        _bind("o", "overview", "Overview"),
        _bind("right_square_bracket", "next_tab", "Next"),
        _bind("left_square_bracket", "previous_tab", "Prev", show=False),
        _bind("x", "cancel_run", "Cancel"),
        _bind("r", "restart_run", "Restart"),
        _bind("e", "edit_prompt", "Edit"),
        _bind("i", "follow_up", "Reply"),
        _bind("N", "new_conversation", "New chat", show=False),
        _bind("plus", "add_session", "Add", show=False),
        _bind("D", "duplicate_session", "Copy session", show=False),
        _bind("minus", "remove_session", "Remove", show=False),
        _bind("y", "copy_answer", "Copy"),
        _bind("f", "toggle_follow", "Follow"),
        _bind("v", "toggle_raw", "Raw"),
        _bind("R", "restart_all", "Restart all", show=False),
        _bind("m", "monitor", "Monitor"),
        _bind("a", "acknowledge_alerts", "Ack alerts"),
        _bind("A", "acknowledge_all_alerts", "Ack all", show=False),
    ]

    def __init__(
        self,
        sessions: Sequence[SessionController],
        *,
        monitoring: Monitoring | None = None,
        editor: SessionsEditor | None = None,
    ) -> None:
        super().__init__()
        self.sessions = list(sessions)
        self.editor = editor
        """Adds and removes sessions from the dashboard (None: ``+``, ``D`` and ``-`` say
        that this dashboard cannot)."""
        self.monitoring = monitoring
        """Run tally, figures and alerts (None: the header counts the latest runs, the
        monitoring columns stay empty, no alerts)."""
        self.run_toasts: RunEndToasts | None = None
        """The toasts of runs that end out of view, one per kind and burst (made on mount)."""
        self.failures: ToastBatcher | None = None
        """The toasts of failed runs, one per burst (``run_toasts.failed``)."""
        self._session_tabs = SessionTabs()
        self._tab_state = self._session_tabs.shown
        """Label and classes last set per tab id (removing a session drops its entry)."""
        self._tabs_due = False
        self._overview_due = False
        self._untick = not_subscribed
        self._any_alerts = False
        self.panes: dict[int, SessionPane] = {}
        """The mounted session panes by session index (they mount just after the first frame)."""

    def alerts(self, session_name: str) -> int:
        """How many unacknowledged alerts the session has."""
        return 0 if self.monitoring is None else self.monitoring.alert_count(session_name)

    def compose(self) -> ComposeResult:
        monitoring = self.monitoring
        yield TotalsBar(
            self.sessions,
            tally=monitoring.tally if monitoring else None,
            alerting=self._alerting,
            id="totals",
        )
        with TabbedContent(id="tabs", initial="overview"):
            with TabPane("Overview", id="overview"):
                yield OverviewTable(
                    self.sessions,
                    figures=monitoring.figures if monitoring else None,
                    alerts=self.alerts,
                    id="overview-panel",
                )
            for index, live in enumerate(self.sessions):
                with TabPane(live.name, id=session_tab_id(index)):
                    yield PendingPane(live, index)
        yield KeysFooter()

    def on_mount(self) -> None:
        self.run_toasts = RunEndToasts(self.app)
        self.failures = self.run_toasts.failed
        self.refresh_tabs()
        self._untick = Ticker.of(self.app).subscribe(self, self.refresh_tabs, TAB_REFRESH_HZ)
        self.query_one(OverviewTable).table.focus()

    def on_unmount(self) -> None:
        self._untick()

    def on_screen_resume(self) -> None:
        # Back on top (a screen over it was closed): the views the ticker skipped meanwhile
        # are brought up to date before the first frame shows them.
        Ticker.of(self.app).catch_up(self.query_one(TotalsBar))
        if (pane := self.current_pane) is not None:
            pane.catch_up()
        elif self.panes and self.tabs.active == "overview":
            self.overview.catch_up()

    def on_resize(self) -> None:
        self.call_after_refresh(self.refresh_tabs)  # the labels fit the new width

    # -- where are we ----

    @property
    def tabs(self) -> TabbedContent:
        """The tab container."""
        return self.query_one("#tabs", TabbedContent)

    @property
    def overview(self) -> OverviewTable:
        """The overview table widget."""
        return self.query_one(OverviewTable)

    def pane_for(self, live: SessionController) -> SessionPane | None:
        """The pane that shows ``live`` (None in the moment before the panes are mounted)."""
        return self._pane(self.sessions.index(live))

    def _pane(self, index: int) -> SessionPane | None:
        return self.panes.get(index)

    @property
    def current_pane(self) -> SessionPane | None:
        """The pane of the active session tab (None on the overview)."""
        active = self.tabs.active
        if not active.startswith("session-"):
            return None
        return self._pane(int(active.removeprefix("session-")))

    @property
    def current_session(self) -> SessionController | None:
        """The active tab's session (its pane mounted or not yet), or the overview's
        selected row."""
        active = self.tabs.active
        if active.startswith("session-"):
            index = int(active.removeprefix("session-"))
            if index < len(self.sessions):
                return self.sessions[index]
        return self.overview.selected_session

    def show_session(self, name: str) -> None:
        """Activate the tab of the session called ``name`` and focus its transcript at once
        (a deferred focus of another tab's widget would switch the tabs back)."""
        for index, live in enumerate(self.sessions):
            if live.name == name:
                pane = self._pane(index)
                if pane is not None:
                    pane.catch_up()  # its first frame shows what it buffered while hidden
                self.tabs.active = session_tab_id(index)
                if pane is not None:
                    self.set_focus(pane.transcript)
                return

    # -- tab labels ----

    def refresh_tabs(self) -> None:
        """Update each session tab's label and classes from its state (4 Hz); the labels
        are fitted to the strip's width (:func:`~tui.ui.widgets.format.tab_labels`). Only
        the tabs whose label or classes changed are touched; when no session's mark
        changed, nothing is fitted again."""
        self._tabs_due = False
        any_alerts = self._alerting() > 0
        if any_alerts != self._any_alerts:
            self._any_alerts = any_alerts
            self.refresh_bindings()  # the footer shows "a Ack alerts" only while alerting
        self._session_tabs.refresh(
            self.tabs,
            self.sessions,
            unread=self._unread,
            alerts=self.alerts,
            after_refresh=self.call_after_refresh,
            fallback_width=self.size.width,
        )

    def _unread(self, index: int) -> bool:
        pane = self._pane(index)
        return pane is not None and pane.unread

    def on_session_pane_unread_changed(self, event: SessionPane.UnreadChanged) -> None:
        self._tabs_soon()

    def _tabs_soon(self) -> None:
        """Refresh the tabs once the messages queued now are handled: a burst of panes
        that got output (or ended) at once is one refresh, not one per pane."""
        if not self._tabs_due:
            self._tabs_due = True
            self.call_later(self._tabs_if_due)

    def _tabs_if_due(self) -> None:
        if self._tabs_due:
            self.refresh_tabs()

    def _overview_soon(self) -> None:
        """Bring the overview, when it is shown, up to the sessions once the messages
        queued now are handled (a burst of runs starting or ending is one catch-up)."""
        if not self._overview_due:
            self._overview_due = True
            self.call_later(self._overview_if_due)

    def _overview_if_due(self) -> None:
        self._overview_due = False
        if self.current_pane is None and self.app.screen is self:
            self.overview.catch_up()

    def on_session_pane_run_finished(self, event: SessionPane.RunFinished) -> None:
        """Tell the user when a session that is not in view ends or fails."""
        self._tabs_soon()
        self._overview_soon()
        if event.pane is self.current_pane and self.app.screen is self:
            return
        on_overview = self.current_pane is None and self.app.screen is self
        if self.run_toasts is not None:  # a burst of endings is one toast per kind
            self.run_toasts.run_ended(event.live, event.event, seen_on_overview=on_overview)

    @on(OverviewTable.SessionChosen)
    def _session_chosen(self, event: OverviewTable.SessionChosen) -> None:
        self.show_session(event.name)

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        for hidden in self.panes.values():
            hidden.mark_hidden()
        pane = self.current_pane
        if pane is not None:
            pane.unread = False
            pane.catch_up()  # shown by a click on its tab: cheap when already caught up
        else:
            self.overview.catch_up()  # shown by a click on its tab
        self.refresh_bindings()

    def on_session_pane_run_started(self, event: SessionPane.RunStarted) -> None:
        """A run began (a restart): the overview, when shown, says so at once."""
        self._overview_soon()

    # -- actions ----

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Pane-only actions are shown disabled on the overview; acknowledging is only in
        the footer while some session has alerts."""
        if action in ("toggle_follow", "toggle_raw", "follow_up") and self.current_pane is None:
            return None
        if action in ("acknowledge_alerts", "acknowledge_all_alerts"):
            return self._any_alerts
        return True

    def action_overview(self) -> None:
        """Show the overview tab (its rows up to date in its first frame)."""
        self.overview.catch_up()
        self.tabs.active = "overview"
        self.overview.table.focus()

    def _cycle_tab(self, step: int) -> None:
        ids = ["overview", *(session_tab_id(i) for i in range(len(self.sessions)))]
        current = ids.index(self.tabs.active) if self.tabs.active in ids else 0
        target = ids[(current + step) % len(ids)]
        if target == "overview":
            self.overview.catch_up()
        elif (shown := self._pane(ids.index(target) - 1)) is not None:
            shown.catch_up()
        self.tabs.active = target
        pane = self.current_pane
        if pane is not None:
            self.set_focus(pane.transcript)
        else:
            self.set_focus(self.overview.table)

    def action_next_tab(self) -> None:
        """Show the next tab."""
        self._cycle_tab(1)

    def action_previous_tab(self) -> None:
        """Show the previous tab."""
        self._cycle_tab(-1)

    def action_cancel_run(self) -> None:
        """Cancel the current session's run."""
        live = self.current_session
        if live is None:
            return
        if live.running:
            live.cancel()
            self.notify(f"Cancelling {live.name}…", timeout=2)
        else:
            self.notify(f"{live.name} is not running.", timeout=2)

    def action_restart_run(self) -> None:
        """Restart the current session's run."""
        live = self.current_session
        if live is not None:
            live.restart()

    def _alerting(self) -> int:
        return sum(1 for live in self.sessions if self.alerts(live.name))

    def action_monitor(self) -> None:
        """Open the monitor view of the current session (the first one on an empty overview)."""
        if self.monitoring is None or not self.sessions:
            return
        from tui.ui.screens.monitor import MonitorScreen

        live = self.current_session or self.sessions[0]
        self.app.push_screen(MonitorScreen(self.sessions, live.name, self.monitoring))

    def action_acknowledge_alerts(self) -> None:
        """Acknowledge the current session's alerts (its row and tab return to its state)."""
        live = self.current_session
        if live is None or self.monitoring is None:
            return
        count = self.monitoring.acknowledge(live.name)
        if count:
            self.notify(
                f"{live.name}: {count} alert{'s' if count > 1 else ''} acknowledged.", timeout=2
            )
        else:
            self.notify(f"{live.name} has no alerts.", timeout=2)
        self.refresh_tabs()

    def action_acknowledge_all_alerts(self) -> None:
        """Acknowledge every session's alerts."""
        if self.monitoring is None:
            return
        count = self.monitoring.acknowledge(None)
        self.notify(f"{count} alert{'s' if count != 1 else ''} acknowledged.", timeout=2)
        self.refresh_tabs()

    def action_restart_all(self) -> None:
        """Restart every session."""
        for live in self.sessions:
            live.restart()

    def action_edit_prompt(self) -> None:
        """Edit the last turn's prompt, then run that turn again."""
        main_actions.edit_last_turn(self)

    def action_follow_up(self) -> None:
        """Focus the current pane's prompt line (the next turn)."""
        if (pane := self.current_pane) is not None:
            pane.focus_follow_up()

    def action_new_conversation(self) -> None:
        """Begin a new, empty conversation in the current session."""
        main_actions.new_conversation(self)

    def action_add_session(self) -> None:
        """Open the add-session form."""
        main_actions.add_session(self)

    def action_duplicate_session(self) -> None:
        """Open the add-session form on a copy of the current session."""
        main_actions.add_session(self, copy=True)

    def action_remove_session(self) -> None:
        """Ask, then remove the current session (one of tokentop's own)."""
        main_actions.remove_session(self)

    def action_copy_answer(self) -> None:
        """Copy the current session's answer (and say where it went)."""
        main_actions.copy_answer(self)

    def action_toggle_follow(self) -> None:
        """Follow the tail of the transcript, or stop following it."""
        pane = self.current_pane
        if pane is not None:
            following = pane.toggle_follow()
            self.notify("Following the tail." if following else "Not following.", timeout=1.5)

    def action_toggle_raw(self) -> None:
        """Switch between the transcript and the raw event log."""
        pane = self.current_pane
        if pane is not None:
            pane.raw = not pane.raw
