"""Retry policy pieces for the runner: which failures to retry, how long to wait, and one
clear sentence for an HTTP error (HTML stripped, never the key).

Follows openai-python's ``_should_retry`` / ``_calculate_retry_timeout`` (protocol reference
section 5): ``retry-after-ms``, then ``Retry-After`` in seconds or as an HTTP date; a
``Retry-After`` above 120 s means no retry; ``x-should-retry`` overrides the status; 408,
409, 429 and 5xx are retried. tokentop never retries 400, 401, 403, 404 and 422.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import msgspec

from tui.config import ReconnectPolicy, SessionConfig
from tui.stream.events import RunError
from tui.stream.redaction import Redactor, session_secrets

__all__ = [
    "ERROR_BODY_TIMEOUT_S",
    "MAX_RETRY_AFTER_S",
    "NEVER_RETRY",
    "AttemptDeadlines",
    "AttemptFailure",
    "backoff_delay",
    "check_response",
    "describe_http_error",
    "kept_headers",
    "not_event_stream",
    "request_id_of",
    "retry_after_s",
    "should_retry_status",
]

MAX_RETRY_AFTER_S = 120.0
"""A longer ``Retry-After`` means: do not retry (as openai-python)."""

ERROR_BODY_TIMEOUT_S = 5.0
"""The most time spent reading an error body (at most ``idle_timeout_s``)."""

NEVER_RETRY = frozenset({400, 401, 403, 404, 422, 501, 505})
"""Answers the same request gets again: client errors, and servers that do not implement the
endpoint (501 Not Implemented) or the HTTP version (505)."""

_ERROR_BODY_LIMIT = 64 * 1024
_KEPT_HEADERS = ("x-request-id", "request-id", "retry-after", "retry-after-ms", "server")
_KEPT_PREFIXES = ("x-ratelimit-", "openai-")

_TAG = re.compile(rb"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")
_SNIPPET = 160
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def backoff_delay(retry: int, policy: ReconnectPolicy, rng: random.Random) -> float:
    """Delay before retry number ``retry`` (1-based): ``initial * 2**(n-1)`` capped at
    ``backoff_max_s``, minus up to 25% jitter."""
    base = min(policy.backoff_initial_s * 2.0 ** (retry - 1), policy.backoff_max_s)
    return base * (1.0 - 0.25 * rng.random())


def retry_after_s(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The server's requested delay in seconds (``retry-after-ms``, then ``Retry-After`` as
    seconds or HTTP date), or None when absent or unreadable. ``now`` is Unix time."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        value = _seconds(raw_ms, 1000.0)
        if value is not None:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    value = _seconds(raw, 1.0)
    if value is not None:
        return value
    try:
        when = parsedate_to_datetime(raw)
        value = when.timestamp() - (time.time() if now is None else now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _shown(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds < 1e9 else f"{seconds:.3g}"


def _seconds(raw: str, per_second: float) -> float | None:
    """A header's number of seconds (``per_second`` units each), None when it is not one.
    Huge values stay huge (the caller caps them); NaN and infinities are not numbers."""
    text = raw.strip()
    if len(text) > 64:
        return math.inf if text.isdigit() and text.isascii() else None
    # float() alone would also take Unicode digits, "1_000", "nan" and "infinity"
    if _NUMBER.fullmatch(text) is None:
        return None
    value = float(text) / per_second
    return value if math.isfinite(value) else None


def should_retry_status(status: int, headers: Mapping[str, str]) -> bool:
    """Whether an HTTP error status may be retried (before any stream started)."""
    if status in NEVER_RETRY:
        return False
    hint = headers.get("x-should-retry", "").strip().lower()
    if hint == "true":
        return True
    if hint == "false":
        return False
    return status in (408, 409, 429) or status >= 500


def _snippet(body: bytes, content_type: str, redactor: Redactor | None = None) -> str:
    """The body as one short line; secrets are blanked out of the whole text before the
    cut, so no fragment of one survives the cut."""
    if "html" in content_type or body.lstrip()[:1] == b"<":
        body = _TAG.sub(b" ", body)
    text = _SPACE.sub(" ", body.decode("utf-8", "replace")).strip()
    if redactor:
        text = redactor.redact(text)
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    """``(message, code)`` of a JSON error body in either shape, or ``(None, None)``."""
    try:
        value: Any = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):  # deep nesting: msgspec's depth guard
        return None, None
    if not isinstance(value, dict):
        return None, None
    err = value.get("error")
    src = err if isinstance(err, dict) else value
    message = src.get("message")
    if not isinstance(message, str):
        message = err if isinstance(err, str) else None
    code = src.get("code") if src.get("code") is not None else src.get("type")
    return message, None if code is None else str(code)


def describe_http_error(
    status: int,
    reason: str,
    content_type: str,
    body: bytes,
    *,
    api_key_env: str | None,
    api_key: str | None,
    request_id: str | None,
    redactor: Redactor | None = None,
) -> RunError:
    """One clear RunError for a non-200 answer (401/403 name the env var, never the key).
    ``redactor`` blanks the session's secrets out of the server's text (default: the key)."""
    if redactor is None:
        redactor = Redactor([api_key] if api_key else [])
    ctype = content_type.split(";")[0].strip() or "no content type"
    message, code = _error_fields(body) if "json" in ctype else (None, None)
    if message is not None:
        message = redactor.redact(message)
        code = None if code is None else redactor.redact(code)
    detail = message if message is not None else _snippet(body, ctype, redactor)
    head = f"HTTP {status} {redactor.redact(reason)}".strip()
    if status in (401, 403):
        if api_key_env is None:
            who = "no API key was sent (the session sets no api_key_env)"
        elif not api_key:
            who = f"no API key was sent: the environment variable {api_key_env} is not set"
        elif status == 401:
            who = f"the server rejected the API key from the environment variable {api_key_env}"
        else:
            who = (
                f"the API key from the environment variable {api_key_env} is not allowed to do this"
            )
        text = f"{head}: {who}" + (f" ({detail})" if detail else "")
        return RunError("auth", text, http_status=status, request_id=request_id, code=code)
    if message is None:
        text = f"{head} ({ctype})" + (f": {detail}" if detail else "")
    else:
        text = f"{head}: {detail}"
    return RunError("http", text, http_status=status, request_id=request_id, code=code)


def not_event_stream(
    content_type: str, body: bytes, request_id: str | None, redactor: Redactor | None = None
) -> RunError:
    """A 200 answer that is not ``text/event-stream`` (secrets blanked out of its text)."""
    ctype = content_type.split(";")[0].strip() or "no content type"
    snippet = _snippet(body, ctype, redactor)
    return RunError(
        "protocol",
        f"expected an event stream (text/event-stream) but got {ctype}"
        + (f": {snippet}" if snippet else ""),
        http_status=200,
        request_id=request_id,
    )


@dataclass(frozen=True, slots=True)
class AttemptFailure:
    """An attempt that ended without an outcome."""

    error: RunError
    started: bool
    """The stream had started (a drop, stall or truncation) rather than failing before."""
    retryable: bool = True
    """False: the same request would fail the same way (after a start: the run fails)."""
    delay_s: float | None = None
    """The server's requested delay (Retry-After)."""
    resumable: bool = True
    """False: the server did not honour a resume (it replayed the stream): restart."""


class AttemptDeadlines:
    """The deadlines of one attempt sent at ``sent`` (loop time): the response headers,
    the first content, and the idle limit; :meth:`arm` picks the one to wait for and
    :meth:`failure` words the one that passed (the runner keeps one timer per attempt)."""

    __slots__ = ("first", "first_armed", "headers", "idle", "policy")

    def __init__(self, policy: ReconnectPolicy, sent: float) -> None:
        self.policy = policy
        self.idle = policy.idle_timeout_s
        self.headers = sent + policy.connect_timeout_s + policy.idle_timeout_s
        first = policy.first_token_timeout_s
        self.first = math.inf if first is None else sent + first
        self.first_armed = False

    def arm(self, deadline: float, waiting: bool) -> float:
        """``deadline``, or the first-content deadline while ``waiting`` when it is sooner."""
        self.first_armed = waiting and self.first <= deadline
        return self.first if self.first_armed else deadline

    def failure(self, started: bool, url: str) -> AttemptFailure:
        """The failure when the armed deadline passed."""
        policy = self.policy
        if self.first_armed:
            msg = (
                f"no content within first_token_timeout_s = {policy.first_token_timeout_s:g} s "
                "of the request"
            )
            return AttemptFailure(RunError("stalled" if started else "timeout", msg), started)
        if started:
            msg = f"no data for {self.idle:g} s (stalled stream)"
            return AttemptFailure(RunError("stalled", msg), started=True)
        limit = policy.connect_timeout_s + policy.idle_timeout_s
        msg = (
            f"no complete response headers from {url} within {limit:g} s "
            "(connect_timeout_s + idle_timeout_s)"
        )
        return AttemptFailure(RunError("timeout", msg), started=False)


def kept_headers(headers: httpx.Headers) -> tuple[tuple[str, str], ...]:
    """The debug-worthy response headers: request ids, rate limits, server (no secrets)."""
    kept: list[tuple[str, str]] = []
    for key, value in headers.multi_items():
        k = key.lower()
        if k in _KEPT_HEADERS or k.startswith(_KEPT_PREFIXES):
            kept.append((k, value))
    return tuple(kept)


def request_id_of(headers: httpx.Headers) -> str | None:
    """The server's request id (``x-request-id`` or ``request-id``)."""
    value: str | None = headers.get("x-request-id") or headers.get("request-id")
    return value


def _without_v1(error: RunError, url: httpx.URL) -> RunError:
    """A 404 (or 405) of a URL without ``/v1``: say what is most likely wrong."""
    path = url.path
    for endpoint in ("/responses", "/chat/completions"):
        if endpoint in path:
            path = path[: path.index(endpoint)]
            break
    # netloc is host[:port]: credentials in the URL (its userinfo) are never shown
    base = f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}{path}".rstrip("/")
    hint = (
        f" (base_url {base} has no /v1: OpenAI-compatible servers serve /v1/responses and "
        f'/v1/chat/completions, so try base_url = "{base}/v1")'
    )
    return replace(error, message=error.message + hint)


async def check_response(response: httpx.Response, session: SessionConfig) -> AttemptFailure | None:
    """None for a 200 event stream; otherwise the failure, with whether and when to retry
    (the body is read, up to 64 KiB, for the message)."""
    status = response.status_code
    ctype = response.headers.get("content-type", "")
    if status == 200 and ctype.split(";")[0].strip().lower() == "text/event-stream":
        return None
    body = bytearray()
    # an error body is only read for its message: a server that trickles it gets cut off
    with contextlib.suppress(TimeoutError, httpx.TransportError, httpx.DecodingError):
        async with asyncio.timeout(min(session.reconnect.idle_timeout_s, ERROR_BODY_TIMEOUT_S)):
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= _ERROR_BODY_LIMIT:
                    break
    headers = response.headers
    request_id = request_id_of(headers)
    redactor = Redactor(session_secrets(session))
    if status == 200:
        error = not_event_stream(ctype, bytes(body), request_id, redactor)
        return AttemptFailure(error, started=False, retryable=False)
    error = describe_http_error(
        status,
        response.reason_phrase,
        ctype,
        bytes(body),
        api_key_env=session.api_key_env,
        api_key=session.api_key(),
        request_id=request_id,
        redactor=redactor,
    )
    if status in (404, 405) and "/v1/" not in response.request.url.path:
        error = _without_v1(error, response.request.url)
    retryable = should_retry_status(status, headers)
    delay = retry_after_s(headers) if retryable else None
    if delay is not None and delay > MAX_RETRY_AFTER_S:
        retryable = False
        error = RunError(
            error.kind,
            f"{error.message} (Retry-After {_shown(delay)} s is longer than "
            f"{MAX_RETRY_AFTER_S:.0f} s: not retried)",
            error.http_status,
            error.request_id,
            error.code,
        )
    if delay is not None and delay <= 0:
        delay = None
    return AttemptFailure(error, started=False, retryable=retryable, delay_s=delay)
