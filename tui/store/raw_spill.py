"""Raw events a running run holds back past its bound, compressed in a temporary file.

With ``keep_raw_events = "failed"`` a run's raw SSE events are kept only if it does not
complete (:mod:`tui.store.queue`). A run holds them in memory up to a bound; past it, the
held ones go to the run's :class:`RawSpill`: encoded as the rows of
:data:`~tui.store.queries.INSERT_RUN_EVENTS_JSON` (seq, t, kind, event; the session's API key
blanked out), zlib-compressed (level 1: about a tenth of their size) and appended to an
unnamed temporary file beside the database (the OS removes it when it is closed, or when
the process dies). A run that completes closes its file: nothing of its raw events ever
reaches the database, which a million-token answer would otherwise fill with as many rows
written and deleted again (free pages: 390 of a 400 MB file). A run that ends otherwise
(or is still open at ``close``) writes the file's chunks, one at a time in SQLite's thread,
with its last flush.

Raw events in the file are not on disk in the database: a ``kill -9`` loses them, as it
loses the ones held in memory (the run's text, deltas and other events are committed as
always).
"""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from tui.stream.events import RawEvent

from .codec import encode_rows
from .compact import blank_secrets

__all__ = ["RawSpill"]

SPILL_ZLIB_LEVEL = 1
"""Fast: a raw event's JSON compresses about tenfold at level 1 already."""


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
        self, seqs: Sequence[int], events: Sequence[RawEvent], secrets: Sequence[bytes]
    ) -> bool:
        """Append ``events`` (their sequence numbers ``seqs``) as one chunk; False when the
        file cannot take it, or an event cannot be encoded (then nothing was written: queued
        as any event, it makes the flush report it)."""
        try:
            blob = encode_rows(
                [(seq, e.t, "RawEvent", e) for seq, e in zip(seqs, events, strict=True)]
            )
        except (TypeError, ValueError):
            return False
        if secrets:
            blob = blank_secrets(blob, secrets)
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
        """Each chunk's rows as JSON text, in order (one in memory at a time)."""
        self._file.flush()
        for offset, length in self._chunks:
            self._file.seek(offset)
            yield zlib.decompress(self._file.read(length)).decode()

    def close(self) -> None:
        """Close (and so remove) the file."""
        self._file.close()
