"""What the two API adapters share: the outcome of a stream, the adapter protocol, the
small helpers that turn wire shapes into normalized pieces, and the lenient reading of
events whose fields do not have the types the fast path expects.

Every event is first decoded into strict msgspec types (the fast path). Only when that fails
is the one event decoded again, leniently (:func:`decode_loose`), and read field by field
with a :class:`Lenient` reader that takes what is usable and notes what was odd; the adapter
then says so in a ``Notice`` once per kind of oddity per run. Token counts are kept only
when they are whole numbers in ``0 .. INT64_MAX`` (SQLite's INTEGER).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from tui.stream.events import FinishReason, Notice, RunError, RunEvent, RunStatus
from tui.stream.sse import SSEEvent

__all__ = [
    "INDEX_MAX",
    "INT64_MAX",
    "Adapter",
    "ErrorBody",
    "Lenient",
    "NoticeLog",
    "Outcome",
    "Unreadable",
    "counts_ok",
    "decode_loose",
    "error_outcome",
    "protocol_outcome",
]

INT64_MAX = 2**63 - 1
"""The largest count kept (SQLite's INTEGER); larger ones are dropped with a notice."""
INDEX_MAX = 2**31 - 1
"""The largest choice, tool-call or output index read as such."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a stream ended, as the adapter understood it (becomes ``Finished``)."""

    status: RunStatus
    reason: FinishReason
    raw_reason: str | None
    error: RunError | None = None


class ErrorBody(msgspec.Struct):
    """An OpenAI-style error object (nested ``error`` or the flat vLLM shape)."""

    message: str | None = None
    type: str | None = None
    code: str | int | None = None
    param: str | None = None


def error_outcome(
    message: str | None, code: str | int | None, type_: str | None, *, where: str
) -> Outcome:
    """A failure reported by the server inside the stream (kind ``server``)."""
    text = message or f"the server reported an error {where}"
    label = code if code is not None else type_
    return Outcome(
        "failed",
        "error",
        None,
        RunError("server", text, code=str(label) if label is not None else None),
    )


def protocol_outcome(message: str) -> Outcome:
    """A stream the adapter cannot read (malformed JSON, not SSE)."""
    return Outcome("failed", "error", None, RunError("protocol", message))


def counts_ok(*values: int | None) -> bool:
    """Whether strictly decoded counts are all None or within ``0 .. INT64_MAX``."""
    return all(value is None or 0 <= value <= INT64_MAX for value in values)


class NoticeLog:
    """The notices of one run, each said once per key (a kind of oddity, not a chunk)."""

    __slots__ = ("_said",)

    def __init__(self) -> None:
        self._said: set[str] = set()

    def say(
        self, key: str, code: str, message: str, t: float, out: list[RunEvent], **extra: Any
    ) -> bool:
        """Append ``Notice(t, code, message)`` to ``out`` unless ``key`` was said; True if
        it was appended."""
        if key in self._said:
            return False
        self._said.add(key)
        out.append(Notice(t, code, message, **extra))
        return True

    def flush(self, reader: Lenient, t: float, out: list[RunEvent]) -> None:
        """Say what ``reader`` found odd (once per code and field per run)."""
        for code, field, message in reader.found:
            self.say(f"{code}:{field}", code, f"{field}: {message}", t, out)

    def counts(
        self,
        counts: tuple[int | None, ...],
        fields: tuple[str, ...],
        prefix: str,
        t: float,
        out: list[RunEvent],
    ) -> tuple[int | None, int | None, int | None, int | None, int | None]:
        """Five usage counts that :func:`counts_ok` refused, read one by one (impossible
        ones become None) and said in a notice under ``prefix`` + their field name."""
        reader = Lenient()
        fixed = [reader.count(v, prefix + n) for v, n in zip(counts, fields, strict=True)]
        self.flush(reader, t, out)
        return fixed[0], fixed[1], fixed[2], fixed[3], fixed[4]


class Unreadable(Exception):
    """An event that is JSON (or nearly) but cannot be decoded at all (nested too deeply,
    a number too long to read): it is skipped with a notice, never an internal error."""


_loose_decoder = msgspec.json.Decoder(float_hook=float)
_DIGITS = re.compile(r"[0-9]{1,30}")


def decode_loose(data: bytes) -> tuple[Any, str | None]:
    """Decode one event's JSON into Python values after the strict decode failed.

    Returns the value and a note of what had to be repaired (None when nothing): bytes that
    are not UTF-8 are replaced by U+FFFD; ``NaN``/``Infinity`` literals and lone surrogate
    escapes (which msgspec rejects) are read by the standard library and the surrogates
    replaced; numbers beyond a float's range become ``inf``. Raises :class:`Unreadable`
    when the event cannot be decoded at all, and ``msgspec.DecodeError`` when it is not
    JSON (malformed).
    """
    note: str | None = None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        data = data.decode("utf-8", "replace").encode("utf-8")
        note = "bytes that are not UTF-8 (replaced by U+FFFD)"
    try:
        return _loose_decoder.decode(data), note
    except RecursionError:
        raise Unreadable("nested too deeply") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        first = exc
    try:
        value = json.loads(data, parse_int=_parse_int)
    except RecursionError:
        raise Unreadable("nested too deeply") from None
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError) and isinstance(first, msgspec.DecodeError):
            raise first from None
        raise Unreadable(str(first)) from None  # pragma: no cover - json reads what msgspec does
    return _no_surrogates(value), note or "JSON that only a lenient decoder reads"


def _parse_int(text: str) -> int | float:
    """An integer literal; one too long for ``int()`` (over 4,300 digits) is infinite."""
    if len(text) > 400:
        return -math.inf if text[0] == "-" else math.inf
    return int(text)


def _no_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, list):
        return [_no_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_no_surrogates(k): _no_surrogates(v) for k, v in value.items()}
    return value


class Lenient:
    """Reads the fields of a leniently decoded event, taking what is usable.

    Each reader method returns the value in the type the adapters use (or None) and notes in
    :attr:`found` what was odd about it, as ``(code, field, what was done)``: ``odd_field``
    for a value of an unexpected type, ``odd_number`` for a count or index out of range.
    """

    __slots__ = ("found",)

    def __init__(self) -> None:
        self.found: list[tuple[str, str, str]] = []

    def odd(self, field: str, message: str, code: str = "odd_field") -> None:
        """Note something odd about ``field``."""
        self.found.append((code, field, message))

    def obj(self, value: Any, field: str) -> dict[str, Any] | None:
        """An object, or None (noted when present but not an object)."""
        if value is None or isinstance(value, dict):
            return value
        self.odd(field, f"{_kind(value)} where an object belongs: ignored")
        return None

    def items(self, value: Any, field: str) -> list[Any]:
        """A list; one object becomes a list of it; null is empty."""
        if value is None:
            return []
        if isinstance(value, list):
            return value
        if isinstance(value, dict):
            self.odd(field, "an object where a list belongs: read as a list of one")
            return [value]
        self.odd(field, f"{_kind(value)} where a list belongs: ignored")
        return []

    def ident(self, value: Any, field: str) -> str | None:
        """An id, name or kind: a string; a number becomes its text."""
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.odd(field, "a number where a string belongs: read as text")
            return _number_text(value)
        self.odd(field, f"{_kind(value)} where a string belongs: ignored")
        return None

    def text(self, value: Any, field: str) -> str | None:
        """Text: a string, or the text of content parts (``[{"type": "text", "text":
        ...}]``, or one such part); a number becomes its text."""
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, dict | list):
            pieces = _part_texts(value)
            if pieces is not None:
                if not isinstance(value, list) or any(not isinstance(p, str) for p in value):
                    self.odd(field, "content parts where a string belongs: their text read")
                return "".join(pieces)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self.odd(field, "a number where text belongs: read as text")
            return _number_text(value)
        self.odd(field, f"{_kind(value)} where text belongs: ignored")
        return None

    def arguments(self, value: Any, field: str) -> str | None:
        """Tool-call arguments: a JSON string; any other JSON value is encoded as JSON."""
        if value is None or isinstance(value, str):
            return value
        self.odd(field, f"{_kind(value)} where a JSON string belongs: encoded as JSON")
        try:
            return msgspec.json.encode(value).decode("utf-8")
        except (TypeError, OverflowError, ValueError):
            return json.dumps(value, default=str)

    def whole(self, value: Any, field: str, limit: int, what: str) -> int | None:
        """A whole number in ``0 .. limit``: an integral float or a string of digits is
        read as one; anything else (negative, fractional, inf, nan, too large) is None."""
        if value is None:
            return None
        if isinstance(value, bool):
            self.odd(field, f"a boolean where {what} belongs: ignored")
            return None
        if isinstance(value, int):
            number = value
        elif isinstance(value, float):
            if not math.isfinite(value) or value != int(value):
                self.odd(field, f"{_number_text(value)} is not {what}: ignored", "odd_number")
                return None
            number = int(value)
            self.odd(field, f"{_number_text(value)} (a float) read as {number}")
        elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
            number = int(value)
            self.odd(field, f"a string where {what} belongs: read as {number}")
        else:
            self.odd(field, f"{_kind(value)} where {what} belongs: ignored")
            return None
        if not 0 <= number <= limit:
            self.odd(field, f"{_short(number)} is out of range: ignored", "odd_number")
            return None
        return number

    def count(self, value: Any, field: str) -> int | None:
        """A token count (see :meth:`whole`)."""
        return self.whole(value, field, INT64_MAX, "a token count")

    def index(self, value: Any, field: str) -> int | None:
        """An index (see :meth:`whole`)."""
        return self.whole(value, field, INDEX_MAX, "an index")

    def error(self, value: Any) -> ErrorBody:
        """An error of any shape: an object (its fields read leniently), a string, a list
        (its messages joined) or anything else (its JSON)."""
        if isinstance(value, dict):
            message = value.get("message")
            if message is None:
                message = value.get("detail", value.get("error"))
            return ErrorBody(
                _message(message),
                _label(value.get("type")),
                _label(value.get("code")),
                _label(value.get("param")),
            )
        if isinstance(value, list):
            bodies = [self.error(v) for v in value]
            messages = [b.message for b in bodies if b.message]
            first = bodies[0] if bodies else ErrorBody()
            return ErrorBody("; ".join(messages) or None, first.type, first.code, first.param)
        return ErrorBody(_message(value))


def _message(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        return str(value["message"])
    try:
        return msgspec.json.encode(value).decode("utf-8")
    except (TypeError, OverflowError, ValueError):
        return str(value)


def _label(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number_text(value)
    return str(value)


def _part_texts(value: Any) -> list[str] | None:
    """The texts of content parts (strings or objects with a string ``text``; the
    Assistants ``{"text": {"value": ...}}`` too), or None if ``value`` has none."""
    parts = value if isinstance(value, list) else [value]
    pieces: list[str] = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(part)
        elif isinstance(part, dict):
            text = part.get("text", part.get("content", part.get("refusal")))
            if isinstance(text, dict):
                text = text.get("value")
            if isinstance(text, str):
                pieces.append(text)
    return pieces if pieces or not parts else None


def _number_text(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return _short(value)


def _short(value: int | float) -> str:
    if isinstance(value, int) and value.bit_length() > 200:
        return f"a {value.bit_length()}-bit number"
    text = str(value)
    return text if len(text) <= 24 else f"{text[:10]}...({len(text)} digits)"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__  # pragma: no cover - JSON has no other kinds


class Adapter(Protocol):
    """Turns SSE events of one API into normalized run events.

    The runner calls :meth:`handle` for every decoded event (the adapter appends a
    ``RawEvent`` and the normalized events to ``out``) and stops reading once
    :attr:`outcome` is set. At a clean EOF it asks :meth:`eof_outcome`; None means the
    stream was truncated.
    """

    outcome: Outcome | None
    content_seen: bool
    """Any answer text or tool call so far (an empty ``stop`` is flagged)."""

    def begin_attempt(self, attempt: int, *, restart: bool) -> None:
        """A new attempt starts; ``restart`` resets all output state (resume keeps it)."""

    def handle(self, event: SSEEvent, t: float, out: list[RunEvent]) -> None:
        """Decode one SSE event into ``out``."""

    def eof_outcome(self, pending: bytes | None) -> Outcome | None:
        """The outcome at a clean EOF (``pending``: data of an unterminated last event)."""
