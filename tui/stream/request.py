"""RequestPlan: what each attempt of a run sends, and how a failed attempt continues.

The request body is built once per run; every attempt gets fresh headers (the API key is
read with ``session.api_key()`` at request time and only sent as ``Authorization: Bearer``).
After a failure, :meth:`RequestPlan.after_failure` applies ``session.reconnect`` to choose
the next request: the same one again (``retry``), a continuation of the same response
(``resume``: ``GET /responses/{id}?stream=true&starting_after=<seq>`` for a background
Responses run, or the request again with ``Last-Event-ID`` for a stream that carried SSE
``id:``), or a new request whose output replaces the partial one (``restart``).

``Last-Event-ID`` is sent as UTF-8, as browsers send it (an SSE id may be any text without
NUL, CR or LF; HTTP header values are bytes). An id a header cannot carry (other control
characters, leading or trailing blanks, which HTTP strips) is not sent: the run restarts,
with a ``Notice``. A server that ignores ``Last-Event-ID`` and replays the stream is caught by
:class:`ReplayCheck` at the start of the resumed stream (an id repeats the stream's first one
or goes backwards, a new response begins, or the text starts again with what was already
received): the run restarts instead of doubling the text, and ids are not used again.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

import httpx
import msgspec

from tui.config import SessionConfig
from tui.stream.adapter import Adapter
from tui.stream.chat import ChatAdapter, build_chat_body
from tui.stream.events import (
    ReasoningDelta,
    ResponseInfo,
    RetryMode,
    RunError,
    RunEvent,
    TextDelta,
    ToolCallDelta,
)
from tui.stream.history import Conversation
from tui.stream.responses import ResponsesAdapter, build_responses_body
from tui.stream.retry import AttemptFailure, backoff_delay
from tui.stream.sse import SSEEvent

__all__ = [
    "HEAD_CHARS",
    "Continuation",
    "NextAttempt",
    "ReplayCheck",
    "Request",
    "RequestPlan",
    "last_event_id_header",
]

Continuation = Literal["create", "resume_seq", "resume_id"]
"""How an attempt's request continues the run: a new response, or a resume after a
Responses sequence number or an SSE event id."""

Request = tuple[str, str, bytes | None, Mapping[str, str]]
"""``(method, url, body, headers)``."""

HEAD_CHARS = 64
"""How much of the answer's start is kept to recognise a stream replayed from its start."""

_HOLD_EVENTS = 2048
"""Events a resumed stream may deliver before :class:`ReplayCheck` must have decided."""


def _path_part(server_id: str) -> str:
    """A server-chosen id as one URL path segment (``/``, ``?``, ``#``, blanks escaped)."""
    return quote(server_id, safe="")


def last_event_id_header(event_id: str) -> bytes | None:
    """``event_id`` as a ``Last-Event-ID`` header value (UTF-8), or None when a header
    cannot carry it: control characters other than tab, or blanks at either end."""
    if not event_id or event_id != event_id.strip(" \t"):
        return None
    if any((c < " " and c != "\t") or c == "\x7f" for c in event_id):
        return None
    return event_id.encode("utf-8")


PREVIOUS_ID_CODES = frozenset(
    {"previous_response_not_found", "unsupported_parameter", "unknown_parameter"}
)
"""Error codes a server gives when it cannot continue from ``previous_response_id``."""

OTHER_CAUSE_CODES = frozenset({"context_length_exceeded", "invalid_api_key", "model_not_found"})
"""Error codes of a 400/404 that have nothing to do with ``previous_response_id``."""

HISTORY_FALLBACK = "history_fallback"
"""The notice of a turn whose history went as items after the server did not keep (or did
not use) ``previous_response_id``: the conversation sends items from then on."""

IGNORED_PREVIOUS = "previous_response_ignored"
"""The code of an attempt given up because its response did not continue from the
``previous_response_id`` sent (:meth:`RequestPlan.continuation_ignored`)."""

GENERIC_CODES = frozenset({None, "invalid_request_error", "not_found", "not_found_error"})
"""Codes (or error types, read when there is no code) that name no particular cause."""


def refuses_previous_id(error: RunError) -> bool:
    """Whether a 400/404 answer refuses ``previous_response_id`` itself: its code says so,
    or its message names the parameter, or a 404 that names no other cause (the URL answered
    the turn before, so the missing thing is the stored response). A context that no longer
    fits, a bad key or an unknown model is not answered by sending more history."""
    if error.http_status not in (400, 404) or error.code in OTHER_CAUSE_CODES:
        return False
    if error.code in PREVIOUS_ID_CODES or "previous_response" in error.message.lower():
        return True
    return error.http_status == 404 and error.code in GENERIC_CODES


@dataclass(frozen=True, slots=True)
class NextAttempt:
    """How the run goes on after a failed attempt."""

    how: Continuation
    mode: RetryMode
    restart: bool
    """The adapter starts its output over (the partial output is given up)."""


class RequestPlan:
    """The requests of one run of ``session`` against ``base_url`` (see the module)."""

    def __init__(
        self,
        session: SessionConfig,
        base_url: str,
        prompt: str,
        history: Conversation | None = None,
    ) -> None:
        self.session = session
        self.prompt = prompt
        self.history = history
        self.base = base_url.rstrip("/")
        self.responses: ResponsesAdapter | None = None
        """The Responses adapter (its response id and last sequence number), None for chat."""
        self.adapter: Adapter
        if session.api == "chat":
            self.adapter = ChatAdapter()
            self.body = msgspec.json.encode(build_chat_body(session, prompt, history))
            self.path = "/chat/completions"
        else:
            self.responses = ResponsesAdapter()
            self.adapter = self.responses
            self.body = msgspec.json.encode(build_responses_body(session, prompt, history))
            self.path = "/responses"
        self.last_event_id: str | None = None
        """The last SSE ``id:`` the stream sent (a ``Last-Event-ID`` resume sends it)."""
        self.sse_retry_s: float | None = None
        """The stream's ``retry:`` reconnection time, capped (see ``MAX_RETRY_AFTER_S``)."""
        self.first_event_id: str | None = None
        """The first SSE ``id:`` of the stream since the run (re)started."""
        self.text_head = ""
        """The first :data:`HEAD_CHARS` characters of the answer since the run (re)started."""
        self.use_ids = True
        """False once the server was seen to ignore ``Last-Event-ID``."""
        self.notice: str | None = None
        self.ignored: str | None = None
        """Set in an attempt whose response did not continue the ``previous_response_id``
        sent (:meth:`continuation_ignored`), until the attempt acts on it."""
        """Set by :meth:`after_failure` when the next attempt deserves a word (one use)."""

    def headers(self, *, json: bool = True) -> httpx.Headers:
        """The headers of a request: the session's, and the API key as a bearer token.
        Values are sent as UTF-8 (httpx would refuse a non-ASCII value in a plain dict)."""
        headers = httpx.Headers({"Accept": "text/event-stream"})
        if json:
            headers["Content-Type"] = "application/json"
        for name, value in self.session.headers.items():
            headers[name] = value
        key = self.session.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def request(self, how: Continuation) -> Request:
        """The request of an attempt that continues the run as ``how``."""
        if how == "resume_seq":
            assert self.responses is not None and self.responses.response_id is not None
            url = (
                f"{self.base}/responses/{_path_part(self.responses.response_id)}"
                f"?stream=true&starting_after={self.responses.last_seq}"
            )
            return "GET", url, None, self.headers(json=False)
        headers = self.headers()
        event_id = self.last_event_id
        if how == "resume_id" and event_id and last_event_id_header(event_id) is not None:
            headers["Last-Event-ID"] = event_id
        return "POST", self.base + self.path, self.body, headers

    def _background_id(self) -> str | None:
        """The id of the response when it runs in the background on the server."""
        responses = self.responses
        if responses is not None and (self.session.background or responses.background):
            return responses.response_id
        return None

    def cancel_url(self) -> str | None:
        """Where to cancel a background Responses run on the server (None: nothing to do)."""
        response_id = self._background_id()
        if response_id is None:
            return None
        return f"{self.base}/responses/{_path_part(response_id)}/cancel"

    def can_resume(self) -> Continuation | None:
        """How a dropped stream can be continued, if it can."""
        if self._background_id() is not None:
            assert self.responses is not None
            if self.responses.last_seq is not None:
                return "resume_seq"
        if self.last_event_id and self.use_ids:
            if last_event_id_header(self.last_event_id) is not None:
                return "resume_id"
            self.notice = (
                f"the stream's last event id {self.last_event_id!r} cannot be sent in a "
                "Last-Event-ID header: restarting instead of resuming"
            )
        return None

    def _restart(self) -> NextAttempt:
        self.last_event_id = self.first_event_id = None
        self.text_head = ""
        return NextAttempt("create", "restart", restart=True)

    def continuation_ignored(self, info: ResponseInfo) -> str | None:
        """Whether the response ``info`` announces did not continue from the
        ``previous_response_id`` this request sent: its object names another previous
        response, or none, or has no such field (OpenAI's always names it; a gateway that
        takes the field and keeps nothing answers as if it had not been sent). A sentence
        saying so, or None when it continued (or nothing was sent)."""
        history = self.history
        if history is None or self.session.api != "responses":
            return None
        sent = history.previous_response_id
        if sent is None or (info.names_previous and info.continues == sent):
            return None
        if info.continues is not None:
            said = f"continues {info.continues!r}"
        elif info.names_previous:
            said = "continues no earlier response"
        else:
            said = "names no previous_response_id"
        return f"the server's response {said}, not {sent!r} (it ignored the earlier turns)"

    def history_fallback(self, failure: AttemptFailure) -> str | None:
        """After a Responses request that continued from ``previous_response_id`` was refused
        for that id (:func:`refuses_previous_id`: a gateway that keeps no responses), in
        ``auto`` mode: the body is built again with the turns as input items and the notice
        to say is returned (once per run; None: no fallback)."""
        history = self.history
        if (
            history is None
            or history.mode != "auto"
            or history.previous_response_id is None
            or failure.started
        ):
            return None
        error = failure.error
        if error.code == IGNORED_PREVIOUS:
            said = f"{error.message}: sending the conversation as input items"
        elif refuses_previous_id(error):
            said = (
                f"the server refused previous_response_id (HTTP {error.http_status}): "
                "sending the conversation as input items"
            )
        else:
            return None
        self.history = history.as_items()
        body = build_responses_body(self.session, self.prompt, self.history)
        self.body = msgspec.json.encode(body)
        return said

    def after_failure(self, failure: AttemptFailure, how: Continuation) -> NextAttempt | None:
        """How to go on after ``failure`` of an attempt sent as ``how`` (None: the run fails
        now). The retry budget is the caller's."""
        on_drop = self.session.reconnect.on_drop
        self.notice = None
        if failure.started:
            if on_drop == "fail" or not failure.retryable:
                return None
            if not failure.resumable:  # the server replayed instead of resuming
                self.use_ids = False
                return self._restart()
            resume = self.can_resume() if on_drop == "resume" else None
            if resume is not None:
                return NextAttempt(resume, "resume", restart=False)
            return self._restart()
        if not failure.retryable:
            if how == "create" or failure.error.kind == "auth":
                return None
            return self._restart()  # the response cannot be streamed again (e.g. 404)
        return NextAttempt(how, "retry" if how == "create" else "resume", restart=False)

    def retry_delay(
        self, failure: AttemptFailure, how: Continuation, retry: int, rng: random.Random
    ) -> float:
        """Seconds before retry number ``retry``: the server's Retry-After, else the stream's
        ``retry:`` time for a ``Last-Event-ID`` resume, else backoff with jitter."""
        if failure.delay_s is not None:
            return failure.delay_s
        if how == "resume_id" and self.sse_retry_s is not None:
            return self.sse_retry_s  # the reconnection time the stream asked for
        return backoff_delay(retry, self.session.reconnect, rng)


def _number(event_id: str | None) -> int | None:
    if event_id is None or not event_id.isascii() or not event_id.isdigit():
        return None
    return int(event_id) if len(event_id) <= 30 else None


_CONTENT = (TextDelta, ReasoningDelta, ToolCallDelta)


class ReplayCheck:
    """The start of a ``Last-Event-ID`` resume, held back until it is known to continue the
    stream (see the module docstring). The caller feeds it each SSE event before the
    adapter sees the event (:meth:`admit`) and the events the adapter made (:meth:`add`);
    :attr:`replayed` then names a replay, and :attr:`decided` says the held events may go."""

    def __init__(self, plan: RequestPlan) -> None:
        self.first_id = plan.first_event_id
        self.last_id = plan.last_event_id
        self.head = plan.text_head
        self._text = ""
        self.held: list[RunEvent] = []
        self.decided = False
        self.replayed: str | None = None

    def admit(self, event: SSEEvent) -> bool:
        """Whether ``event`` (its id is the server's own in this stream) goes to the
        adapter; False for the re-sent last event, and for everything once a replay is
        known."""
        if self.replayed is not None:
            return False
        if self.decided:
            return True
        if event.event == "response.created":  # a Responses stream that begins again
            self.replayed = "it began again with response.created"
            return False
        event_id = event.id
        if event_id is None:
            return True
        last, first = self.last_id, self.first_id
        if event_id == last and event_id != first:
            return False  # the server resent the last event it had delivered
        if event_id == first:
            self.replayed = f"the event id {event_id!r} of the stream's start came again"
            return False
        new, old = _number(event_id), _number(last)
        if new is not None and old is not None and new <= old:
            self.replayed = f"the event ids went back from {last} to {event_id}"
            return False
        # ids that go on prove little (a replay may number its events anew): the text decides
        return True

    def add(self, events: list[RunEvent]) -> None:
        """Hold the adapter's events and decide when they show what the stream does."""
        self.held += events
        if self.decided:
            return
        for event in events:
            if type(event) is ResponseInfo:
                self.replayed = f"a new response {event.response_id!r} began"
                return
            if type(event) is TextDelta:
                self._text += event.text
            elif isinstance(event, _CONTENT) and not self.head:
                self.decided = True
        head, text = self.head, self._text
        if not text:
            if len(self.held) > _HOLD_EVENTS:
                self.decided = True
            return
        if not head or not head.startswith(text[: len(head)]):
            self.decided = True  # new text: a continuation
        elif len(text) >= len(head):
            self.replayed = "the text started again from the beginning"
