"""Secrets never leave: the one redaction step of every output path (headless).

How secrets and their long fragments are found in text is :mod:`tui.stream.redaction`
(:class:`Redactor`); the output streams' and logs' last line of defence is
:mod:`tui.session.redact_output`. This module applies a redactor to a run's events and to a
session's stored config, and is where the other layers import all of it from.

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

Cost: with no secret, nothing (the controller skips the step). With secrets, O(text) per
string with a small constant (see :mod:`tui.stream.redaction`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from tui.config import SessionConfig
from tui.session.redact_output import RedactingWriter, SecretLogFilter, install_log_filter
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
from tui.stream.redaction import (
    HOLD_PIECE,
    MIN_SECRET,
    REDACTED,
    Redactor,
    fragment_length,
    session_secrets,
)

__all__ = [
    "HOLD_PIECE",
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


def redact_session(session: SessionConfig, redactor: Redactor) -> SessionConfig:
    """``session`` as the store may keep it (its config snapshot): its prompt and scripted
    turns, the seeded messages' text, system prompt, base URL and the values of its headers
    and params redacted (names, model and ``api_key_env``, which is a variable's name, as
    they are). The requests use the original."""
    if not redactor:
        return session
    import dataclasses

    messages = tuple(
        dataclasses.replace(
            m,
            content=redactor.redact_optional(m.content),
            tool_calls=tuple(
                dataclasses.replace(c, arguments=redactor.redact(c.arguments)) for c in m.tool_calls
            ),
        )
        for m in session.messages
    )
    return dataclasses.replace(
        session,
        prompt=redactor.redact(session.prompt),
        turns=tuple(redactor.redact(t) for t in session.turns),
        messages=messages,
        system=redactor.redact_optional(session.system),
        base_url=redactor.redact(session.base_url),
        headers={k: redactor.redact(v) for k, v in session.headers.items()},
        params=redactor.redact_value(dict(session.params)),
    )


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
