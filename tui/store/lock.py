"""Writer locks: any number of tokentop writers per database, each with its own lock file.

Every writing store holds an exclusive ``flock`` on its own file
``<db>.writers/<token>.lock`` (``token`` = ``<pid>-<random hex>``) for as long as it is
open, and records the token as the ``owner`` of each run it starts. ``flock`` locks belong
to the open file and vanish when the process dies (also on ``kill -9``), so "is the owner of
this run alive?" is answered by trying to lock its file: when that succeeds (or the file is
gone), the owner is dead and its ``running`` runs may be marked ``interrupted``; when it
fails, the owner is alive and its runs are left alone. Two stores in one process are two
writers too: ``flock`` locks of separate opens of a file conflict.

Every writer also holds a *shared* lock on the legacy file ``<db>.lock``, which tokentop
before schema version 3 locked exclusively: an old tokentop and a new one never write the
same database at once, and runs without an owner (written by an old tokentop) belong to
whoever holds ``<db>.lock`` exclusively.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from pathlib import Path

from .errors import StoreError


class LockBusyError(StoreError):
    """An older tokentop (one writer per database) holds the database's legacy lock."""

    def __init__(self, db: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "unknown pid"
        super().__init__(
            f"database {db} is in use by an older tokentop ({who}) that allows no other "
            "writer; close it or upgrade it, or choose another file with --db"
        )
        self.pid = pid


def writers_dir(db: Path) -> Path:
    """The directory of the per-writer lock files of ``db``."""
    return db.with_name(db.name + ".writers")


def legacy_lock_path(db: Path) -> Path:
    """``<db>.lock``: the lock file of tokentop before schema version 3."""
    return db.with_name(db.name + ".lock")


def _open_file(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StoreError(
            f"cannot create the lock file {path}: {exc.strerror or exc} "
            "(is the directory read-only?)"
        ) from None


class DbLock:
    """The held writer lock of one store (release with :meth:`release`)."""

    def __init__(self, fd: int, legacy_fd: int, path: Path, token: str) -> None:
        self._fd: int | None = fd
        self._legacy_fd: int | None = legacy_fd
        self.path = path
        """This writer's lock file."""
        self.token = token
        """This writer's owner token, recorded in the ``owner`` column of its runs."""

    @classmethod
    def acquire(cls, db: Path) -> DbLock:
        """Become one more writer of ``db`` (never waits).

        :class:`LockBusyError` when an older tokentop holds ``<db>.lock`` exclusively;
        :class:`StoreError` when the lock files cannot be created.
        """
        legacy = legacy_lock_path(db)
        legacy_fd = _open_file(legacy, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(legacy_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(legacy_fd)
            os.close(legacy_fd)
            raise LockBusyError(db, pid) from None
        except OSError as exc:
            os.close(legacy_fd)
            raise StoreError(f"cannot lock {legacy}: {exc.strerror or exc}") from None
        try:
            fd, path, token = _own_lock_file(writers_dir(db))
        except BaseException:
            os.close(legacy_fd)
            raise
        return cls(fd, legacy_fd, path, token)

    def release(self) -> None:
        """Give the lock up and remove this writer's lock file (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.unlink(self.path)  # while still locked: nobody takes it for a dead one
            with contextlib.suppress(OSError):  # the last writer out leaves no directory
                os.rmdir(self.path.parent)
            os.close(fd)
        if self._legacy_fd is not None:
            legacy_fd, self._legacy_fd = self._legacy_fd, None
            os.close(legacy_fd)


def _own_lock_file(directory: Path) -> tuple[int, Path, str]:
    """Create, lock and verify a fresh lock file in ``directory``: (fd, path, token)."""
    while True:
        try:
            directory.mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the directory {directory}: {exc.strerror or exc} "
                "(is its parent read-only?)"
            ) from None
        token = f"{os.getpid()}-{secrets.token_hex(6)}"
        path = directory / f"{token}.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            continue  # the last writer removed the directory just now: make it again
        except OSError as exc:
            raise StoreError(
                f"cannot create the lock file {path}: {exc.strerror or exc} "
                "(is the directory read-only?)"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # A sweeper may have locked and unlinked the file between our open and flock:
            # keep it only when the path still names the file we hold.
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                return fd, path, token
        except (BlockingIOError, FileNotFoundError):
            pass
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot lock {path}: {exc.strerror or exc}") from None
        os.close(fd)


def owner_alive(db: Path, token: str | None) -> bool:
    """Whether the writer ``token`` of ``db`` is alive; a dead one's lock file is removed.

    ``None`` (a run written before owners were recorded) belongs to an older tokentop,
    which held ``<db>.lock`` exclusively; the caller holds it shared, so that one is dead.
    """
    if token is None:
        return False
    if "/" in token or token.startswith("."):
        return False  # not a token of ours
    path = writers_dir(db) / f"{token}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False  # removed by its owner on close, or by another writer after its death
    except OSError:
        return True  # cannot tell: assume alive, never interrupt a live run
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return True
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while locked: its owner can never come back
        return False
    finally:
        os.close(fd)


def sweep_dead(db: Path, *, keep: str) -> None:
    """Remove lock files of dead writers of ``db`` (those that ended without runs left)."""
    directory = writers_dir(db)
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            name = entry.name
            if name.endswith(".lock") and name != f"{keep}.lock":
                owner_alive(db, name.removesuffix(".lock"))


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
