"""TotalsBar: the header line with totals across sessions (streaming, tokens/s, finished runs).

The failed and done counts are finished *runs* (a :class:`~tui.ui.tally.RunTally`), so a
session that repeats a hundred times counts a hundred; streaming and retrying are sessions
right now.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.content import Content
from textual.widgets import Static

from tui.session import SessionController
from tui.ui.style import ALERT_GLYPH, ALERT_VARIABLE, STATE_VARIABLES
from tui.ui.tally import RunTally
from tui.ui.ticker import Ticker, not_subscribed
from tui.ui.widgets.format import fmt_rate
from tui.vocab import STATE_GLYPHS, SessionState

TOTALS_HZ = 4.0

LIVE_STATES: frozenset[SessionState] = frozenset({"connecting", "streaming", "retrying", "resumed"})
"""The states counted as streaming (a run is on the wire)."""


def _mark(state: SessionState) -> str:
    """Markup for the glyph of ``state`` in its colour (``$`` of a theme variable)."""
    return f"[${STATE_VARIABLES[state]}]{STATE_GLYPHS[state]}[/]"


_STREAMING = _mark("streaming") + " [b]$n[/] streaming"
_RETRYING = f"[${STATE_VARIABLES['retrying']}]{STATE_GLYPHS['retrying']} $n retrying[/]"
_FAILED = f"[${STATE_VARIABLES['failed']}]{STATE_GLYPHS['failed']} $n failed[/]"
_NONE_FAILED = f"[$text-muted]{STATE_GLYPHS['failed']} 0 failed[/]"
_DONE = _mark("done") + " $n done"
_ALERTING = f"[b reverse ${ALERT_VARIABLE}] {ALERT_GLYPH} $n alerting [/]"


def streaming_rate(sessions: Sequence[SessionController]) -> float:
    """Tokens/s of every run on the wire now, added up (their rolling rates)."""
    rate = 0.0
    for s in sessions:
        run = s.current
        if run is None or run.done or s.state not in LIVE_STATES:
            continue
        snap = s.snapshot()
        if snap is not None and snap.rolling_tokens_per_s:
            rate += snap.rolling_tokens_per_s
    return rate


def totals_content(
    sessions: Sequence[SessionController],
    tally: RunTally | None = None,
    alerts: int = 0,
    rate: float | None = None,
) -> Content:
    """``tokentop  ● 3 streaming  1,234 tok/s  ↻ 1 retrying  ✖ 1 failed  ✓ 4 done  9 sessions``
    (and ``⚑ 2 alerting`` while ``alerts`` sessions have unacknowledged alerts).

    With a ``tally`` the failed and done counts are every finished run; without one, the
    sessions whose latest run ended that way. ``rate``: :func:`streaming_rate` (computed
    when not given)."""
    streaming = sum(1 for s in sessions if s.state in LIVE_STATES)
    retrying = sum(1 for s in sessions if s.state == "retrying")
    if tally is not None:
        total = tally.total()
        failed, done = total.failed, total.done
    else:
        failed = sum(1 for s in sessions if s.state == "failed")
        done = sum(1 for s in sessions if s.state in ("done", "incomplete"))
    if rate is None:
        rate = streaming_rate(sessions)
    parts = [
        Content.from_markup("[b $primary]tokentop[/]"),
        Content.from_markup(_STREAMING, n=str(streaming)),
        Content.from_markup("[b]$rate[/] [$text-muted]tok/s[/]", rate=fmt_rate(rate)),
    ]
    if retrying:
        parts.append(Content.from_markup(_RETRYING, n=str(retrying)))
    parts.append(Content.from_markup(_FAILED if failed else _NONE_FAILED, n=f"{failed:,}"))
    parts.append(Content.from_markup(_DONE, n=f"{done:,}"))
    if alerts:
        parts.append(Content.from_markup(_ALERTING, n=str(alerts)))
    parts.append(Content.from_markup("[$text-muted]$n sessions[/]", n=str(len(sessions))))
    return Content("  ").join(parts)


class TotalsBar(Static):
    """One line of totals, refreshed a few times a second from the sessions' snapshots."""

    DEFAULT_CSS = """
    TotalsBar { height: 1; padding: 0 1; }
    """

    def __init__(
        self,
        sessions: Sequence[SessionController],
        *,
        tally: RunTally | None = None,
        alerting: Callable[[], int] | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__("", id=id, classes=classes)
        self.sessions = list(sessions)
        self.tally = tally
        """Finished runs by outcome (None: count the sessions' latest runs)."""
        self._alerting = alerting
        self._last: Content | None = None
        self._key: object = None
        self._rate = 0.0
        self._untick = not_subscribed

    def on_mount(self) -> None:
        self.refresh_totals()
        self._untick = Ticker.of(self.app).subscribe(self, self.refresh_totals, TOTALS_HZ)

    def on_unmount(self) -> None:
        self._untick()

    def refresh_totals(self) -> None:
        """Recompute the totals line (skips the update when nothing changed)."""
        alerts = self._alerting() if self._alerting is not None else 0
        # Nothing received, nothing streaming at a rate that could decay: the same line.
        key = (
            [(s.version, s.state) for s in self.sessions],
            self.tally.total() if self.tally is not None else None,
            alerts,
        )
        if key == self._key and not self._rate:
            return
        self._key = key
        self._rate = rate = streaming_rate(self.sessions)
        content = totals_content(self.sessions, self.tally, alerts, rate)
        if content != self._last:
            self._last = content
            self.update(content, layout=False)  # one line, whatever it says
