"""Raw events a running run holds back past its bound, compressed in a temporary file.

With ``keep_raw_events = "failed"`` a run's raw SSE events are kept only if it does not
complete (:mod:`tui.store.queue`). A run holds them in memory up to a bound; past it, the
held ones go to the run's :class:`RawSpill`: their fields as columns (msgpack; the session's
API key blanked out), zlib-compressed (level 1: about a twentieth of their size, at about
1 us per event) and appended to an unnamed temporary file beside the database (the OS
removes it when it is closed, or when the process dies). A run that completes closes its
file: nothing of its raw events ever reaches the database, which a million-token answer
would otherwise fill with as many rows written and deleted again (free pages: 390 of a
400 MB file). A run that ends otherwise (or is still open at ``close``) writes the file's
chunks, one at a time in SQLite's thread, with its last flush.

Raw events in the file are not in the database: a ``kill -9`` loses them, as it loses the
ones held in memory (the run's text, deltas and other events are committed as always).
"""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import msgspec

from tui.stream.events import RawEvent

from .codec import REDACTED, encode_rows

__all__ = ["RawSpill"]

SPILL_ZLIB_LEVEL = 1
"""Fast: raw events compress about twentyfold at level 1 already."""

_Columns = tuple[list[int], list[float], list[int], list[str | None], list[str], list[str | None]]
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Columns).decode


def _blank_text(value: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret in value:
            value = value.replace(secret, REDACTED)
    return value


def _blank(value: str | None, secrets: Sequence[str]) -> str | None:
    return None if value is None else _blank_text(value, secrets)


class RawSpill:
    """One run's raw events past its hold (see the module); made by :meth:`open`."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._chunks: list[tuple[int, int]] = []
        """Offset and length of each compressed chunk in the file."""
        self.events = 0
        """Raw events in the file."""

    @classmethod
    def open(cls, directory: Path) -> RawSpill | None:
        """A spill in an unnamed temporary file in ``directory`` (or the system's temporary
        directory); None when neither can hold one."""
        for place in (directory, None):
            try:
                return cls(tempfile.TemporaryFile(dir=place, prefix=".tokentop-raw-"))
            except OSError:
                continue
        return None

    def write(
        self, seqs: Sequence[int], events: Sequence[RawEvent], secrets: Sequence[str]
    ) -> bool:
        """Append ``events`` (their sequence numbers ``seqs``) as one chunk, with every one of
        the ``secrets`` (the API key as it may appear in a string) blanked out; False when
        the file cannot take it, or an event cannot be encoded (then nothing was written:
        queued as any event, it makes the flush report it)."""
        names = [e.event for e in events]
        datas: list[str] = [e.data for e in events]
        ids = [e.id for e in events]
        if secrets:
            names = [_blank(v, secrets) for v in names]
            datas = [v if (b := _blank(v, secrets)) is None else b for v in datas]
            ids = [_blank(v, secrets) for v in ids]
        columns = (
            list(seqs),
            [e.t for e in events],
            [e.attempt for e in events],
            names,
            datas,
            ids,
        )
        try:
            blob = _encode(columns)
        except (TypeError, ValueError, OverflowError):
            return False
        data = zlib.compress(blob, SPILL_ZLIB_LEVEL)
        try:
            offset = self._file.seek(0, 2)
            self._file.write(data)
        except OSError:  # disk full: the caller writes them to the database instead
            return False
        self._chunks.append((offset, len(data)))
        self.events += len(events)
        return True

    def chunks(self) -> Iterator[str]:
        """Each chunk as the JSON rows of ``INSERT_RUN_EVENTS_JSON``, in order (one in memory
        at a time; meant for SQLite's thread)."""
        self._file.flush()
        for offset, length in self._chunks:
            self._file.seek(offset)
            seqs, times, attempts, names, datas, ids = _decode(
                zlib.decompress(self._file.read(length))
            )
            rows = [
                (seq, t, "RawEvent", RawEvent(t, attempt, name, data, id_))
                for seq, t, attempt, name, data, id_ in zip(
                    seqs, times, attempts, names, datas, ids, strict=True
                )
            ]
            yield encode_rows(rows).decode()

    def close(self) -> None:
        """Close (and so remove) the file."""
        self._file.close()
