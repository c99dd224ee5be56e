"""SessionTabs: the session tabs' labels and classes, kept in step with the sessions.

Each tab shows its session's state glyph (or the alert glyph), its name and ``•`` while it
has unread output, fitted to the strip's width (:func:`~tui.ui.widgets.format.tab_labels`);
its classes (:data:`tui.ui.style.STATE_CLASSES`, ``-unread``, the alert class) colour it in
app.tcss. A refresh when no mark changed costs a pass over the sessions' states; only tabs
whose label or classes changed are touched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.cells import cell_len
from textual.css.query import NoMatches
from textual.widgets import Tab, TabbedContent, Tabs

from tui.session import SessionController
from tui.ui.style import ALERT_CLASS, ALERT_GLYPH, STATE_CLASS_NAMES, STATE_CLASSES
from tui.ui.widgets.format import tab_labels
from tui.vocab import STATE_GLYPHS

TAB_PADDING = 2
"""Cells a tab adds around its label (Textual's ``Tab`` has ``padding: 0 1``)."""

TAB_CLASSES = (*STATE_CLASS_NAMES, "-unread", ALERT_CLASS)
"""Every class :meth:`SessionTabs.refresh` sets on a session tab."""


def session_tab_id(index: int) -> str:
    """The TabPane id of the session at ``index`` (names are free text, ids are not)."""
    return f"session-{index}"


TAB_CLASSES_SET = frozenset(TAB_CLASSES)


class SessionTabs:
    """What the session tabs show, and the refresh that brings them up to the sessions."""

    def __init__(self) -> None:
        self.shown: dict[str, tuple[str, frozenset[str]]] = {}
        """Label and classes last set per tab id (a removed session's entry is dropped by
        whoever removes its tab)."""
        self._seen: tuple[int, list[tuple[str, bool]], list[frozenset[str]]] | None = None
        self._strip: Tabs | None = None

    def _strip_width(self, tabs: TabbedContent) -> int:
        """The tab strip's width (0 while it is not there: the tabs are being torn down)."""
        strip = self._strip
        if strip is None or strip.parent is None:
            try:
                strip = self._strip = tabs.query_one(Tabs)
            except NoMatches:
                return 0
        return strip.size.width

    def refresh(
        self,
        tabs: TabbedContent,
        sessions: Sequence[SessionController],
        *,
        unread: Callable[[int], bool],
        alerts: Callable[[str], int],
        after_refresh: Callable[..., object],
        fallback_width: int,
    ) -> None:
        """Set the label and classes of every tab whose marks changed (``unread(index)``:
        the session's pane has unread output; ``alerts(name)``: its unacknowledged alerts;
        ``after_refresh``: the screen's ``call_after_refresh``)."""
        marks: list[tuple[str, bool]] = []
        all_classes: list[frozenset[str]] = []
        for index, live in enumerate(sessions):
            is_unread = unread(index)
            alerting = alerts(live.name) > 0
            classes = STATE_CLASSES[live.state] | ({"-unread"} if is_unread else frozenset())
            if alerting:
                classes |= {ALERT_CLASS}
            all_classes.append(classes)
            marks.append((ALERT_GLYPH if alerting else STATE_GLYPHS[live.state], is_unread))
        width = self._strip_width(tabs) or fallback_width
        seen = (width, marks, all_classes)
        if seen == self._seen:
            return
        self._seen = seen
        room = width - cell_len("Overview") - TAB_PADDING if width else None
        names = [live.name for live in sessions]
        labels = tab_labels(marks, names, room, padding=TAB_PADDING)
        for index, (label, classes) in enumerate(zip(labels, all_classes, strict=True)):
            pane_id = session_tab_id(index)
            key = (label, classes)
            if self.shown.get(pane_id) == key:
                continue
            self.shown[pane_id] = key
            tab = tabs.get_tab(pane_id)
            tab.label = label
            tab.tooltip = sessions[index].name  # the whole name, however short the label
            # one restyle of the tab, not one per class removed and added
            tab.set_classes((tab.classes - TAB_CLASSES_SET) | classes)
            # Tabs moves its underline right after a relabel, and can read the tab's old
            # width; asked again once the new label is laid out, it fits the tab
            after_refresh(tab.post_message, Tab.Relabelled(tab))
