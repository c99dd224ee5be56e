"""The colours of states and outcomes: which theme variable or CSS class shows each one.

The words and glyphs are :mod:`tui.vocab`'s; this module only says how the Textual face
colours them. Rich-styled cells (the overview, the history table) look the variable up here;
CSS-styled widgets (the session tabs, the finish badge) get a class named here, and
``app.tcss`` gives each class its look.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.style import Style
from textual.color import ColorParseError

from tui.ui.themes import resolve_colour
from tui.vocab import SessionState, Tone

STATE_VARIABLES: dict[SessionState, str] = {
    "queued": "status-queued",
    "connecting": "status-connecting",
    "streaming": "status-streaming",
    "retrying": "status-retry",
    "resumed": "status-ok",
    "waiting": "status-queued",
    "done": "status-ok",
    "incomplete": "status-warn",
    "failed": "status-failed",
    "cancelled": "status-cancelled",
}
"""The theme variable that colours each session state (overview, tabs, totals header)."""

LOUD_STATES: frozenset[SessionState] = frozenset({"retrying", "incomplete", "failed"})
"""Session states whose tab label is bold (class ``-loud``)."""

TONE_VARIABLES: dict[Tone, str] = {
    "ok": "status-ok",
    "warn": "status-warn",
    "failed": "status-failed",
    "cancelled": "status-cancelled",
    "running": "status-streaming",
}
"""The theme variable that colours each outcome tone (finish cells, the history table)."""

LOUD_TONES: frozenset[Tone] = frozenset({"warn", "failed"})
"""Outcome tones shown bold (and the badge's label in capitals)."""


def tone_class(tone: Tone) -> str:
    """The CSS class of a widget showing an outcome of ``tone`` (``-ok``, ``-warn``, ...)."""
    return f"-{tone}"


TONE_CLASSES: tuple[str, ...] = tuple(tone_class(tone) for tone in TONE_VARIABLES)
"""Every class :func:`tone_class` gives (to remove the old one before adding the new)."""


def variable_class(variable: str) -> str:
    """The CSS class that colours a widget with theme variable ``variable``
    (``-status-ok`` is ``color: $status-ok`` in ``app.tcss``)."""
    return f"-{variable}"


STATE_CLASSES: dict[SessionState, frozenset[str]] = {
    state: frozenset({variable_class(variable), *(("-loud",) if state in LOUD_STATES else ())})
    for state, variable in STATE_VARIABLES.items()
}
"""The classes of a session tab in each state: its colour, and ``-loud`` for bold."""

STATE_CLASS_NAMES: tuple[str, ...] = tuple(sorted(frozenset[str]().union(*STATE_CLASSES.values())))
"""Every class in :data:`STATE_CLASSES` (to remove the old ones before adding new)."""


def theme_styles(variables: Mapping[str, str], names: Iterable[str]) -> dict[str, Style]:
    """Rich styles for the theme variables ``names``, from the current theme's ``variables``
    (a variable the theme lacks, or one that is not a colour, is left out)."""
    styles: dict[str, Style] = {}
    resolved = dict(variables)
    for name in names:
        value = variables.get(name)
        if value is None:
            continue
        try:
            styles[name] = Style(color=resolve_colour(value, resolved).rich_color)
        except (ColorParseError, KeyError):
            continue
    return styles


ALERT_VARIABLE = "status-alert"
"""The theme variable of a session with unacknowledged alerts. It is shown *reversed* (the
colour as background: class :data:`ALERT_CLASS`, or :func:`alert_style`), so an alert never
reads like a failed run's coloured text, whatever colour a theme gives it."""

ALERT_CLASS = "-alert"
"""The class of a session tab whose session has unacknowledged alerts (styled in app.tcss)."""

ALERT_GLYPH = "⚑"
"""The marker of a session with unacknowledged alerts (row, tab, header)."""


def alert_style(styles: Mapping[str, Style]) -> Style:
    """The Rich style of an alerting cell, from the resolved ``styles`` of the theme."""
    return styles.get(ALERT_VARIABLE, Style()) + Style(bold=True, reverse=True)


STYLED_VARIABLES: frozenset[str] = (
    frozenset(STATE_VARIABLES.values()) | frozenset(TONE_VARIABLES.values()) | {ALERT_VARIABLE}
)
"""Every theme variable a Rich-styled cell may use (resolve them once per theme)."""
