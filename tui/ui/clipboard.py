"""Copying text out of the dashboard, and saying where it went.

Outside tmux, :meth:`textual.app.App.copy_to_clipboard` (an OSC 52 sequence) reaches the
terminal's clipboard. Inside tmux, OSC 52 from an application is dropped unless tmux has
``set-clipboard on``, so the text also goes into tmux's paste buffer (:func:`copy_to_tmux`:
``tmux load-buffer -w -``; ``-w`` also forwards it to the system clipboard when tmux is
allowed to), and the message says which of the two got it, and how to get the other. The
tmux commands run as subprocesses bounded by :data:`TMUX_TIMEOUT_S`, so a stuck tmux never
holds the dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

TMUX_TIMEOUT_S = 2.0
"""How long each tmux command may take before it is killed."""

Severity = Literal["information", "warning", "error"]


@dataclass(frozen=True, slots=True)
class TmuxResult:
    """What a tmux command did: its exit status and output (``problem`` when it failed)."""

    ok: bool
    output: str = ""
    problem: str | None = None


async def run_tmux(
    tmux: str, *args: str, stdin: bytes | None = None, timeout_s: float | None = None
) -> TmuxResult:
    """Run ``tmux args...`` (``stdin`` fed to it) within ``timeout_s`` seconds (default
    :data:`TMUX_TIMEOUT_S`); a failure is a :class:`TmuxResult` with a one-line problem."""
    limit = TMUX_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        process = await asyncio.create_subprocess_exec(
            tmux,
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: a kill reaches its children
        )
    except OSError as exc:
        return TmuxResult(False, problem=f"cannot run {tmux}: {exc.strerror or exc}")
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout=limit)
    except TimeoutError:
        _kill_group(process.pid)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), timeout=limit)
        return TmuxResult(False, problem=f"tmux {args[0]} took over {limit:g} s")
    if process.returncode != 0:
        reason = err.decode(errors="replace").strip().splitlines()
        why = reason[0] if reason else f"exit status {process.returncode}"
        return TmuxResult(False, problem=f"tmux {args[0]}: {why}")
    return TmuxResult(True, out.decode(errors="replace").strip())


def _kill_group(pid: int) -> None:
    """Kill the process group ``pid`` leads (a child holding the pipes would keep the
    process's end from being seen)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def tmux_copy(text: str, tmux: str) -> tuple[TmuxResult, str | None]:
    """Put ``text`` into tmux's paste buffer; with it, tmux's ``set-clipboard`` option
    (``on``, ``external``, ``off``; None when it could not be read)."""
    data = text.encode()
    loaded = await run_tmux(tmux, "load-buffer", "-w", "-", stdin=data)
    if not loaded.ok:  # tmux before 3.2 has no -w: the buffer alone, then
        plain = await run_tmux(tmux, "load-buffer", "-", stdin=data)
        if plain.ok:
            loaded = plain
    if not loaded.ok:
        return loaded, None
    option = await run_tmux(tmux, "show", "-gv", "set-clipboard")
    return loaded, option.output if option.ok and option.output else None


def under_tmux(environ: Mapping[str, str] | None = None) -> bool:
    """True inside a tmux session (``$TMUX`` is set)."""
    return bool((os.environ if environ is None else environ).get("TMUX"))


async def copy_to_tmux(
    text: str, what: str, environ: Mapping[str, str] | None = None
) -> tuple[str, Severity]:
    """Put ``text`` into tmux's buffer (:func:`tmux_copy`; the caller has sent it by OSC 52
    already) and return the sentence that says where it went, and its severity. ``what``
    names the text (``1,234 characters of poem``)."""
    env = os.environ if environ is None else environ
    tmux = shutil.which("tmux", path=env.get("PATH"))
    if tmux is None:
        return (
            f"Copied {what} by OSC 52, which tmux drops unless it has set -g set-clipboard on"
            " (no tmux command on PATH for its buffer).",
            "warning",
        )
    loaded, set_clipboard = await tmux_copy(text, tmux)
    if not loaded.ok:
        return (
            f"Copied {what} by OSC 52, which tmux drops unless it has set -g set-clipboard on;"
            f" tmux's buffer failed ({loaded.problem}).",
            "warning",
        )
    if set_clipboard in ("on", "external"):
        return (
            f"Copied {what} into tmux's buffer (prefix ] pastes) and the system clipboard.",
            "information",
        )
    return (
        f"Copied {what} into tmux's buffer (prefix ] pastes); for the system clipboard:"
        " set -g set-clipboard on",
        "information",
    )
