"""``tokentop compare``: a compare round (:class:`~tui.session.rounds.Round`) over the chosen
sessions, without the dashboard.

stderr gets one line when the round starts, one per finished run (``[3/9] quick #1:
completed, ttft 31 ms, ...``, or the failure's cause) and, on a terminal, the runs in
progress redrawn in place; ``quiet`` keeps only warnings and errors. The caller prints the
report (:class:`~tui.session.round_report.RoundReport`) when the round has ended; whatever
reaches stdout or stderr passes a :class:`~tui.session.redact.RedactingWriter`, so no
session's secret is ever printed.

SIGINT and SIGTERM cancel the round (the run in progress ends ``cancelled``, no other
starts) and the report of the runs so far is still printed; a second signal aborts the runs
at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

from tui.config import SessionConfig, StoreConfig
from tui.headless import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    _install_signals,
    progress_record,
)
from tui.headless.output import (
    Progress,
    failure_line,
    fmt_ms,
    fmt_ms_fine,
    fmt_rate,
    output_count,
    progress_line,
)
from tui.session import SessionRuntime
from tui.session.redact import RedactingWriter, Redactor, install_log_filter
from tui.session.round_plan import RoundEntry, RoundOrder
from tui.session.round_report import RoundReport
from tui.session.round_stats import Metric
from tui.session.rounds import Round

if TYPE_CHECKING:
    from tui.session import RunRecorder

__all__ = ["CompareOptions", "compare_headless", "compare_sessions"]

_REDRAW_EVERY_S = 0.2
_CANCEL_GRACE_S = 15.0
"""How long a cancelled round's runs may take to end before they are aborted."""


@dataclass(frozen=True, slots=True)
class CompareOptions:
    """What ``tokentop compare`` was asked to do (besides which sessions)."""

    count: int = 3
    """Runs per column."""
    order: RoundOrder = "interleaved"
    by: Metric = "ttft"
    """The metric of the ranking."""
    prompt: str | None = None
    """Sent to every column instead of each session's own prompt."""
    db_path: Path | None = None
    """Transcript database (None: :func:`tui.paths.default_db_path`)."""
    store: bool = True
    """Record the round and its runs."""
    retention: StoreConfig | None = None
    quiet: bool = False
    """No progress on stderr (warnings and errors still)."""


class _Printer:
    """Follows the round: a line per finished run, the runs in progress on a terminal."""

    def __init__(self, progress: Progress, quiet: bool) -> None:
        self.progress = progress
        self.quiet = quiet

    def round_started(self, round: Round) -> None:
        if not self.quiet:
            columns = ", ".join(round.sessions)
            self.progress.message(
                f"round {round.id}: {round.count} run(s) each of {columns} ({round.order})"
            )

    def round_run_started(self, round: Round, entry: RoundEntry) -> None:
        """Shown by the ticker."""

    def round_run_finished(self, round: Round, entry: RoundEntry) -> None:
        figures = entry.figures
        if figures is None or entry.run is None:
            return
        where = f"[{round.finished}/{round.total}] {entry.session} #{entry.index}"
        if figures.status == "failed":
            session = round.runtime.controller(entry.session).session
            line = failure_line(session, entry.run.accumulator.error)
            self.progress.message(
                f"[{round.finished}/{round.total}] {line} (run {entry.index} of {round.count})"
            )
            return
        if self.quiet:
            return
        count = output_count(
            {
                "output_tokens": figures.output_tokens,
                "tokens_estimated": figures.tokens_estimated,
                "tokens_source": figures.tokens_source,
            }
        )
        per = "chunks/s" if figures.tokens_source == "chunks" else "tok/s"
        self.progress.message(
            f"{where}: {figures.status} ({figures.finish_reason}): {count}, "
            f"ttft {fmt_ms(figures.ttft_ms)}, {fmt_rate(figures.tokens_per_s)} {per}, "
            f"tpot {fmt_ms_fine(figures.tpot_ms)}, {fmt_ms(figures.duration_ms)}"
        )

    def round_ended(self, round: Round) -> None:
        if round.status != "done":
            self.progress.message(
                f"round {round.id} {round.status}: {round.finished} of {round.total} runs ran"
            )

    async def ticker(self, round: Round) -> None:
        """The runs in progress, redrawn in place (a terminal only), until cancelled."""
        while True:
            await asyncio.sleep(_REDRAW_EVERY_S)
            controllers = round.runtime.controllers
            records = [
                progress_record(c, c.current)
                for c in controllers
                if c.current is not None and not c.current.done and c.name in round.sessions
            ]
            width = max((len(r["session"]) for r in records), default=0)
            self.progress.draw([progress_line(r, width) for r in records])


async def compare_sessions(
    sessions: Sequence[SessionConfig],
    options: CompareOptions,
    *,
    err: TextIO,
    interactive: bool | None = None,
    recorder: RunRecorder | None = None,
    handle_signals: bool = False,
) -> tuple[int, RoundReport | None]:
    """Run a round over ``sessions`` (printing progress as the module docstring says); the
    exit status and the report (None when the round could not start: exit 2).

    Exit status: 0 when every column had at least one successful run, 1 otherwise, 2 when
    the store cannot be opened. ``recorder`` replaces the store of ``options`` (tests).
    """
    if interactive is None:
        interactive = bool(getattr(err, "isatty", lambda: False)())
    progress = Progress(err, interactive and not options.quiet)
    warned: set[str] = set()

    def store_error(where: str, exc: BaseException) -> None:
        if not warned:  # recording stopped: the runs go on, the user is told once
            warned.add(where)
            progress.message(f"warning: the round is not saved ({where}: {exc})")

    runtime = SessionRuntime(
        sessions,
        on_store_error=store_error,
        on_warning=lambda message: progress.message(f"warning: {message}"),
    )
    for controller in runtime.controllers:
        controller.keep_raw = False  # no raw view here
    round = Round(
        runtime,
        [s.name for s in sessions],
        count=options.count,
        prompt=options.prompt,
        order=options.order,
    )
    if recorder is not None:
        runtime.use_store(recorder)
    elif options.store:
        from tui.paths import default_db_path

        try:
            await runtime.open_store(options.db_path or default_db_path(), options.retention)
        except Exception as exc:  # StoreError: a message fit to show as is
            progress.message(f"error: {exc} (use --db PATH, or --no-store to run without saving)")
            await runtime.close()
            return EXIT_BAD_INPUT, None
    await runtime.start()
    if runtime.sim_error is not None:
        progress.message(f"error: {runtime.sim_error}")
    printer = _Printer(progress, options.quiet)
    round.subscribe(printer)
    stopping: list[float] = []

    def interrupt() -> None:
        if stopping:  # the second signal: abort now
            stopping.append(0.0)
            return
        stopping.append(time.monotonic())
        progress.message("interrupted: cancelling the round (press Ctrl-C again to abort)")
        round.cancel()

    installed = _install_signals(interrupt) if handle_signals else []
    ticker = asyncio.create_task(printer.ticker(round)) if progress.interactive else None
    task = round.start()
    try:
        while not task.done():
            await asyncio.wait([task], timeout=0.1)
            late = stopping and time.monotonic() - stopping[0] > _CANCEL_GRACE_S
            if not task.done() and (len(stopping) > 1 or late):
                await runtime.abort_all()
                await asyncio.wait([task])
    finally:
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        progress.clear()
        loop = asyncio.get_running_loop()
        for signum in installed:
            loop.remove_signal_handler(signum)
        await runtime.close(grace_s=0)
    report = RoundReport.of_round(round, options.by)
    return (EXIT_OK if report.every_column_succeeded else EXIT_FAILED), report


def compare_headless(
    sessions: Sequence[SessionConfig],
    options: CompareOptions,
    render: Callable[[RoundReport], str],
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``tokentop compare``: the round on a new event loop, with Ctrl-C handling, then
    ``render(report)`` on stdout; the exit status (see :func:`compare_sessions`)."""
    out = out or sys.stdout
    err = err or sys.stderr
    interactive = bool(getattr(err, "isatty", lambda: False)())
    redactor = Redactor.for_sessions(sessions)
    uninstall = install_log_filter(redactor) if redactor else None
    if redactor:
        out = cast(TextIO, RedactingWriter(out, redactor))
        err = cast(TextIO, RedactingWriter(err, redactor))
    try:
        status, report = asyncio.run(
            compare_sessions(
                sessions, options, err=err, interactive=interactive, handle_signals=True
            )
        )
        if report is not None:
            with contextlib.suppress(OSError, ValueError):
                out.write(render(report) + "\n")
                out.flush()
        return status
    except KeyboardInterrupt:  # before the round started (the handler comes with it)
        with contextlib.suppress(OSError, ValueError):
            err.write("interrupted before the round started\n")
        return EXIT_FAILED
    finally:
        if uninstall is not None:
            uninstall()
