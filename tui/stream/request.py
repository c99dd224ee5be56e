"""RequestPlan: what each attempt of a run sends, and how a failed attempt continues.

The request body is built once per run; every attempt gets fresh headers (the API key is
read with ``session.api_key()`` at request time and only sent as ``Authorization: Bearer``).
After a failure, :meth:`RequestPlan.after_failure` applies ``session.reconnect`` to choose
the next request: the same one again (``retry``), a continuation of the same response
(``resume``: ``GET /responses/{id}?stream=true&starting_after=<seq>`` for a background
Responses run, or the request again with ``Last-Event-ID`` for a stream that carried SSE
``id:``), or a new request whose output replaces the partial one (``restart``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

import msgspec

from tui.config import SessionConfig
from tui.stream.adapter import Adapter
from tui.stream.chat import ChatAdapter, build_chat_body
from tui.stream.events import RetryMode
from tui.stream.responses import ResponsesAdapter, build_responses_body
from tui.stream.retry import AttemptFailure, backoff_delay

__all__ = ["Continuation", "NextAttempt", "Request", "RequestPlan"]

Continuation = Literal["create", "resume_seq", "resume_id"]
"""How an attempt's request continues the run: a new response, or a resume after a
Responses sequence number or an SSE event id."""

Request = tuple[str, str, bytes | None, dict[str, str]]
"""``(method, url, body, headers)``."""


@dataclass(frozen=True, slots=True)
class NextAttempt:
    """How the run goes on after a failed attempt."""

    how: Continuation
    mode: RetryMode
    restart: bool
    """The adapter starts its output over (the partial output is given up)."""


class RequestPlan:
    """The requests of one run of ``session`` against ``base_url`` (see the module)."""

    def __init__(self, session: SessionConfig, base_url: str, prompt: str) -> None:
        self.session = session
        self.base = base_url.rstrip("/")
        self.responses: ResponsesAdapter | None = None
        """The Responses adapter (its response id and last sequence number), None for chat."""
        self.adapter: Adapter
        if session.api == "chat":
            self.adapter = ChatAdapter()
            self.body = msgspec.json.encode(build_chat_body(session, prompt))
            self.path = "/chat/completions"
        else:
            self.responses = ResponsesAdapter()
            self.adapter = self.responses
            self.body = msgspec.json.encode(build_responses_body(session, prompt))
            self.path = "/responses"
        self.last_event_id: str | None = None
        """The last SSE ``id:`` the stream sent (a ``Last-Event-ID`` resume sends it)."""
        self.sse_retry_s: float | None = None
        """The stream's ``retry:`` reconnection time, capped (see ``MAX_RETRY_AFTER_S``)."""

    def headers(self, *, json: bool = True) -> dict[str, str]:
        """The headers of a request: the session's, and the API key as a bearer token."""
        headers = {"Accept": "text/event-stream"}
        if json:
            headers["Content-Type"] = "application/json"
        headers.update(self.session.headers)
        key = self.session.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def request(self, how: Continuation) -> Request:
        """The request of an attempt that continues the run as ``how``."""
        if how == "resume_seq":
            assert self.responses is not None and self.responses.response_id is not None
            url = (
                f"{self.base}/responses/{self.responses.response_id}"
                f"?stream=true&starting_after={self.responses.last_seq}"
            )
            return "GET", url, None, self.headers(json=False)
        headers = self.headers()
        if how == "resume_id" and self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
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
        return None if response_id is None else f"{self.base}/responses/{response_id}/cancel"

    def can_resume(self) -> Continuation | None:
        """How a dropped stream can be continued, if it can."""
        if self._background_id() is not None:
            assert self.responses is not None
            if self.responses.last_seq is not None:
                return "resume_seq"
        if self.last_event_id:
            return "resume_id"
        return None

    def after_failure(self, failure: AttemptFailure, how: Continuation) -> NextAttempt | None:
        """How to go on after ``failure`` of an attempt sent as ``how`` (None: the run fails
        now). The retry budget is the caller's."""
        on_drop = self.session.reconnect.on_drop
        if failure.started:
            if on_drop == "fail":
                return None
            resume = self.can_resume() if on_drop == "resume" else None
            if resume is not None:
                return NextAttempt(resume, "resume", restart=False)
            self.last_event_id = None
            return NextAttempt("create", "restart", restart=True)
        if not failure.retryable:
            if how == "create" or failure.error.kind == "auth":
                return None
            # the response cannot be streamed again (e.g. 404): start over
            self.last_event_id = None
            return NextAttempt("create", "restart", restart=True)
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
