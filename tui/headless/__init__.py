"""``tokentop run``: every selected session streamed concurrently, without the dashboard.

Every run is a turn of a conversation: a session runs its conversation (its ``turns`` one
after another, else its one prompt; with ``repeat``, the conversation again, each time a new
one), and a turn that is not kept (failed, cancelled) ends the conversation there.

stderr gets live progress (on a terminal, one line per running session redrawn in place;
otherwise one line per running session per second), one line per finished run (turn) and,
for a conversation of several turns, one line when it ended. stdout gets a summary table at
the end (with a ``turn`` column and a table of the conversations when one had several
turns), or with ``--jsonl`` one JSON object per line: ``progress`` records about once a
second per running session, exactly one ``result`` record per finished run (with its
``conversation_id`` and ``turn``), one ``conversation`` record per conversation after its
last turn's result (turns done and planned, input and output tokens, duration, how it ended,
the history mode and whether it fell back to the items), and one ``alert`` record per alert
(a threshold of the session's ``alerts`` crossed; see :mod:`tui.session.alerts`), just
after the result of its run. Every alert is also a line on stderr (as failures are), and
when any session has alert rules the end says how many fired (after the table; on stderr
with ``--jsonl``).

Exit status: 0 when no run failed (``completed``, ``incomplete`` and ``cancelled`` runs are not
failures: a run the user stopped did not fail), 1 when any run failed or a conversation
stopped before its last turn, 2 for bad input (a broken sessions file or bad arguments,
handled by the CLI, or a store that cannot be opened).
SIGINT and SIGTERM cancel every run cleanly (each ends with ``Finished(cancelled)``) and the
results so far are still printed; a second signal aborts the remaining runs at once (exit 1).

The runs belong to the session layer (:class:`~tui.session.SessionRuntime`, one
:class:`~tui.session.SessionController` per session); this face adds a printer that follows
every session, the signal handling and the exit status. Formatting: :mod:`tui.headless.output`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

from tui.config import AppConfig, SessionConfig, StoreConfig
from tui.config.select import chosen
from tui.headless.output import (
    Progress,
    alerts_summary,
    conversations_table,
    summary_notes,
    summary_table,
)
from tui.headless.printer import RunPrinter, progress_record
from tui.session import SessionRuntime
from tui.session.alerts import has_rules
from tui.session.redact import RedactingWriter, Redactor, install_log_filter

if TYPE_CHECKING:
    from tui.session import RunRecorder

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_OK",
    "RunOptions",
    "progress_record",
    "run_headless",
    "run_sessions",
    "select_sessions",
]

_Printer = RunPrinter
"""The printer every run of :func:`run_sessions` uses (tests patch its methods here)."""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

_CANCEL_GRACE_S = 15.0
"""How long cancelled runs may take to end (a background cancel is one more request)."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What ``tokentop run`` was asked to do (besides which sessions)."""

    jsonl: bool = False
    """JSON lines on stdout instead of the summary table."""
    prompt: str | None = None
    """Overrides every session's prompt."""
    db_path: Path | None = None
    """Transcript database (None: :func:`tui.paths.default_db_path`)."""
    store: bool = True
    """Write every run to the transcript database."""
    metrics_addr: str | None = None
    """Serve Prometheus ``/metrics`` on this ``host:port`` while the sessions run."""
    retention: StoreConfig | None = None
    """What the store keeps (the sessions file's ``[store]``; None: the defaults)."""


def select_sessions(config: AppConfig, only: Sequence[str]) -> tuple[SessionConfig, ...]:
    """The sessions ``only`` chooses (all when empty), in file order: each pattern is a name,
    a name in any case, a glob or a part of a name (:func:`tui.config.select.matching`).

    KeyError (with a message listing the session names) when a pattern chooses none.
    """
    if not only:
        return config.sessions
    names = [s.name for s in config.sessions]
    picked, unmatched = chosen(names, only)
    if unmatched:
        listed = ", ".join(map(repr, names))
        raise KeyError(
            f"no session matches {', '.join(map(repr, unmatched))} "
            f"(a name, part of one, or a glob like '*chat*'; sessions: {listed})"
        )
    wanted = set(picked)
    return tuple(s for s in config.sessions if s.name in wanted)


# --- the runs ----------------------------------------------------------------------------------


class _Stopper:
    """Signals: the first cancels every run cleanly, the second aborts."""

    def __init__(self, runtime: SessionRuntime, progress: Progress) -> None:
        self.runtime = runtime
        self.progress = progress
        self.stop_started: float | None = None
        self.aborted = False

    def interrupt(self) -> None:
        if self.stop_started is not None:
            self.aborted = True
            return
        self.stop_started = time.monotonic()
        running = sum(1 for c in self.runtime.controllers if c.current and not c.current.done)
        self.progress.message(
            f"interrupted: cancelling {running} run(s) (press Ctrl-C again to abort)"
        )
        self.runtime.cancel_all()

    def must_abort(self) -> bool:
        """A second signal came, or the cancelled runs have had their time to end."""
        started = self.stop_started
        return self.aborted or (
            started is not None and time.monotonic() - started > _CANCEL_GRACE_S
        )


async def _drive(runtime: SessionRuntime, stopper: _Stopper) -> int:
    """Until every session's runs ended, or an abort; how many runs did not finish."""
    # one wait for every session (not a new one per tick: a tick is 0.1 s, sessions may be
    # a thousand); the tick only checks whether the stop's grace is over
    idle = asyncio.ensure_future(runtime.wait_idle())
    try:
        while not idle.done():
            await asyncio.wait({idle}, timeout=0.1)
            if not idle.done() and stopper.must_abort():
                unfinished = sum(1 for c in runtime.live if c.current and not c.current.done)
                await runtime.abort_all()
                stopper.aborted = True
                return unfinished
        return 0
    finally:
        idle.cancel()


def _install_signals(handler: Callable[[], None]) -> list[signal.Signals]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, handler)
            installed.append(signum)
    return installed


async def run_sessions(
    sessions: Sequence[SessionConfig],
    options: RunOptions,
    *,
    out: TextIO,
    err: TextIO,
    interactive: bool | None = None,
    recorder: RunRecorder | None = None,
    handle_signals: bool = False,
) -> int:
    """Run ``sessions`` concurrently and print as described in the module docstring.

    ``recorder`` replaces the store of ``options`` (tests); ``interactive`` forces the
    terminal progress mode on or off (default: whether ``err`` is a terminal).
    """
    if interactive is None:
        interactive = bool(getattr(err, "isatty", lambda: False)())
    # The runs' events are redacted by their controllers; whatever else reaches stdout,
    # stderr or a log (an exception's text, a store message) passes this last filter.
    redactor = Redactor.for_sessions(sessions)
    if not redactor:
        return await _run_sessions(
            sessions, options, out, err, interactive, recorder, handle_signals
        )
    uninstall = install_log_filter(redactor)
    try:
        return await _run_sessions(
            sessions,
            options,
            cast(TextIO, RedactingWriter(out, redactor)),
            cast(TextIO, RedactingWriter(err, redactor)),
            interactive,
            recorder,
            handle_signals,
        )
    finally:
        uninstall()


async def _run_sessions(
    sessions: Sequence[SessionConfig],
    options: RunOptions,
    out: TextIO,
    err: TextIO,
    interactive: bool,
    recorder: RunRecorder | None,
    handle_signals: bool,
) -> int:
    progress = Progress(err, interactive)
    warned: set[str] = set()

    def store_error(where: str, exc: BaseException) -> None:
        # a write error (disk full, ...) stops recording; the streams go on and the user is
        # told once
        if not warned:
            warned.add(where)
            progress.message(f"warning: runs are not saved ({where}: {exc})")

    runtime = SessionRuntime(
        sessions,
        on_store_error=store_error,
        on_warning=lambda message: progress.message(f"warning: {message}"),
    )
    for controller in runtime.controllers:
        controller.keep_raw = False  # no raw view here: no run holds its raw events
    if options.metrics_addr is not None:
        try:
            server = runtime.serve_metrics(options.metrics_addr)
        except (ValueError, OSError) as exc:  # a bad address, a port in use: a sentence
            progress.message(f"error: {exc}")
            return EXIT_BAD_INPUT
        progress.message(f"metrics: {server.url}")
    if recorder is not None:
        runtime.use_store(recorder)
    elif options.store:
        from tui.paths import default_db_path

        try:
            await runtime.open_store(options.db_path or default_db_path(), options.retention)
        except Exception as exc:  # StoreError: a message fit to show as is
            progress.message(f"error: {exc} (use --db PATH, or --no-store to run without saving)")
            await runtime.close()
            return EXIT_BAD_INPUT
    await runtime.start()
    if runtime.sim_error is not None:
        progress.message(f"error: {runtime.sim_error}")
    printer = RunPrinter(out, progress, jsonl=options.jsonl)
    runtime.alerts.add_sink(printer.alert)
    stopper = _Stopper(runtime, progress)
    for controller in runtime.controllers:
        controller.subscribe(printer)
        controller.on_conversation(printer.conversation)
        controller.start(options.prompt)
    installed = _install_signals(stopper.interrupt) if handle_signals else []
    ticker = asyncio.create_task(printer.ticker(runtime))
    try:
        unfinished = await _drive(runtime, stopper)
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        progress.clear()
        loop = asyncio.get_running_loop()
        for signum in installed:
            loop.remove_signal_handler(signum)
        await runtime.close(grace_s=0)
    if stopper.aborted:
        progress.message(f"aborted: {unfinished} run(s) did not finish")
    alerting = runtime.alerts.total or any(has_rules(s.alerts) for s in sessions)
    if not options.jsonl:
        with contextlib.suppress(OSError, ValueError):
            # in the sessions' order (runs of one session in start order)
            order = {s.name: i for i, s in enumerate(sessions)}
            results = sorted(printer.results, key=lambda r: order.get(r["session"], len(order)))
            several = printer.several_turns
            out.write(summary_table(results, turns=several) + "\n" if results else "no runs\n")
            if several and printer.conversations:
                talks = sorted(printer.conversations, key=lambda o: order.get(o.session, 0))
                out.write("\n" + conversations_table(talks) + "\n")
            if alerting:
                out.write(alerts_summary(runtime.alerts.total) + "\n")
            out.flush()
    elif alerting:
        progress.message(alerts_summary(runtime.alerts.total))
    for note in summary_notes(printer.results):
        progress.message(note)
    failed = any(r["status"] == "failed" for r in printer.results)
    stopped = any(o.ended == "stopped" for o in printer.conversations)
    return EXIT_FAILED if failed or stopped or stopper.aborted else EXIT_OK


def run_headless(
    sessions: Sequence[SessionConfig],
    options: RunOptions,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``tokentop run``: run the sessions on a new event loop, with Ctrl-C handling."""
    err = err or sys.stderr
    try:
        return asyncio.run(
            run_sessions(sessions, options, out=out or sys.stdout, err=err, handle_signals=True)
        )
    except KeyboardInterrupt:
        # Ctrl-C before the runs started (our handler is installed once they start)
        with contextlib.suppress(OSError, ValueError):
            err.write("interrupted before any run started\n")
        return EXIT_OK
