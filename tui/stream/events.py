"""Normalized run events: the one vocabulary that every layer above the adapters speaks.

A *run* is one request and its stream (plus any retries, resumes and restarts of it).
The runner turns the wire protocol of either API into these small frozen objects; the
metrics accumulator, the store, the headless runner and the dashboard all consume them and
never see raw JSON.

Every event carries ``t``: seconds since the run started, read from the runner's injectable
clock. Stored events keep ``t``, so a replay reproduces the original timing exactly.

The last event of every run is exactly one :class:`Finished`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TypeAlias

# the run vocabulary lives in tui.vocab; re-exported for the modules that speak events
from tui.vocab import Api as Api
from tui.vocab import ErrorKind as ErrorKind
from tui.vocab import FinishReason as FinishReason
from tui.vocab import RetryMode as RetryMode
from tui.vocab import RunStatus as RunStatus


def new_run_id() -> str:
    """A time-ordered run id chosen by tokentop (never by the server): 20 hex digits."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(4).hex()}"


@dataclass(frozen=True, slots=True)
class RunError:
    """Why a run (or an attempt) failed."""

    kind: ErrorKind
    message: str
    """One human sentence naming the cause (never contains a secret)."""
    http_status: int | None = None
    request_id: str | None = None
    code: str | None = None
    """Server error code or type, e.g. ``rate_limit_exceeded`` or ``server_error``."""


@dataclass(frozen=True, slots=True)
class Connecting:
    """An attempt's request is being sent (attempt 1 is the first try)."""

    t: float
    attempt: int
    method: str
    url: str


@dataclass(frozen=True, slots=True)
class Started:
    """The attempt's response headers arrived with 200 and an event stream."""

    t: float
    attempt: int
    http_status: int
    request_id: str | None
    headers: tuple[tuple[str, str], ...] = ()
    """Debug-worthy response headers only (request ids, rate limits, server); no secrets."""


@dataclass(frozen=True, slots=True)
class ResponseInfo:
    """Server-side identity of the response (from ``response.created`` or the first chunk)."""

    t: float
    response_id: str | None
    model: str | None
    continues: str | None = None
    """Responses: the ``previous_response_id`` the server's response object names (the
    response it continued from)."""
    names_previous: bool = False
    """Responses: the response object has a ``previous_response_id`` field at all (OpenAI's
    always has one; a gateway that ignores the field has none)."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer text."""

    t: float
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of reasoning text (summary or raw reasoning content)."""

    t: float
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a tool/function call. ``name`` and ``call_id`` come with the first
    fragment of an ``index``; later fragments only add ``arguments`` text."""

    t: float
    index: int
    arguments: str
    name: str | None = None
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage reported by the server (authoritative over any estimate)."""

    t: float
    input_tokens: int | None
    output_tokens: int | None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None
    total_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Retrying:
    """The previous attempt failed or dropped; the next one starts after ``delay_s``.

    ``attempt`` is the retry number n of ``max_retries`` N (``retrying n/N in Xs``).
    """

    t: float
    attempt: int
    max_retries: int
    delay_s: float
    mode: RetryMode
    cause: RunError


@dataclass(frozen=True, slots=True)
class Resumed:
    """A dropped stream continues where it broke.

    ``after_sequence`` is the last Responses ``sequence_number`` received (resume with
    ``starting_after``); ``last_event_id`` is set instead when SSE ``Last-Event-ID`` was used.
    """

    t: float
    attempt: int
    after_sequence: int | None
    last_event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """Something worth flagging that does not end the run (e.g. ``empty_stop``: a ``stop``
    with no content, which some gateways use to mask an error; ``odd_field`` /
    ``odd_number``: a field of an unexpected type or an impossible number, read as far as
    usable; ``deltas_lost``: the final text shows that deltas were lost)."""

    t: float
    code: str
    message: str
    answer: str | None = None
    """Set only when deltas were lost from the middle of the answer: the whole answer text
    of the kept output as the server's final objects give it. The fold replaces the text
    the deltas built with it; a view that only appends deltas still shows the notice."""


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One SSE event exactly as the server sent it (for the raw log and gateway debugging).

    Unknown event types end up here and nowhere else; they are never an error.
    """

    t: float
    attempt: int
    event: str | None
    data: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Finished:
    """The run is over. Always the last event of a run, exactly once."""

    t: float
    status: RunStatus
    reason: FinishReason
    raw_reason: str | None
    """What the server said: a chat ``finish_reason``, a Responses status or
    ``incomplete_details.reason``, or None when it said nothing (truncated, failed early)."""
    error: RunError | None = None


RunEvent: TypeAlias = (
    Connecting
    | Started
    | ResponseInfo
    | TextDelta
    | ReasoningDelta
    | ToolCallDelta
    | Usage
    | Retrying
    | Resumed
    | Notice
    | RawEvent
    | Finished
)

EVENT_TYPES: dict[str, type[RunEvent]] = {
    cls.__name__: cls
    for cls in (
        Connecting,
        Started,
        ResponseInfo,
        TextDelta,
        ReasoningDelta,
        ToolCallDelta,
        Usage,
        Retrying,
        Resumed,
        Notice,
        RawEvent,
        Finished,
    )
}
"""Event class by name, for (de)serialization in the store and exports."""
