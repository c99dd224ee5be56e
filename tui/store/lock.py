"""One writing tokentop per database: an exclusive advisory lock on ``<db>.lock``.

``flock`` locks belong to the open file and vanish when the process dies (also on
``kill -9``), so a stale lock never needs cleaning up; the file holds the owner's pid only so
that the message can name it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from .errors import StoreError


class LockBusyError(StoreError):
    """Another live process holds the database's lock."""

    def __init__(self, db: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "unknown pid"
        super().__init__(
            f"database {db} is in use by another tokentop ({who}); close it first, "
            "or choose another file with --db"
        )
        self.pid = pid


class DbLock:
    """The held lock of one database (release with :meth:`release`)."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, db: Path) -> DbLock:
        """Take the lock without waiting; :class:`LockBusyError` when another process has it."""
        path = db.with_name(db.name + ".lock")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(
                f"cannot create the lock file {path}: {exc.strerror or exc} "
                "(is the directory read-only?)"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise LockBusyError(db, pid) from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot lock {path}: {exc.strerror or exc}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
