"""The simulator in a child process: what ``base_url = "sim"`` sessions talk to.

In-process (:class:`tui.sim.server.Simulator`, a thread) the simulator's CPU and GIL time are
charged to the measurements it serves; in a child process they are not. The parent side
lives here, the child side in :mod:`tui.sim.child`:

- The parent runs ``python -P -m tui.sim --host H --port P --seed S --parent-pid PID`` from
  one long-lived thread (see :class:`_Spawner`), in a new session, so that a Ctrl-C on the
  terminal reaches only the parent.
- The child binds ``host:port`` (port 0: a free one), and once it accepts connections
  prints its base URL as the first line of stdout; then stdout goes to ``/dev/null`` (the
  dashboard draws on the terminal). A parent thread drains stderr into a short tail, shown
  when the child fails to start, so a full pipe never blocks the child.
- The child dies with the parent, also after a ``kill -9``: ``PR_SET_PDEATHSIG`` (Linux) and,
  everywhere, EOF on its stdin (the parent holds the only write end; the kernel closes it
  when the parent dies). An ``atexit`` hook stops the children on a normal exit.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import selectors
import signal
import site
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from queue import SimpleQueue
from types import TracebackType
from typing import IO

__all__ = [
    "START_TIMEOUT_S",
    "SimulatorProcess",
    "shared_simulator",
    "stop_shared_simulator",
]

START_TIMEOUT_S = 30.0
"""How long :meth:`SimulatorProcess.start` waits for the child's base URL (generous: a fresh
interpreter importing uvicorn and Starlette on a loaded machine)."""

STOP_GRACE_S = 5.0
"""How long :meth:`SimulatorProcess.stop` waits after SIGTERM before SIGKILL."""

_TAIL_LINES = 20
_PACKAGE_ROOT = os.path.realpath(Path(__file__).resolve().parents[2])


# -- the parent side ---------------------------------------------------------------------------


class _Spawner:
    """Forks child processes from one long-lived daemon thread.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child ends, not the process;
    callers start the simulator from ``asyncio.to_thread`` and other short-lived threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._requests: SimpleQueue[
            tuple[Callable[[], subprocess.Popen[bytes]], Future[subprocess.Popen[bytes]]]
        ] = SimpleQueue()

    def popen(self, make: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        """Run ``make`` (which starts the process) on the spawner thread; its result."""
        future: Future[subprocess.Popen[bytes]] = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # also after os.fork()
                self._requests = SimpleQueue()
                self._thread = threading.Thread(
                    target=self._serve,
                    args=(self._requests,),
                    name="tokentop-sim-spawner",
                    daemon=True,
                )
                self._thread.start()
            self._requests.put((make, future))
        return future.result()

    @staticmethod
    def _serve(
        requests: SimpleQueue[
            tuple[Callable[[], subprocess.Popen[bytes]], Future[subprocess.Popen[bytes]]]
        ],
    ) -> None:
        while True:
            make, future = requests.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(make())
            except BaseException as exc:  # the caller re-raises it
                future.set_exception(exc)


_spawner = _Spawner()


class _StderrTail:
    """Drains a child's stderr on a daemon thread, keeping its last lines."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._thread = threading.Thread(
            target=self._drain, args=(stream,), name="tokentop-sim-stderr", daemon=True
        )
        self._thread.start()

    def _drain(self, stream: IO[bytes]) -> None:
        with stream:
            for raw in stream:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    self._lines.append(line)

    def lines(self, wait_s: float = 0.0) -> list[str]:
        """The last lines so far (after waiting up to ``wait_s`` for EOF)."""
        self._thread.join(wait_s)
        return list(self._lines)


class SimulatorProcess:
    """The simulator in a child process on a free loopback port (``port=0``: chosen by the
    child). Usable from any thread (:meth:`start` blocks: call it with
    ``asyncio.to_thread`` from async code) and as a context manager.

    The child dies with this process however it ends (see the module docstring).
    """

    def __init__(
        self,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        start_timeout: float = START_TIMEOUT_S,
    ) -> None:
        self.seed = seed
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: _StderrTail | None = None
        self._base_url: str | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """The base URL, ``http://HOST:PORT/v1`` (RuntimeError when not started)."""
        if self._base_url is None:
            raise RuntimeError("the simulator process is not running")
        return self._base_url

    @property
    def pid(self) -> int | None:
        """The child's process id while started, else None."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the child was started and has not exited."""
        proc = self._proc
        return proc is not None and self._base_url is not None and proc.poll() is None

    def start(self) -> str:
        """Start the child and return its base URL once it accepts connections (while
        started, the same URL at once; a child that died is not restarted: :meth:`stop`, then
        :meth:`start`).

        Raises RuntimeError with the child's reason when it exits or stays silent for
        ``start_timeout`` seconds (the child is then killed), OSError when it cannot be run.
        """
        with self._lock:
            if self._base_url is not None:
                return self._base_url
            proc = _spawner.popen(self._popen)
            stderr = _StderrTail(_pipe(proc.stderr))
            try:
                line = _read_first_line(proc, self.start_timeout)
            except BaseException:
                _reap(proc, grace_s=0.0)
                raise
            if line is None:
                reason = f"did not report its address within {self.start_timeout:g} s"
            elif not line:  # stdout closed: the child is exiting
                reason = ""
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(STOP_GRACE_S)
            elif not (line.startswith("http://") and line.endswith("/v1")):
                reason = f"printed {line!r} instead of its address"
            else:
                self._proc, self._stderr, self._base_url = proc, stderr, line
                self.port = int(line.rsplit(":", 1)[1].split("/", 1)[0])
                _running.add(self)
                return line
            _reap(proc, grace_s=0.0)
            raise _start_error(proc.returncode, stderr.lines(wait_s=2.0), reason)

    def _popen(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self._command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_child_env(),
            start_new_session=True,
        )

    def _command(self) -> list[str]:
        if not sys.executable:
            raise OSError("no Python interpreter to run the simulator with (sys.executable)")
        return [
            sys.executable,
            "-P",  # no current directory on sys.path: a local "tui" folder must not shadow
            "-m",
            "tui.sim",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--seed",
            str(self.seed),
            "--parent-pid",
            str(os.getpid()),
        ]

    def stop(self) -> None:
        """Stop the child (idempotent): EOF on its stdin and SIGTERM (open streams are cut),
        SIGKILL after :data:`STOP_GRACE_S`; the process is reaped."""
        with self._lock:
            proc, stderr = self._proc, self._stderr
            self._proc = self._stderr = None
            self._base_url = None
            _running.discard(self)
        if proc is not None:
            _reap(proc, grace_s=STOP_GRACE_S)
        if stderr is not None:
            stderr.lines(wait_s=1.0)

    def __enter__(self) -> SimulatorProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _child_env() -> dict[str, str]:
    """This process's environment, with the directory of the ``tui`` package on PYTHONPATH
    when it is not a site directory (run from a checkout): the child imports the same ``tui``.
    A site directory is left out: on PYTHONPATH it would come before the standard library."""
    env = dict(os.environ)
    site_dirs = {os.path.realpath(d) for d in (*site.getsitepackages(), site.getusersitepackages())}
    if _PACKAGE_ROOT not in site_dirs:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p
        )
    return env


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    assert stream is not None  # Popen(..., PIPE) always makes one
    return stream


def _read_first_line(proc: subprocess.Popen[bytes], timeout: float) -> str | None:
    """The first line the child prints on stdout, ``""`` when stdout ends first, None when
    nothing comes within ``timeout`` seconds."""
    stdout = _pipe(proc.stdout)
    fd = stdout.fileno()
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not selector.select(min(remaining, 0.5)):
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                return ""
            buffer += chunk
    return buffer.split(b"\n", 1)[0].decode("utf-8", "replace").strip()


def _start_error(code: int | None, stderr: list[str], reason: str) -> RuntimeError:
    """Why the child did not start, in one line: its last stderr line and how it ended (the
    whole stderr tail is added as a note)."""
    if reason:
        message = f"the simulator process {reason}"
        if stderr:
            message += f": {stderr[-1]}"
    else:
        if code is not None and code < 0:
            ended = f"the simulator process was killed by {signal.Signals(-code).name}"
        else:
            ended = f"the simulator process exited with code {code}"
        message = f"{stderr[-1]} ({ended})" if stderr else ended
    exc = RuntimeError(message)
    if stderr:
        exc.add_note("\n".join(stderr))
    return exc


def _reap(proc: subprocess.Popen[bytes], *, grace_s: float) -> None:
    """Close the child's stdin (its EOF), SIGTERM it, SIGKILL after ``grace_s``, wait."""
    with contextlib.suppress(OSError):
        _pipe(proc.stdin).close()
    if grace_s > 0:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace_s)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    with contextlib.suppress(OSError):
        _pipe(proc.stdout).close()


_running: set[SimulatorProcess] = set()


def _stop_running() -> None:
    for sim in list(_running):
        sim.stop()


atexit.register(_stop_running)

_shared: SimulatorProcess | None = None
_shared_lock = threading.Lock()


def shared_simulator() -> str:
    """The base URL of this process's simulator child, started on first use (thread-safe;
    it blocks, so async callers use ``asyncio.to_thread``). Later calls return the same URL
    while the child lives; a child that died is replaced (on a new port).

    Raises what :meth:`SimulatorProcess.start` raises; the next call tries again.
    """
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.running:
            if _shared is not None:
                _shared.stop()  # reap the dead one
                _shared = None
            sim = SimulatorProcess()
            sim.start()
            _shared = sim
        return _shared.base_url


def stop_shared_simulator() -> None:
    """Stop the shared child if it was started (idempotent; the next use starts a new one)."""
    global _shared
    with _shared_lock:
        sim, _shared = _shared, None
    if sim is not None:
        sim.stop()


def _forget_after_fork() -> None:
    # A forked copy of this process owns none of these children (os.fork with threads).
    global _shared, _shared_lock, _spawner
    _shared, _shared_lock, _spawner = None, threading.Lock(), _Spawner()
    _running.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
