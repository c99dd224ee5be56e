"""The compact stored form of text and reasoning deltas, and reading a run's events back.

A 400-token answer is 400 :class:`TextDelta` events; stored one row each, with their JSON
payload, they were most of a database after the raw events. The writer instead gathers the
deltas of one run and one kind that a flush writes into a :class:`DeltaSegment`, stored as
one ``deltas`` row (schema 4, :data:`tui.store.schema.V4`): ``seq`` is the first delta's
place among the run's events, and ``body`` is zlib-compressed:

- a width byte, then the gaps from each delta's place to the next one's (0: none, the
  deltas are consecutive events; 1 or 4: one or four bytes per gap), so the deltas keep
  their order relative to every other event of the run;
- each delta's ``t`` as a float64 (little-endian): the very same float, so a replay paces
  each piece exactly as it arrived (a ``t`` that was not finite is stored as 0.0, as the
  JSON of ``events`` always stored it);
- a JSON array of the pieces, exactly as received (with the session's API key blanked out
  before compression, as in ``events``).

Compressed, a 400-token answer's deltas take about 3 KB (times 2 KB, text 0.8 KB), against
6.5 KB as plain columns and 70 KB as ``events`` rows. The encoding runs in SQLite's worker
thread (a sqlite3 adapter, as for the events' JSON; zlib releases the GIL), so the event loop
only appends each delta to its segment. :func:`iter_events` merges ``events`` and ``deltas``
rows by ``seq`` into the original event objects; runs written before schema 4 have only
``events`` rows and read as they always did.
"""

from __future__ import annotations

import math
import sqlite3
import sys
import zlib
from array import array
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Iterable
from itertools import accumulate, pairwise
from operator import attrgetter, itemgetter
from typing import Any

import aiosqlite
import msgspec

from tui.stream.construct import reasoning_delta, text_delta
from tui.stream.events import ReasoningDelta, RunEvent, TextDelta

from . import queries
from .codec import REDACTED, decode_event
from .errors import StoreError

__all__ = [
    "DELTA_TYPES",
    "EVENTS_BATCH",
    "SEGMENT_LIMIT",
    "DeltaSegment",
    "blank_secrets",
    "expand_deltas",
    "iter_events",
    "load_events",
    "segment_row",
]

DELTA_TYPES: dict[str, type[TextDelta] | type[ReasoningDelta]] = {
    "TextDelta": TextDelta,
    "ReasoningDelta": ReasoningDelta,
}
"""The event kinds stored compactly, by name (the ``kind`` column)."""

_BUILD: dict[str, Callable[[float, str], TextDelta | ReasoningDelta]] = {
    "TextDelta": text_delta,
    "ReasoningDelta": reasoning_delta,
}

SEGMENT_LIMIT = 4096
"""Deltas per ``deltas`` row at most (a flush of a very fast stream starts a new row)."""

ZLIB_LEVEL = 6
"""zlib's default level. On the body of 400 deltas (7.0 KB raw): 3,709 bytes in 250 us;
level 9 saves 3 bytes for 25% more time, level 1 takes 4% more bytes for 15% less."""


def deflate(data: bytes) -> bytes:
    """``data`` zlib-compressed at :data:`ZLIB_LEVEL` with a window no larger than it needs
    (a zlib stream as any other; ``zlib.decompress`` reads it): most bodies are a flush's few
    deltas of one run, and setting up zlib's default 32 KB window cost 10-20 times more
    than compressing them (15 instead of 180 us for 130 bytes on the shared machine)."""
    wbits = min(15, max(9, (len(data) - 1).bit_length()))
    deflater = zlib.compressobj(ZLIB_LEVEL, zlib.DEFLATED, wbits)
    return deflater.compress(data) + deflater.flush()


_REDACTED = REDACTED.encode()
_LITTLE = sys.byteorder == "little"
_texts_decoder = msgspec.json.Decoder(list[str])
_get_t = attrgetter("t")
_get_text = attrgetter("text")
_encode = msgspec.json.Encoder().encode


class DeltaSegment:
    """Deltas of one run and one kind queued for one flush, with their sequence numbers.

    The writer appends on the event loop until the flush takes the segment; from then on it
    is only read (encoded in SQLite's thread), never appended to again.
    """

    __slots__ = ("events", "kind", "seqs", "slot")

    def __init__(self, slot: int, kind: type[TextDelta] | type[ReasoningDelta]) -> None:
        self.slot = slot
        """The run's slot in the writer (see :mod:`tui.store.flush`)."""
        self.kind = kind
        self.events: list[TextDelta | ReasoningDelta] = []
        self.seqs: list[int] = []

    def __len__(self) -> int:
        return len(self.seqs)


def blank_secrets(blob: bytes, forms: Iterable[bytes]) -> bytes:
    """``blob`` with every one of the secret ``forms`` replaced by ``[redacted]``."""
    for form in forms:
        if form in blob:
            blob = blob.replace(form, _REDACTED)
    return blob


def _little(values: array[Any]) -> bytes:
    if not _LITTLE:  # pragma: no cover - the stored form is little-endian everywhere
        values.byteswap()
    return values.tobytes()


def _from_little(code: str, data: bytes) -> array[Any]:
    values = array(code)
    values.frombytes(data)
    if not _LITTLE:  # pragma: no cover
        values.byteswap()
    return values


class _Body:
    """A segment's ``body``, encoded and compressed when SQLite binds it (in its thread)."""

    __slots__ = ("forms", "segment")

    def __init__(self, segment: DeltaSegment, forms: tuple[bytes, ...]) -> None:
        self.segment = segment
        self.forms = forms

    def adapt(self) -> bytes:
        events = self.segment.events
        seqs = self.segment.seqs
        # C-level loops: this runs in SQLite's thread, and Python bytecode there would hold
        # the GIL from the event loop for up to a switch interval at a time
        values = array("d", map(_get_t, events))
        if not math.isfinite(sum(values)):  # rare: inf or nan stored as 0.0, as in `events`
            values = array("d", [t if math.isfinite(t) else 0.0 for t in values])
        times = _little(values)
        if seqs[-1] - seqs[0] == len(seqs) - 1:  # strictly increasing: consecutive
            width, gaps = b"\x00", b""
        else:
            steps = [b - a for a, b in pairwise(seqs)]
            if max(steps) < 256:
                width, gaps = b"\x01", bytes(steps)
            else:
                width, gaps = b"\x04", _little(array("I", steps))
        texts = _encode(list(map(_get_text, events)))
        if self.forms:
            texts = blank_secrets(texts, self.forms)
        return deflate(b"".join((width, times, gaps, texts)))


sqlite3.register_adapter(_Body, _Body.adapt)


def segment_row(segment: DeltaSegment, rowid: int, forms: tuple[bytes, ...]) -> tuple[Any, ...]:
    """The ``deltas`` row of ``segment`` of the run ``rowid`` (the encoding itself is left
    to SQLite's thread); ``forms``: the run's API key as it may appear in the JSON (see
    ``secret_forms``)."""
    last_t = segment.events[-1].t
    return (
        rowid,
        segment.seqs[0],
        segment.kind.__name__,
        len(segment.seqs),
        last_t if math.isfinite(last_t) else None,
        _Body(segment, forms),
    )


def expand_deltas(seq: int, kind: str, count: int, body: bytes) -> list[tuple[int, RunEvent]]:
    """The ``(seq, event)`` pairs of one ``deltas`` row (:class:`StoreError` when it cannot
    be read)."""
    build = _BUILD.get(kind)
    if build is None:
        raise StoreError(f"unknown delta kind {kind!r} in the database (from a newer tokentop?)")
    try:
        return _expand(build, seq, count, zlib.decompress(body))
    except (zlib.error, ValueError, IndexError, msgspec.DecodeError) as exc:
        raise StoreError(f"a deltas row (seq {seq}) is corrupt: {exc}") from None


def _expand(
    build: Callable[[float, str], TextDelta | ReasoningDelta], seq: int, count: int, data: bytes
) -> list[tuple[int, RunEvent]]:
    width = data[0]
    end = 1 + 8 * count
    times = _from_little("d", data[1:end])
    places: Iterable[int]
    if width == 0:
        places = range(seq, seq + count)
    else:
        gaps_end = end + width * (count - 1)
        gaps = data[end:gaps_end] if width == 1 else _from_little("I", data[end:gaps_end])
        places, end = accumulate(gaps, initial=seq), gaps_end
    pieces = _texts_decoder.decode(data[end:])
    if not len(times) == len(pieces) == count:
        raise ValueError(f"a deltas row at seq {seq} holds {len(pieces)} pieces, not {count}")
    return [(place, build(t, text)) for place, t, text in zip(places, times, pieces, strict=True)]


EVENTS_BATCH = 10_000
"""Events per batch of :func:`iter_events` (about 2-3 MB of event objects)."""

DELTA_ROWS_PER_READ = 8
"""``deltas`` rows read at once (each holds at most :data:`SEGMENT_LIMIT` deltas)."""

_seq_of = itemgetter(0)


async def iter_events(
    conn: aiosqlite.Connection,
    rowid: int,
    batch: int = EVENTS_BATCH,
    *,
    deltas: bool = True,
    raw: bool = True,
) -> AsyncIterator[list[RunEvent]]:
    """The stored events of the run ``rowid`` in arrival order, ``batch`` at a time (the
    last batch may be shorter): its ``events`` rows and the deltas of its ``deltas`` rows,
    merged by sequence number while both are read in order, so that memory stays bounded
    (a batch, and at most :data:`DELTA_ROWS_PER_READ` rows of deltas) on a run of any size.

    An event is handed on once no row still unread can come before it: the events rows
    read so far end at ``events_to``, and every unread ``deltas`` row starts after
    ``deltas_to`` (the first seq of the last one read; the deltas of one row, and of the
    rows of one flush, may interleave with each other and with events rows).
    ``deltas=False`` leaves the text and reasoning deltas out (their rows are not read),
    ``raw=False`` the raw SSE events (SQLite skips their rows: none is decoded)."""
    if batch < 1:
        raise ValueError(f"a batch of events must hold at least one, not {batch}")
    select_events = queries.SELECT_EVENT_ROWS_AFTER if raw else queries.SELECT_CHOSEN_ROWS_AFTER
    pending: list[tuple[int, RunEvent]] = []
    out: list[RunEvent] = []
    events_to: float = -1.0  # every row up to these seqs is read (math.inf: all)
    deltas_to: float = -1.0 if deltas else math.inf
    while True:
        safe = min(events_to, deltas_to)
        if pending:
            pending.sort(key=_seq_of)  # runs of sorted pairs: timsort merges them in O(n)
            cut = bisect_right(pending, safe, key=_seq_of)
            out += [event for _, event in pending[:cut]]
            del pending[:cut]
        if safe == math.inf:  # everything is read
            for start in range(0, len(out), batch):
                yield out[start : start + batch]
            return
        while len(out) >= batch:
            yield out[:batch]
            del out[:batch]
        if events_to <= deltas_to:  # read on where less is known
            rows = list(await conn.execute_fetchall(select_events, (rowid, events_to, batch)))
            pending += [(seq, decode_event(kind, payload)) for seq, kind, payload in rows]
            events_to = rows[-1][0] if len(rows) == batch else math.inf
        else:
            rows = list(
                await conn.execute_fetchall(
                    queries.SELECT_DELTA_ROWS_AFTER, (rowid, deltas_to, DELTA_ROWS_PER_READ)
                )
            )
            for row in rows:
                pending += expand_deltas(*row)
            deltas_to = rows[-1][0] if len(rows) == DELTA_ROWS_PER_READ else math.inf


async def load_events(conn: aiosqlite.Connection, rowid: int) -> list[RunEvent]:
    """Every stored event of the run ``rowid``, in arrival order (:func:`iter_events`, all
    in one list: for runs known to be small)."""
    events: list[RunEvent] = []
    async for chunk in iter_events(conn, rowid):
        events += chunk
    return events
