"""The child side of :mod:`tui.sim.process`: serve, report the base URL, die with the parent.

``python -m tui.sim`` runs :func:`run_child`. The child notices its parent's death two ways:
``PR_SET_PDEATHSIG`` (Linux) and, everywhere, EOF on its stdin, whose only write end the
parent holds (the kernel closes it when the parent dies, also after a ``kill -9``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

WATCH_ENV = "TOKENTOP_SIM_PARENT_WATCH"
"""For tests: ``pipe`` or ``pdeathsig`` keeps only that way of noticing the parent's death
(unset: both)."""

_HARD_EXIT_S = 5.0
"""After its stdin reaches EOF, the child exits hard if the graceful shutdown takes longer."""

_PR_SET_PDEATHSIG = 1


def run_child(argv: Sequence[str]) -> int:
    """The child's entry (``python -m tui.sim``): serve until SIGTERM or the parent's death.

    Returns the exit status (1 with one line on stderr when the address cannot be bound).
    """
    parser = argparse.ArgumentParser(prog="python -m tui.sim")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)
    watch = os.environ.get(WATCH_ENV, "")
    if watch != "pipe":
        _die_with_parent()
    if watch != "pdeathsig":
        _watch_stdin()
    if os.getppid() != args.parent_pid:  # the parent died before we were watching
        return 0

    from tui.sim.server import serve  # the heavy imports (uvicorn, Starlette) happen here

    started = False

    def report(base_url: str) -> None:
        nonlocal started
        started = True
        sys.stdout.write(base_url + "\n")
        sys.stdout.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing else for the parent's terminal
        os.close(devnull)

    try:
        serve(args.host, args.port, seed=args.seed, on_started=report)
    except OSError as exc:
        if started:
            raise
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM when the parent (thread) dies."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the stdin watch still covers it
        pass


def _watch_stdin() -> None:
    """Everywhere: shut down when stdin reaches EOF (the parent closed it or died)."""

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown (or the default)
        time.sleep(_HARD_EXIT_S)
        os._exit(1)

    threading.Thread(target=watch, name="tokentop-sim-parent-watch", daemon=True).start()
