"""Secrets never leave: the one redaction step of every output path (headless).

A :class:`Redactor` knows a few secrets (a session's API key and the values of credential
headers and parameters of its config) and blanks out of any text not only each whole secret
but every **long fragment** of one: any run of at least :func:`fragment_length` consecutive
characters of a secret (8 for a secret of 16 characters or more; half of a shorter one,
rounded up, but at least 4) becomes :data:`REDACTED`. A fragment is what a truncated error
snippet, a key split over two raw events or a server that echoes half a key leaves behind.
Secrets shorter than :data:`MIN_SECRET` characters are not searched (they would match
ordinary text).

Where it applies (see :class:`RunRedactor`): the session controller passes every batch of
run events through one redactor per run *before* the accumulator, the store and the views
see it, so that the result records, the stored rows and events, exports, the screen and
``tokentop run``'s output all derive from redacted events. Text, reasoning and
tool-argument deltas are matched as streams, across delta boundaries: a delta whose end
could be the beginning of a secret (:data:`HOLD_PIECE`) is held back (the whole event,
unchanged, with its ``t``) and released with a later delta of its stream, before any
attempt boundary, or at :class:`~tui.stream.events.Finished`. Every other string of an
event is redacted whole. Events that hold no fragment are passed on as the same objects,
in the same order within their stream; when nothing is held back nothing is delayed. A
redacted delta keeps its ``t``; one wholly inside a redacted span keeps its place with an
empty text (so a text chunk may then stop counting as one). The output faces add a last
line of defence: :class:`RedactingWriter` (stdout, stderr) and :class:`SecretLogFilter`
(log records).

Cost: with no secret, nothing (the controller skips the step). With secrets, each string
is searched for the secret's aligned blocks of ``ceil(m / 2)`` characters (every fragment
of ``m`` characters contains one), one ``str.find`` per block: O(text) with a small
constant; only a hit is examined further.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

from tui.config import SessionConfig
from tui.stream.events import (
    Connecting,
    Finished,
    Notice,
    RawEvent,
    ReasoningDelta,
    ResponseInfo,
    Resumed,
    Retrying,
    RunError,
    RunEvent,
    Started,
    TextDelta,
    ToolCallDelta,
)

__all__ = [
    "MIN_SECRET",
    "REDACTED",
    "RedactingWriter",
    "Redactor",
    "RunRedactor",
    "SecretLogFilter",
    "fragment_length",
    "install_log_filter",
    "redact_session",
    "session_secrets",
]

REDACTED = "[redacted]"
"""What replaces a secret or a long fragment of one (the store's marker too)."""

MIN_SECRET = 4
"""Shorter secrets are not searched for."""

FRAGMENT = 8
"""Fragment length for a secret of :data:`LONG_SECRET` characters or more."""

LONG_SECRET = 16

HOLD_PIECE = 3
"""A delta's end is held back when it begins a secret (at any length), or when it is a
piece of one of at least this many characters. So a secret split anywhere over deltas is
redacted whole, and a fragment from its middle split over deltas loses at most
``HOLD_PIECE - 1`` leading characters to the delta before (which alone say nothing),
while most deltas of ordinary text, ending in a character or two that also occur in the
secret, go on at once."""

_SECRET_NAME = re.compile(
    r"auth|api[-_]?key|secret|passw|cookie|credential|^key$|(^|[-_])[a-z]*[-_]?token$"
)
"""Header and parameter names whose values are secrets (as the store's snapshot drops)."""


def fragment_length(secret_length: int) -> int:
    """The shortest run of a secret's characters that is redacted: 8 for a secret of 16
    characters or more, else half the secret rounded up, but at least 4 (at most all)."""
    if secret_length >= LONG_SECRET:
        return FRAGMENT
    return min(secret_length, max(MIN_SECRET, (secret_length + 1) // 2))


def session_secrets(session: SessionConfig) -> tuple[str, ...]:
    """The secrets of ``session`` as it is now: its API key (read from the environment) and
    the values of headers and parameters named like credentials (``Authorization``,
    ``x-api-key``, ``*_token``...), with a ``Bearer``-style scheme word split off."""
    found: list[str] = []
    key = session.api_key()
    if key:
        found.append(key)
    for name, value in (*session.headers.items(), *session.params.items()):
        if isinstance(value, str) and _SECRET_NAME.search(str(name).strip().lower()):
            found.append(value)
            scheme, _, rest = value.partition(" ")
            if rest and scheme.isalpha():
                found.append(rest.strip())
    return tuple(dict.fromkeys(s for s in found if len(s) >= MIN_SECRET))


@dataclass(frozen=True, slots=True)
class _Secret:
    """One secret, prepared for the search."""

    text: str
    fragment: int
    """The shortest run of its characters that is redacted."""
    width: int
    """Length of the aligned blocks (every fragment contains a whole one)."""
    blocks: tuple[tuple[str, tuple[int, ...]], ...]
    """Each distinct aligned block and its offsets in the secret."""

    @classmethod
    def of(cls, text: str) -> _Secret:
        m = fragment_length(len(text))
        # a run of m characters starting at offset i contains the block starting at the
        # first multiple of width >= i, which ends by i + 2 * width - 1 <= i + m
        width = (m + 1) // 2
        offsets: dict[str, list[int]] = {}
        for off in range(0, len(text) - width + 1, width):
            offsets.setdefault(text[off : off + width], []).append(off)
        blocks = tuple((b, tuple(o)) for b, o in offsets.items())
        return cls(text, m, width, blocks)

    def runs(self, text: str, found: list[tuple[int, int]]) -> None:
        """Append to ``found`` every maximal run ``(start, end)`` of ``text`` that matches
        the secret's characters at one alignment and is at least :attr:`fragment` long."""
        key = self.text
        n = len(key)
        m = self.fragment
        width = self.width
        size = len(text)
        reach: dict[int, int] = {}  # alignment (text pos - key offset) -> end found
        for block, offsets in self.blocks:
            p = text.find(block)
            while p >= 0:
                for off in offsets:
                    diag = p - off
                    if reach.get(diag, -1) >= p + width:
                        continue  # inside a run already found at this alignment
                    s, ks = p, off
                    while s > 0 and ks > 0 and text[s - 1] == key[ks - 1]:
                        s -= 1
                        ks -= 1
                    e, ke = p + width, off + width
                    while e < size and ke < n and text[e] == key[ke]:
                        e += 1
                        ke += 1
                    reach[diag] = e
                    if e - s >= m:
                        found.append((s, e))
                p = text.find(block, p + 1)

    def tail(self, text: str) -> int:
        """How many characters at the end of ``text`` to hold back: the longest end that
        is a beginning of the secret (of any length), or a piece of it of at least
        :data:`HOLD_PIECE` characters (shorter than the whole secret either way)."""
        key = self.text
        size = len(text)
        best = 0
        if size >= HOLD_PIECE and text[-HOLD_PIECE:] in key:
            # "the last k characters are a piece of the secret" holds for every k up to
            # the answer: search for it
            lo, hi = HOLD_PIECE, min(size, len(key) - 1)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if text[-mid:] in key:
                    lo = mid
                else:
                    hi = mid - 1
            best = lo
        first = key[0]
        p = text.find(first, max(0, size - len(key) + 1))
        while 0 <= p < size - best:  # the first match is the longest
            if key.startswith(text[p:]):
                return size - p
            p = text.find(first, p + 1)
        return best


def _merge(found: list[tuple[int, int]]) -> list[tuple[int, int]]:
    found.sort()
    merged = [found[0]]
    for s, e in found[1:]:
        last_s, last_e = merged[-1]
        if s <= last_e:
            if e > last_e:
                merged[-1] = (last_s, e)
        else:
            merged.append((s, e))
    return merged


class Redactor:
    """Blanks out known secrets and their long fragments (see the module docstring)."""

    __slots__ = ("_blocks", "_secrets", "secrets")

    def __init__(self, secrets: Iterable[str]) -> None:
        kept: list[str] = []
        for s in secrets:
            if len(s) >= MIN_SECRET:
                kept.append(s)
                escaped = _json_escaped(s)
                if escaped != s:  # as it appears inside a raw event's JSON data
                    kept.append(escaped)
        self.secrets: tuple[str, ...] = tuple(dict.fromkeys(kept))
        """The secrets searched for."""
        self._secrets = tuple(_Secret.of(s) for s in self.secrets)
        self._blocks = tuple(dict.fromkeys(b for s in self._secrets for b, _ in s.blocks))

    @classmethod
    def for_sessions(cls, sessions: Iterable[SessionConfig]) -> Redactor:
        """One redactor for the secrets of all ``sessions`` (output streams, logs)."""
        return cls(s for session in sessions for s in session_secrets(session))

    def __bool__(self) -> bool:
        """False when there is nothing to redact."""
        return bool(self._secrets)

    def runs(self, text: str) -> list[tuple[int, int]]:
        """The sorted, disjoint spans of ``text`` that are secrets or long fragments."""
        for block in self._blocks:
            if block in text:
                break
        else:  # the usual case: one C search per block, nothing found
            return []
        found: list[tuple[int, int]] = []
        for secret in self._secrets:
            secret.runs(text, found)
        return _merge(found) if found else found

    def redact(self, text: str) -> str:
        """``text`` with every secret and long fragment replaced by :data:`REDACTED`."""
        if not self._secrets or not text:
            return text
        runs = self.runs(text)
        if not runs:
            return text
        parts: list[str] = []
        at = 0
        for s, e in runs:
            parts.append(text[at:s])
            parts.append(REDACTED)
            at = e
        parts.append(text[at:])
        return "".join(parts)

    def redact_optional(self, text: str | None) -> str | None:
        """:meth:`redact` for an optional string."""
        return None if text is None else self.redact(text)

    def tail(self, text: str) -> int:
        """How many characters at the end of ``text`` to hold back (:data:`HOLD_PIECE`)."""
        best = 0
        for secret in self._secrets:
            n = secret.tail(text)
            if n > best:
                best = n
        return best

    def redact_value(self, value: Any) -> Any:
        """Strings, and the strings inside lists, tuples and dicts, redacted (for log
        arguments and records); anything else as is."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list | tuple):
            return type(value)(self.redact_value(v) for v in value)
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        return value


def redact_session(session: SessionConfig, redactor: Redactor) -> SessionConfig:
    """``session`` as the store may keep it (its config snapshot): its prompt, system
    prompt, base URL and the values of its headers and params redacted (names, model and
    ``api_key_env``, which is a variable's name, as they are). The requests use the
    original."""
    if not redactor:
        return session
    import dataclasses

    return dataclasses.replace(
        session,
        prompt=redactor.redact(session.prompt),
        system=redactor.redact_optional(session.system),
        base_url=redactor.redact(session.base_url),
        headers={k: redactor.redact(v) for k, v in session.headers.items()},
        params=redactor.redact_value(dict(session.params)),
    )


def _json_escaped(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)[1:-1]


# -- run events ----------------------------------------------------------------------------


Delta = TextDelta | ReasoningDelta | ToolCallDelta

_BOUNDARIES = (Connecting, Started, Retrying, Resumed, Finished)


@dataclass(slots=True)
class _Stream:
    """The held-back deltas of one stream (text, reasoning, or one tool call's arguments)."""

    events: list[Delta] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    """Each held event's text (its ``text`` or ``arguments``)."""


def _delta_text(event: Delta) -> str:
    return event.arguments if isinstance(event, ToolCallDelta) else event.text


class RunRedactor:
    """Redacts the events of one run as they arrive, batch by batch (see the module
    docstring); :meth:`events` returns what may go on now."""

    __slots__ = ("_streams", "redactor")

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._streams: dict[object, _Stream] = {}

    def events(self, batch: Sequence[RunEvent]) -> list[RunEvent]:
        """The events of ``batch`` (after any held back before), redacted, without the
        deltas that must wait for the next one; everything is released before an attempt
        boundary and at :class:`Finished`."""
        out: list[RunEvent] = []
        emit = out.append
        streams = self._streams
        for event in batch:
            cls = type(event)
            if cls is TextDelta:
                self._delta("text", cast(TextDelta, event), out)
            elif cls is RawEvent:
                emit(self._raw(cast(RawEvent, event)))
            elif cls is ReasoningDelta:
                self._delta("reasoning", cast(ReasoningDelta, event), out)
            elif cls is ToolCallDelta:
                tool = self._tool_fields(cast(ToolCallDelta, event))
                self._delta(tool.index, tool, out)
            elif cls in _BOUNDARIES:
                if streams:
                    self.release(out)
                emit(self._other(event))
            else:
                emit(self._other(event))
        return out

    def release(self, out: list[RunEvent]) -> None:
        """Append every held delta to ``out``, redacted, holding nothing back."""
        for stream in self._streams.values():
            self._flush(stream, out, hold=False)
        self._streams.clear()

    # -- deltas --

    def _delta(self, key: object, event: Delta, out: list[RunEvent]) -> None:
        stream = self._streams.get(key) if self._streams else None
        text = event.arguments if type(event) is ToolCallDelta else event.text  # type: ignore[union-attr]
        r = self.redactor
        if stream is None:
            # the usual case: nothing held, no fragment, no end to hold
            if not r.tail(text) and not r.runs(text):
                out.append(event)
                return
            stream = self._streams[key] = _Stream()
        stream.events.append(event)
        stream.texts.append(text)
        self._flush(stream, out, hold=True)
        if not stream.events:
            del self._streams[key]

    def _flush(self, stream: _Stream, out: list[RunEvent], *, hold: bool) -> None:
        """Release the held events of ``stream`` that no later text can change."""
        whole = "".join(stream.texts)
        r = self.redactor
        runs = r.runs(whole)
        cut = len(whole) - (r.tail(whole) if hold else 0)
        # release whole events, up to a boundary at or before `cut` that no run crosses
        ends: list[int] = []
        at = 0
        for text in stream.texts:
            at += len(text)
            ends.append(at)
        count = 0
        for i, end in enumerate(ends):
            if end > cut:
                break
            if not any(s < end < e for s, e in runs):
                count = i + 1
        if count == 0:
            return
        start = 0
        for i in range(count):
            end = ends[i]
            original = stream.events[i]
            piece = _redacted_piece(whole, start, end, runs)
            if piece == stream.texts[i]:
                out.append(original)
            else:
                out.append(_with_text(original, piece))
            start = end
        del stream.events[:count]
        del stream.texts[:count]

    def _tool_fields(self, event: ToolCallDelta) -> ToolCallDelta:
        r = self.redactor
        name, call_id = r.redact_optional(event.name), r.redact_optional(event.call_id)
        if name == event.name and call_id == event.call_id:
            return event
        return ToolCallDelta(event.t, event.index, event.arguments, name, call_id)

    # -- whole strings --

    def _raw(self, event: RawEvent) -> RawEvent:
        r = self.redactor
        if not r.runs(event.data) and event.event is None and event.id is None:
            return event  # the usual case
        data, name, sid = (
            r.redact(event.data),
            r.redact_optional(event.event),
            r.redact_optional(event.id),
        )
        if data is event.data and name is event.event and sid is event.id:  # the usual case
            return event
        return RawEvent(event.t, event.attempt, name, data, sid)

    def _error(self, error: RunError | None) -> RunError | None:
        if error is None:
            return None
        r = self.redactor
        message = r.redact(error.message)
        request_id, code = r.redact_optional(error.request_id), r.redact_optional(error.code)
        if message is error.message and request_id is error.request_id and code is error.code:
            return error
        return RunError(error.kind, message, error.http_status, request_id, code)

    def _other(self, event: RunEvent) -> RunEvent:
        r = self.redactor
        if isinstance(event, Finished):
            error = self._error(event.error)
            raw_reason = r.redact_optional(event.raw_reason)
            if error is event.error and raw_reason is event.raw_reason:
                return event
            return Finished(event.t, event.status, event.reason, raw_reason, error)
        if isinstance(event, Retrying):
            cause = self._error(event.cause)
            if cause is event.cause:
                return event
            assert cause is not None
            return Retrying(
                event.t, event.attempt, event.max_retries, event.delay_s, event.mode, cause
            )
        if isinstance(event, Notice):
            code, message = r.redact(event.code), r.redact(event.message)
            if code is event.code and message is event.message:
                return event
            return Notice(event.t, code, message)
        if isinstance(event, Started):
            headers = tuple((k, r.redact(v)) for k, v in event.headers)
            request_id = r.redact_optional(event.request_id)
            if request_id is event.request_id and all(
                a[1] is b[1] for a, b in zip(headers, event.headers, strict=True)
            ):
                return event
            return Started(event.t, event.attempt, event.http_status, request_id, headers)
        if isinstance(event, Connecting):
            url = r.redact(event.url)
            return (
                event if url is event.url else Connecting(event.t, event.attempt, event.method, url)
            )
        if isinstance(event, ResponseInfo):
            rid, model = r.redact_optional(event.response_id), r.redact_optional(event.model)
            if rid is event.response_id and model is event.model:
                return event
            return ResponseInfo(event.t, rid, model)
        if isinstance(event, Resumed):
            last = r.redact_optional(event.last_event_id)
            if last is event.last_event_id:
                return event
            return Resumed(event.t, event.attempt, event.after_sequence, last)
        return event  # Usage: numbers only


def _redacted_piece(whole: str, start: int, end: int, runs: list[tuple[int, int]]) -> str:
    """``whole[start:end]`` with the runs blanked: a run's marker goes where it starts."""
    parts: list[str] = []
    at = start
    for s, e in runs:
        if e <= start or s >= end:
            continue
        if s >= at:
            parts.append(whole[at:s])
            parts.append(REDACTED)
        at = max(at, min(e, end))
    parts.append(whole[at:end])
    return "".join(parts)


def _with_text(event: Delta, text: str) -> Delta:
    if type(event) is TextDelta:
        return TextDelta(event.t, text)
    if type(event) is ReasoningDelta:
        return ReasoningDelta(event.t, text)
    assert isinstance(event, ToolCallDelta)
    return ToolCallDelta(event.t, event.index, text, event.name, event.call_id)


# -- output streams and logs ---------------------------------------------------------------


class RedactingWriter:
    """A text stream (stdout, stderr) that redacts every write before passing it on; each
    write is redacted whole (the faces write whole lines and records)."""

    def __init__(self, stream: TextIO, redactor: Redactor) -> None:
        self.stream = stream
        self.redactor = redactor

    def write(self, text: str) -> int:
        """Write ``text`` redacted; returns the length of ``text``."""
        self.stream.write(self.redactor.redact(text))
        return len(text)

    def flush(self) -> None:
        """Flush the stream underneath."""
        self.stream.flush()

    def isatty(self) -> bool:
        """Whether the stream underneath is a terminal."""
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class SecretLogFilter(logging.Filter):
    """Redacts a log record in place (its message with the arguments merged in, its
    exception and stack text) and lets it through."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record``; always True."""
        r = self.redactor
        if not r:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what there is, redacted
            message = f"{record.msg} {record.args}"
        record.msg = r.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = r.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = r.redact(record.stack_info)
        return True


def install_log_filter(redactor: Redactor) -> Callable[[], None]:
    """Put a :class:`SecretLogFilter` on the root logger, its handlers and Python's
    last-resort handler (records of every logger reach one of them); returns the function
    that removes them. Handlers added later are not covered."""
    log_filter = SecretLogFilter(redactor)
    root = logging.getLogger()
    targets: list[logging.Filterer] = [root, *root.handlers]
    if logging.lastResort is not None:
        targets.append(logging.lastResort)
    for target in targets:
        target.addFilter(log_filter)

    def uninstall() -> None:
        for target in targets:
            target.removeFilter(log_filter)

    return uninstall
