"""The compact stored form of text and reasoning deltas, and reading a run's events back.

A 400-token answer is 400 :class:`TextDelta` events; stored one row each, with their JSON
payload, they were most of a database after the raw events. The writer instead gathers the
deltas of one run and one kind that a flush writes into a :class:`DeltaSegment`, stored as
one ``deltas`` row (schema 4, :data:`tui.store.schema.V4`):

- ``seq`` is the first delta's place among the run's events, ``steps`` the gaps to the
  places of the others (NULL when they are consecutive: one byte each when every gap is
  under 256, else four), so the deltas keep their order relative to every other event;
- ``times`` is each delta's ``t`` as a float64 (little-endian): the very same float, so a
  replay paces each piece exactly as it arrived (a ``t`` that was not finite is stored as
  0.0, as the JSON of ``events`` always stored it);
- ``texts`` is a JSON array of the pieces, exactly as received (with the session's API key
  blanked out, as in ``events``).

The encoding runs in SQLite's worker thread (sqlite3 adapters, as for the events' JSON), so
the event loop only appends each delta to its segment. :func:`load_events` merges ``events``
and ``deltas`` rows by ``seq`` into the original event objects; runs written before schema
4 have only ``events`` rows and read as they always did.
"""

from __future__ import annotations

import math
import sqlite3
import sys
from array import array
from collections.abc import Callable, Iterable
from itertools import accumulate, pairwise
from typing import Any

import aiosqlite
import msgspec

from tui.stream.construct import reasoning_delta, text_delta
from tui.stream.events import ReasoningDelta, RunEvent, TextDelta

from .codec import REDACTED, decode_event

__all__ = [
    "DELTA_TYPES",
    "SEGMENT_LIMIT",
    "DeltaSegment",
    "blank_secrets",
    "expand_deltas",
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

_REDACTED = REDACTED.encode()
_LITTLE = sys.byteorder == "little"
_texts_decoder = msgspec.json.Decoder(list[str])
_encode = msgspec.json.Encoder().encode


class DeltaSegment:
    """Deltas of one run and one kind queued for one flush, with their sequence numbers.

    The writer appends on the event loop until the flush takes the segment; from then on it
    is only read (encoded in SQLite's thread), never appended to again.
    """

    __slots__ = ("events", "kind", "rowid", "seqs")

    def __init__(self, rowid: int, kind: type[TextDelta] | type[ReasoningDelta]) -> None:
        self.rowid = rowid
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


class _Times:
    """A segment's times, encoded (float64, little-endian) when SQLite binds them."""

    __slots__ = ("segment",)

    def __init__(self, segment: DeltaSegment) -> None:
        self.segment = segment

    def adapt(self) -> bytes:
        isfinite = math.isfinite
        times = array("d", [t if isfinite(t) else 0.0 for t in (e.t for e in self.segment.events)])
        if not _LITTLE:  # pragma: no cover - the stored form is little-endian everywhere
            times.byteswap()
        return times.tobytes()


class _Steps:
    """The gaps between a segment's sequence numbers after the first, encoded when bound:
    a kind byte (1: one byte per gap, 4: uint32 little-endian) and the gaps."""

    __slots__ = ("segment",)

    def __init__(self, segment: DeltaSegment) -> None:
        self.segment = segment

    def adapt(self) -> bytes:
        seqs = self.segment.seqs
        gaps = [b - a for a, b in pairwise(seqs)]
        if max(gaps) < 256:
            return b"\x01" + bytes(gaps)
        wide = array("I", gaps)
        if not _LITTLE:  # pragma: no cover
            wide.byteswap()
        return b"\x04" + wide.tobytes()


class _Texts:
    """A segment's pieces as a JSON array, secrets blanked out, encoded when bound."""

    __slots__ = ("forms", "segment")

    def __init__(self, segment: DeltaSegment, forms: tuple[bytes, ...]) -> None:
        self.segment = segment
        self.forms = forms

    def adapt(self) -> str:
        blob = _encode([e.text for e in self.segment.events])
        if self.forms:
            blob = blank_secrets(blob, self.forms)
        return blob.decode()  # text: SQLite 3.45+ would read a BLOB as JSONB


sqlite3.register_adapter(_Times, _Times.adapt)
sqlite3.register_adapter(_Steps, _Steps.adapt)
sqlite3.register_adapter(_Texts, _Texts.adapt)


def segment_row(segment: DeltaSegment, forms: tuple[bytes, ...]) -> tuple[Any, ...]:
    """The ``deltas`` row of ``segment`` (the encoding itself is left to SQLite's thread);
    ``forms``: the run's API key as it may appear in the JSON (see ``secret_forms``)."""
    seqs = segment.seqs
    last_t = segment.events[-1].t
    consecutive = seqs[-1] - seqs[0] == len(seqs) - 1  # strictly increasing
    return (
        segment.rowid,
        seqs[0],
        segment.kind.__name__,
        len(seqs),
        last_t if math.isfinite(last_t) else None,
        _Times(segment),
        None if consecutive else _Steps(segment),
        _Texts(segment, forms),
    )


INSERT_DELTAS = (
    "INSERT INTO deltas(run, seq, kind, count, last_t, times, steps, texts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

SELECT_EVENT_ROWS = "SELECT seq, kind, payload FROM events WHERE run = ? ORDER BY seq"
SELECT_DELTA_ROWS = (
    "SELECT seq, kind, count, times, steps, texts FROM deltas WHERE run = ? ORDER BY seq"
)


def _places(seq: int, count: int, steps: bytes | None) -> Iterable[int]:
    if steps is None:
        return range(seq, seq + count)
    width = steps[0]
    if width == 1:
        gaps: Iterable[int] = steps[1:]
    else:
        wide = array("I")
        wide.frombytes(steps[1:])
        if not _LITTLE:  # pragma: no cover
            wide.byteswap()
        gaps = wide
    return accumulate(gaps, initial=seq)


def expand_deltas(
    seq: int, kind: str, count: int, times: bytes, steps: bytes | None, texts: str | bytes
) -> list[tuple[int, RunEvent]]:
    """The ``(seq, event)`` pairs of one ``deltas`` row."""
    build = _BUILD[kind]
    values = array("d")
    values.frombytes(times)
    if not _LITTLE:  # pragma: no cover
        values.byteswap()
    pieces = _texts_decoder.decode(texts)
    if not len(values) == len(pieces) == count:
        raise ValueError(f"a deltas row at seq {seq} holds {len(pieces)} pieces, not {count}")
    return [
        (place, build(t, text))
        for place, t, text in zip(_places(seq, count, steps), values, pieces, strict=True)
    ]


async def load_events(conn: aiosqlite.Connection, rowid: int) -> list[RunEvent]:
    """Every stored event of the run ``rowid``, in arrival order: its ``events`` rows and
    the deltas of its ``deltas`` rows, merged by sequence number."""
    rows = await conn.execute_fetchall(SELECT_EVENT_ROWS, (rowid,))
    segments = await conn.execute_fetchall(SELECT_DELTA_ROWS, (rowid,))
    if not segments:
        return [decode_event(kind, payload) for _, kind, payload in rows]
    placed: list[tuple[int, RunEvent]] = [
        (seq, decode_event(kind, payload)) for seq, kind, payload in rows
    ]
    for segment in segments:
        placed += expand_deltas(*segment)
    placed.sort(key=lambda pair: pair[0])
    return [event for _, event in placed]
