"""An incremental, WHATWG-compliant Server-Sent Events decoder over bytes.

Why not httpx-sse or openai-python's decoder: both lose the first event after a BOM,
dispatch events with empty data (which crashes JSON decoding after ``id:`` + keep-alive),
parse ``retry`` with ``int()`` and hold a trailing CR back until the next chunk.

Rules implemented (https://html.spec.whatwg.org/multipage/server-sent-events.html):

- lines end with LF, CR or CRLF, split anywhere; a CRLF split across chunks is handled by
  remembering that the last chunk ended in CR (nothing is held back);
- one leading UTF-8 BOM is stripped, even when it arrives split across chunks;
- comment lines (``:``) are ignored; unknown fields are ignored; one leading space is
  stripped from a value; a line without a colon is a field with an empty value;
- ``data`` lines are joined with ``\\n``; an event with an empty data buffer is NOT dispatched;
- ``id`` persists across events and is ignored when it contains NUL; ``retry`` is accepted
  only when it is ASCII digits, and a value above :data:`MAX_RETRY_MS` (one day) counts as
  that maximum (``int()`` is never called on hundreds of digits);
- pending data at EOF is discarded (but :meth:`SSEDecoder.pending_data` exposes it, so a
  chat stream ending in ``data: [DONE]`` without its blank line can still be recognised);
- the decoder works on bytes and never decodes a line, so a multi-byte UTF-8 character split
  across chunks and U+2028/U+2029 inside JSON are harmless. Event data stays bytes (ready for
  msgspec); :func:`data_text` decodes it for display.

Whole chunks are processed with ``bytes.split``; the per-line loop only classifies lines.
An incomplete line is carried over as a list of pieces, joined once when its end arrives,
and only new bytes are searched for line ends: a line split over many reads costs time
linear in its size.

Bounds: one event's data, or one line, larger than :data:`MAX_EVENT_BYTES` (8 MiB) raises
:class:`SSELimitError` (the runner fails the run with that message); pending data and the
carried line never grow past it, so a server that never ends a line or an event cannot take
more memory than that.
"""

from __future__ import annotations

from itertools import islice
from typing import NamedTuple

__all__ = [
    "BOM",
    "MAX_EVENT_BYTES",
    "MAX_RETRY_MS",
    "SSEDecoder",
    "SSEEvent",
    "SSELimitError",
    "data_text",
]

BOM = b"\xef\xbb\xbf"

MAX_EVENT_BYTES = 8 * 1024 * 1024
"""The largest event data (or single line) accepted, in bytes: 8 MiB, far above any real
chunk (a Responses ``response.completed`` with a long answer is well under 1 MiB)."""

MAX_RETRY_MS = 86_400_000
"""A ``retry:`` above one day (in milliseconds) is read as one day."""

_RETRY_DIGITS = len(str(MAX_RETRY_MS))


class SSELimitError(ValueError):
    """An event or a line past :data:`MAX_EVENT_BYTES`; the message says which and how big."""


class SSEEvent(NamedTuple):
    """One dispatched event: ``event`` is None for the default type (``message``)."""

    event: str | None
    data: bytes
    id: str | None


_tuple_new = tuple.__new__


def data_text(data: bytes) -> str:
    """Event data as text (invalid UTF-8 replaced, as the spec's decoder does)."""
    return data.decode("utf-8", "replace")


def _retry_ms(value: bytes) -> int | None:
    """A ``retry`` value in milliseconds (clamped to :data:`MAX_RETRY_MS`), None when it is
    not ASCII digits (``bytes.isdigit`` is ASCII-only)."""
    if not value or not value.isdigit():
        return None
    if len(value) > _RETRY_DIGITS:
        return MAX_RETRY_MS
    return min(int(value), MAX_RETRY_MS)


def _too_big(what: str, size: int) -> SSELimitError:
    return SSELimitError(
        f"{what} of {size:,} bytes is larger than the {MAX_EVENT_BYTES // (1024 * 1024)} MiB "
        "limit (MAX_EVENT_BYTES)"
    )


EVENT_NAME_CACHE = 256
"""Distinct ``event: `` lines whose decoded name is kept (a server has a handful)."""

_CACHED_LINE = 128
"""Only ``event: `` lines up to this long are cached (the cache outlives runs: a server's
megabyte-long names must not stay in memory)."""

_EVENT_NAMES: dict[bytes, str] = {}
"""``event: <name>`` line -> the decoded name ("" for an empty one), shared by all decoders."""


class SSEDecoder:
    """Feed it network chunks with :meth:`feed`; it returns the events they complete.

    State that outlives events: :attr:`last_event_id` (None until an ``id`` field was seen),
    :attr:`retry_ms` (None until a valid ``retry`` field was seen).
    """

    __slots__ = (
        "_bom_pending",
        "_carry_bytes",
        "_data",
        "_data_bytes",
        "_event",
        "_head",
        "_line",
        "_parts",
        "_skip_lf",
        "first_event_id",
        "last_event_id",
        "retry_ms",
        "saw_id",
    )

    def __init__(self) -> None:
        self._line = b""  # the last piece of an incomplete line carried to the next chunk
        self._parts: list[bytes] = []  # its earlier pieces, when it spans three reads or more
        self._carry_bytes = 0  # the carried line's size
        self._data_bytes = 0  # the size of the pending event's data lines (after a feed)
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF ends nothing
        self._bom_pending = True
        self._head = b""  # up to 2 bytes that may still turn out to be a BOM
        self._data: list[bytes] = []
        self._event: str | None = None
        self.last_event_id: str | None = None
        """The last event ID buffer (persists across events); None before any ``id``."""
        self.retry_ms: int | None = None
        """The reconnection time the server asked for, in milliseconds."""
        self.saw_id = False
        """True once any ``id`` field was accepted (the stream supports Last-Event-ID)."""
        self.first_event_id: str | None = None
        """The first ``id`` field accepted (to recognise a stream replayed from its start)."""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode one chunk; return the events completed by it (possibly none)."""
        if self._bom_pending:
            chunk = self._head + chunk
            if len(chunk) < 3 and BOM.startswith(chunk):
                self._head = chunk
                return []
            self._bom_pending = False
            self._head = b""
            if chunk.startswith(BOM):
                chunk = chunk[3:]
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
                if not chunk:
                    return []
        if b"\r" in chunk:
            if chunk[-1] == 0x0D:
                self._skip_lf = True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = chunk.split(b"\n")
        if len(chunk) + self._carry_bytes + self._data_bytes > MAX_EVENT_BYTES:
            return self._feed_checked(lines)
        last = lines.pop()
        if not lines:  # no line end: keep the piece (the next reads search only their bytes)
            if self._line:
                self._parts.append(self._line)
            self._line = last
            self._carry_bytes += len(last)
            return []
        if self._carry_bytes:
            parts = self._parts
            if parts:  # a line over three reads or more: joined once, here
                parts += (self._line, lines[0])
                lines[0] = b"".join(parts)
                parts.clear()
            else:
                lines[0] = self._line + lines[0]
        self._line = last
        self._carry_bytes = len(last)
        return self._lines(lines)

    def _carried(self) -> bytes:
        """The unfinished line carried over (its pieces joined)."""
        return b"".join(self._parts) + self._line if self._parts else self._line

    def _feed_checked(self, lines: list[bytes]) -> list[SSEEvent]:
        """:meth:`feed` of a chunk that could take an event or a line past the limit."""
        last = lines.pop()
        carried = self._carry_bytes
        if not lines:
            size = carried + len(last)
            if size > MAX_EVENT_BYTES:
                raise _too_big("an unfinished line", size)
            if self._line:
                self._parts.append(self._line)
            self._line = last
            self._carry_bytes = size
            return []
        if carried:
            lines[0] = self._carried() + lines[0]
            self._parts.clear()
        for line in lines:
            if len(line) > MAX_EVENT_BYTES:
                raise _too_big("a line", len(line))
        if len(last) > MAX_EVENT_BYTES:
            raise _too_big("an unfinished line", len(last))
        self._line = last
        self._carry_bytes = len(last)
        out = self._lines(lines)
        for event in out:
            if len(event.data) > MAX_EVENT_BYTES:
                raise _too_big("an event", len(event.data))
        return out

    def _lines(self, lines: list[bytes]) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        data = self._data
        counted = len(data)  # data lines already in self._data_bytes
        pending = self._data_bytes
        for line in lines:
            if not line:
                if data:
                    payload = data[0] if len(data) == 1 else b"\n".join(data)
                    # tuple.__new__ skips the NamedTuple's Python-level __new__ (hot path)
                    out.append(_tuple_new(SSEEvent, (self._event, payload, self.last_event_id)))
                    data.clear()
                    counted = pending = 0
                self._event = None
            elif line[:6] == b"data: ":
                data.append(line[6:])
            elif line[:7] == b"event: ":  # every Responses event has one: skip _field
                name = _EVENT_NAMES.get(line)
                if name is None:
                    self._field(line)
                    if len(_EVENT_NAMES) < EVENT_NAME_CACHE and len(line) <= _CACHED_LINE:
                        _EVENT_NAMES[line] = self._event or ""
                else:
                    self._event = name or None
            elif line[0] == 0x3A:  # ":" comment
                continue
            else:
                self._field(line)
        if data:  # an event continues in the next chunk: count each line's size once
            n = len(data)
            if n - counted == 1:
                pending += len(data[-1]) + 1
            elif n > counted:
                pending += sum(map(len, islice(data, counted, None))) + n - counted
            if pending > MAX_EVENT_BYTES:
                raise _too_big("an event", pending)
        self._data_bytes = pending
        return out

    def _field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace") or None
        elif name == b"id":
            if b"\x00" not in value:
                self.last_event_id = value.decode("utf-8", "replace")
                if not self.saw_id:
                    self.saw_id = True
                    self.first_event_id = self.last_event_id
        elif name == b"retry":
            retry = _retry_ms(value)
            if retry is not None:
                self.retry_ms = retry

    def pending_data(self) -> bytes | None:
        """At EOF: the data of the event that never got its blank line (None when there is
        none). The spec discards it; a caller may still look at it (``[DONE]``)."""
        data = list(self._data)
        line = self._carried()
        if line:
            name, colon, value = line.partition(b":")
            if name == b"data":
                data.append(value[1:] if colon and value[:1] == b" " else value)
        if not data:
            return None
        return b"\n".join(data)
