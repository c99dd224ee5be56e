"""The words every layer shares: API kinds, run outcomes, session states and their labels.

This module is the bottom of the core: it imports nothing from tokentop, and config, stream,
store, the session layer and both faces take these names from here (one list of each literal).
Colours are not here: they are theme variables, chosen by the Textual face.
"""

from __future__ import annotations

from typing import Literal, TypeAlias, get_args

Api: TypeAlias = Literal["responses", "chat"]
"""The two streaming APIs: ``POST /v1/responses`` and ``POST /v1/chat/completions``."""

API_KINDS: tuple[Api, ...] = get_args(Api)

RunStatus: TypeAlias = Literal["completed", "incomplete", "failed", "cancelled"]
"""Final status of a run, as in the Responses API (``truncated`` streams are ``failed``)."""

RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)

StoredStatus: TypeAlias = Literal[RunStatus, "running", "interrupted"]
"""A stored run's status: a final one, still ``running``, or ``interrupted`` (its writer
died before the run ended)."""

STORED_STATUSES: tuple[StoredStatus, ...] = (*RUN_STATUSES, "running", "interrupted")

FinishReason: TypeAlias = Literal[
    "stop", "length", "tool_calls", "content_filter", "error", "truncated", "cancelled"
]
"""Normalized termination reason of a run."""

FINISH_REASONS: tuple[FinishReason, ...] = get_args(FinishReason)

CUT_REASONS: frozenset[FinishReason] = frozenset({"length", "content_filter"})
"""Finish reasons that are not failures but mean the answer was cut short."""

FAILED_REASONS: frozenset[FinishReason] = frozenset({"error", "truncated"})
"""Finish reasons of a run that failed."""

ErrorKind: TypeAlias = Literal[
    "http",  # a 4xx/5xx answer before the stream started
    "auth",  # 401/403: the key is missing, wrong or not allowed
    "connect",  # could not connect (refused, DNS, TLS)
    "timeout",  # connect timeout or no headers in time
    "stalled",  # idle_timeout_s passed without a single byte
    "dropped",  # the connection broke in the middle of the stream
    "protocol",  # not an event stream, malformed SSE or JSON, HTML error page
    "server",  # an in-band error event/chunk or response.failed
    "truncated",  # the stream ended cleanly but without a terminal event or [DONE]
]

RetryMode: TypeAlias = Literal["retry", "resume", "restart"]
"""How the next attempt continues: ``retry`` (nothing was received yet, send again),
``resume`` (continue the same response after the last sequence number or event id), or
``restart`` (a new request; the partial output so far stays as the earlier attempt's record).
"""

HistoryMode: TypeAlias = Literal["auto", "server", "client"]
"""How a Responses session sends a follow-up turn's history: ``server`` continues from the
last turn's ``previous_response_id``; ``client`` sends the earlier turns as input items;
``auto`` (the default) uses the server's state until the server answers 400/404 to it, then
sends the items for the rest of the session. Chat Completions always sends the messages."""

HISTORY_MODES: tuple[HistoryMode, ...] = get_args(HistoryMode)

SessionState: TypeAlias = Literal[
    "queued",
    "connecting",
    "streaming",
    "retrying",
    "resumed",
    "waiting",
    "done",
    "incomplete",
    "failed",
    "cancelled",
]
"""What a session is doing: not started yet, the live states of its current run, ``waiting``
(a repeat session between runs), and the final states (``done`` = completed)."""

SESSION_STATES: tuple[SessionState, ...] = get_args(SessionState)

FINAL_STATES: dict[RunStatus, SessionState] = {
    "completed": "done",
    "incomplete": "incomplete",
    "failed": "failed",
    "cancelled": "cancelled",
}
"""The session state a run's final status leaves the session in."""

STATE_GLYPHS: dict[SessionState, str] = {
    "queued": "○",
    "connecting": "◌",
    "streaming": "●",
    "retrying": "↻",
    "resumed": "↺",
    "waiting": "◔",
    "done": "✓",
    "incomplete": "▲",
    "failed": "✖",
    "cancelled": "■",
}
"""One glyph per session state (the overview, the tabs and the headless progress lines)."""

Tone: TypeAlias = Literal["ok", "warn", "failed", "cancelled", "running"]
"""How loudly an outcome is shown: a normal stop is quiet, a cut answer warns, a failure is
loud; ``running`` while the run is live."""

TONE_GLYPHS: dict[Tone, str] = {
    "ok": "✓",
    "warn": "▲",
    "failed": "✖",
    "cancelled": "■",
    "running": "…",
}


def outcome_tone(status: str | None, reason: str | None) -> Tone:
    """The tone of a final status and finish reason (``running`` while the run is live)."""
    if status is None or status == "running":
        return "running"
    if status in ("failed", "interrupted") or reason in FAILED_REASONS:
        return "failed"
    if status == "cancelled" or reason == "cancelled":
        return "cancelled"
    if status == "incomplete" or reason in CUT_REASONS:
        return "warn"
    return "ok"


MISSING = "–"
"""What every view prints for a value that is not known (an en dash, never a hyphen)."""
