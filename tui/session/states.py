"""The one state machine of a session: which state each attempt boundary moves it to, and
the short phase word a progress line shows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.stream.events import (
    Connecting,
    Finished,
    ReasoningDelta,
    Resumed,
    Retrying,
    RunEvent,
    Started,
    TextDelta,
    ToolCallDelta,
)
from tui.vocab import FINAL_STATES, SessionState

if TYPE_CHECKING:
    from tui.session.run import SessionRun

BOUNDARY_EVENTS: frozenset[type[RunEvent]] = frozenset(
    {Connecting, Started, Retrying, Resumed, Finished}
)
"""The events that move a session's state (the others only feed the run)."""


ACTIVITY: dict[type[RunEvent], str] = {
    TextDelta: "streaming",
    ReasoningDelta: "reasoning",
    ToolCallDelta: "tool call",
}
"""What a delta says the run is doing (the progress line's phase while streaming)."""


def next_state(state: SessionState, event: RunEvent) -> SessionState:
    """The state after an attempt boundary. A retry or a resume stays visible until the
    stream flows again: a reconnect's ``Connecting`` (and a resume's ``Started``) keep it."""
    cls = type(event)
    if cls is Connecting:
        return state if state in ("retrying", "resumed") else "connecting"
    if cls is Started:
        return state if state == "resumed" else "streaming"
    if cls is Retrying:
        return "retrying"
    if cls is Resumed:
        return "resumed"
    if cls is Finished:
        assert isinstance(event, Finished)
        return FINAL_STATES[event.status]
    return state


def phase(state: SessionState, run: SessionRun | None) -> str:
    """A short word for the progress line: the state, with the attempt, the retry schedule
    or what the stream is producing (``streaming``, ``reasoning``, ``tool call``)."""
    boundary = run.boundary if run is not None else None
    reconnecting = state in ("connecting", "retrying", "resumed")
    if reconnecting and isinstance(boundary, Connecting) and boundary.attempt > 1:
        return f"attempt {boundary.attempt}"
    if state == "retrying" and isinstance(boundary, Retrying):
        return f"retry {boundary.attempt}/{boundary.max_retries} in {boundary.delay_s:.1f}s"
    if state == "streaming" and run is not None:
        return run.activity
    if run is not None and run.finished is not None and state != "waiting":
        return run.finished.status
    return state
