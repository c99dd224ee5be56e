"""Raw events a running run holds back past its bound, compressed in a temporary file.

With ``keep_raw_events = "failed"`` a run's raw SSE events are kept only if it does not
complete (:mod:`tui.store.queue`). A run holds them in memory up to a bound; past it, the
held ones go to the run's :class:`RawSpill`: their fields as columns (msgpack; the session's
API key blanked out), zlib-compressed (level 1: about a twentieth of their size, at about
1 us per event) and appended to the writer's unnamed temporary file beside the database
(:class:`SpillFile`; the OS removes it when it is closed, or when the process dies). A run
that completes lets its chunks go: nothing of its raw events ever reaches the database,
which a million-token answer would otherwise fill with as many rows written and deleted
again (free pages: 390 of a 400 MB file). A run that ends otherwise (or is still open at
``close``) writes its chunks, one at a time in SQLite's thread, with its last flush. The
file is emptied whenever no run has chunks in it any more.

Raw events in the file are not in the database: a ``kill -9`` loses them, as it loses the
ones held in memory (the run's text, deltas and other events are committed as always).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from tui.stream.events import RawEvent

from .codec import REDACTED, encode_rows

if TYPE_CHECKING:
    from .flush import HeldRaw

__all__ = ["RawSpill", "SpillFile"]

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


class SpillFile:
    """The unnamed temporary file of one writer, where its runs put their raw events past
    their holds (one file descriptor for all runs, however many). Written on the event loop
    at its end, read in SQLite's thread with ``pread`` at given offsets (no shared file
    position); emptied whenever no run has chunks in it any more."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._fd: int | None = None
        self._end = 0
        self._runs = 0
        """Runs with chunks in the file."""

    def append(self, data: bytes) -> int | None:
        """Write ``data`` at the end; its offset, or None when no file can take it."""
        try:
            if self._fd is None:
                self._fd = _unnamed_file(self._directory)
            offset = self._end
            os.pwrite(self._fd, data, offset)
        except OSError:  # no room, no file: the caller writes to the database instead
            return None
        self._end += len(data)
        return offset

    def read(self, offset: int, length: int) -> bytes:
        """The bytes written at ``offset``."""
        assert self._fd is not None
        return os.pread(self._fd, length, offset)

    def hold(self) -> None:
        """One more run has chunks in the file."""
        self._runs += 1

    def release(self) -> None:
        """A run's chunks are not needed any more: with the last one, the file is emptied."""
        self._runs -= 1
        if self._runs == 0 and self._fd is not None and self._end:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            self._end = 0

    def close(self) -> None:
        """Close (and so remove) the file."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def _unnamed_file(directory: Path) -> int:
    """A file descriptor of a new file in ``directory`` (else the system's temporary
    directory), unlinked at once: the OS removes it once closed, or when the process dies."""
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".tokentop-raw-")
    except OSError:
        fd, name = tempfile.mkstemp(prefix=".tokentop-raw-")
    os.unlink(name)
    return fd


class RawSpill:
    """One run's raw events past its hold, as chunks in its writer's :class:`SpillFile`."""

    def __init__(self, file: SpillFile) -> None:
        self._file = file
        self._chunks: list[tuple[int, int]] = []
        """Offset and length of each compressed chunk in the file."""
        self.events = 0
        """Raw events in the file."""

    def write(self, held: HeldRaw, secrets: Sequence[str]) -> bool:
        """Append the ``held`` raw events as one chunk, with every one of the ``secrets`` (the
        API key as it may appear in a string) blanked out; False when the file cannot take
        it, or an event cannot be encoded (then nothing was written: queued as any event,
        it makes the flush report it)."""
        names, datas, ids = held.names, held.datas, held.ids
        if secrets:
            names = [_blank(v, secrets) for v in names]
            datas = [_blank_text(v, secrets) for v in datas]
            ids = [_blank(v, secrets) for v in ids]
        columns = (held.seqs.tolist(), held.times, held.attempts, names, datas, ids)
        try:
            blob = _encode(columns)
        except (TypeError, ValueError, OverflowError):
            return False
        data = zlib.compress(blob, SPILL_ZLIB_LEVEL)
        offset = self._file.append(data)
        if offset is None:
            return False
        if not self._chunks:
            self._file.hold()
        self._chunks.append((offset, len(data)))
        self.events += len(held)
        return True

    def chunks(self) -> Iterator[str]:
        """Each chunk as the JSON rows of ``INSERT_RUN_EVENTS_JSON``, in order (one in memory
        at a time; meant for SQLite's thread)."""
        for offset, length in self._chunks:
            columns = _decode(zlib.decompress(self._file.read(offset, length)))
            seqs, times, attempts, names, datas, ids = columns
            rows = [
                (seq, t, "RawEvent", RawEvent(t, attempt, name, data, id_))
                for seq, t, attempt, name, data, id_ in zip(
                    seqs, times, attempts, names, datas, ids, strict=True
                )
            ]
            yield encode_rows(rows).decode()

    def close(self) -> None:
        """The run's chunks are not needed any more."""
        if self._chunks:
            self._chunks = []
            self._file.release()
