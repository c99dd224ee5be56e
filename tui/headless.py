"""``tokentop run``: every selected session streamed concurrently, without the dashboard.

stderr gets live progress (on a terminal, one line per running session redrawn in place;
otherwise one line per running session per second) and one line per finished run. stdout gets
a summary table at the end, or with ``--jsonl`` one JSON object per line: ``progress`` records
about once a second per running session and exactly one ``result`` record per finished run.

Exit status: 0 when no run failed (``completed``, ``incomplete`` and ``cancelled`` runs are not
failures: a run the user stopped did not fail), 1 when any run failed, 2 for bad input (a
broken sessions file or bad arguments, handled by the CLI, or a store that cannot be opened).
SIGINT and SIGTERM cancel every run cleanly (each ends with ``Finished(cancelled)``) and the
results so far are still printed; a second signal aborts the remaining runs at once (exit 1).

Headless: never imports Textual or Rich.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from tui.config import AppConfig, SessionConfig
from tui.stream.events import (
    Connecting,
    Finished,
    ReasoningDelta,
    Resumed,
    Retrying,
    RunError,
    RunEvent,
    Started,
    TextDelta,
    ToolCallDelta,
    new_run_id,
)

if TYPE_CHECKING:
    import httpx

    from tui.stream.accumulate import RunAccumulator
    from tui.stream.runner import StreamRun

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

_PROGRESS_EVERY_S = 1.0
"""Progress records (``--jsonl``) and plain progress lines: once a second per running run."""
_REDRAW_EVERY_S = 0.2
"""Redraw interval of the in-place progress block on a terminal."""
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


class RunRecorder(Protocol):
    """Where finished and running runs are kept (the transcript store)."""

    async def start_run(
        self,
        session: SessionConfig,
        *,
        prompt: str,
        run_id: str,
        accumulator: RunAccumulator | None = None,
    ) -> str:
        """Record a new run (the session's settings as used, without secrets); it reads the
        run's state from ``accumulator``, which the runner feeds before recording events."""
        ...

    def add_events(self, run_id: str, events: Sequence[RunEvent]) -> None:
        """Record events of a run, in order (cheap: queued and written in batches)."""
        ...

    async def flush(self) -> None:
        """Write everything queued so far."""
        ...

    async def close(self) -> None:
        """Write everything queued and close."""
        ...


def select_sessions(config: AppConfig, only: Sequence[str]) -> tuple[SessionConfig, ...]:
    """The sessions named by ``only`` (all when empty), in file order.

    KeyError (with a message listing the known names) when a name is not in the config.
    """
    if not only:
        return config.sessions
    known = {s.name for s in config.sessions}
    unknown = [name for name in only if name not in known]
    if unknown:
        names = ", ".join(repr(s.name) for s in config.sessions)
        raise KeyError(f"no session named {', '.join(map(repr, unknown))} (sessions: {names})")
    wanted = set(only)
    return tuple(s for s in config.sessions if s.name in wanted)


def failure_line(session: SessionConfig, error: RunError | None) -> str:
    """``[name] failed: cause`` with a hint for authentication failures (never a key)."""
    message = error.message if error is not None else "unknown error"
    if error is not None and error.http_status and str(error.http_status) not in message:
        message = f"HTTP {error.http_status}: {message}"
    if error is not None and error.kind == "auth":
        if session.api_key_env and session.api_key_env not in message:
            message += f" — check {session.api_key_env}"
        elif not session.api_key_env:
            message += " — the server wants a key: set api_key_env in the session"
    return f"[{session.name}] failed: {message}"


# --- formatting ------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _tokens(count: int | None, estimated: bool) -> str:
    if count is None:
        return "-"
    return f"~{count}" if estimated else str(count)


def _count(attempts: object) -> str:
    """The attempt count of a result record."""
    return "-" if attempts is None else str(attempts)


def summary_table(results: Sequence[dict[str, Any]]) -> str:
    """The end-of-run table: one row per run."""
    header = ("session", "model", "status", "finish", "tokens", "ttft", "tok/s", "attempts")
    rows = [
        (
            str(r["session"]),
            str(r["model"]),
            str(r["status"]),
            str(r["finish_reason"] or "-"),
            _tokens(r.get("output_tokens"), bool(r.get("tokens_estimated"))),
            _ms(r.get("ttft_ms")),
            _rate(r.get("tokens_per_s")),
            _count(r.get("attempts")),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = {4, 5, 6, 7}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


# --- live state of one run ---------------------------------------------------------------------


@dataclass(slots=True)
class _LiveRun:
    """A run in flight: its stream, its accumulator and a short phase for progress."""

    session: SessionConfig
    run_id: str
    stream: StreamRun
    accumulator: RunAccumulator
    started: float
    phase: str = "connecting"

    def observe(self, event: RunEvent) -> None:
        """Update the phase shown in progress lines."""
        if isinstance(event, Connecting):
            self.phase = "connecting" if event.attempt == 1 else f"attempt {event.attempt}"
        elif isinstance(event, Started):
            self.phase = "waiting"
        elif isinstance(event, TextDelta):
            self.phase = "streaming"
        elif isinstance(event, ReasoningDelta):
            self.phase = "reasoning"
        elif isinstance(event, ToolCallDelta):
            self.phase = "tool call"
        elif isinstance(event, Retrying):
            self.phase = f"retry {event.attempt}/{event.max_retries} in {event.delay_s:.1f}s"
        elif isinstance(event, Resumed):
            self.phase = "resumed"
        elif isinstance(event, Finished):
            self.phase = event.status

    def progress(self) -> dict[str, Any]:
        """The ``--jsonl`` progress record."""
        snap = self.accumulator.metrics()
        return {
            "type": "progress",
            "session": self.session.name,
            "run_id": self.run_id,
            "phase": self.phase,
            "attempts": len(self.accumulator.attempts),
            "output_tokens": snap.output_tokens,
            "tokens_estimated": snap.tokens_estimated,
            "tokens_per_s": snap.rolling_tokens_per_s,
            "ttft_ms": snap.ttft_ms,
            "elapsed_s": round(time.monotonic() - self.started, 3),
        }

    def line(self, name_width: int) -> str:
        """One compact progress line."""
        p = self.progress()
        ttft = "-" if p["ttft_ms"] is None else f"{p['ttft_ms']:.0f}ms"
        return (
            f"{self.session.name:<{name_width}}  {self.phase:<17} "
            f"{_tokens(p['output_tokens'], p['tokens_estimated']):>5} tok "
            f"{_rate(p['tokens_per_s']):>6} tok/s  ttft {ttft:>6}  {p['elapsed_s']:.1f}s"
        )


class _Progress:
    """stderr output: a block of lines redrawn in place on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO, interactive: bool) -> None:
        self.stream = stream
        self.interactive = interactive
        self._drawn = 0

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stream.write(text)
            self.stream.flush()

    def clear(self) -> None:
        """Remove the live block (terminal only)."""
        if self._drawn:
            # to the start of the block's first line, then clear to the end of the screen
            self._write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def message(self, text: str) -> None:
        """A line that stays (a run finished, a warning)."""
        self.clear()
        self._write(text + "\n")

    def draw(self, lines: list[str]) -> None:
        """Show the current progress lines."""
        if not self.interactive:
            for text in lines:
                self._write(text + "\n")
            return
        width = max(20, shutil.get_terminal_size().columns - 1)
        self.clear()
        if lines:
            # never let a line wrap: the cursor arithmetic counts one row per line
            self._write("".join(text[:width] + "\n" for text in lines))
        self._drawn = len(lines)


# --- the runner of many sessions ---------------------------------------------------------------


@dataclass
class _Batch:
    """All sessions of one ``tokentop run``."""

    sessions: tuple[SessionConfig, ...]
    options: RunOptions
    out: TextIO
    progress: _Progress
    client: httpx.AsyncClient
    sim_url: str | None
    recorder: RunRecorder | None
    results: list[dict[str, Any]] = field(default_factory=list)
    live: dict[str, _LiveRun] = field(default_factory=dict)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    aborted: bool = False
    stop_started: float | None = None
    """When the first signal arrived (cancelled runs get a grace period to end)."""
    recorder_failed: bool = False

    def emit(self, record: dict[str, Any]) -> None:
        """One JSON line on stdout."""
        with contextlib.suppress(OSError, ValueError):
            self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.out.flush()

    def interrupt(self) -> None:
        """First signal: cancel every run cleanly. Second: abort (see :meth:`run`)."""
        if self.stopping.is_set():
            self.aborted = True
            return
        self.stopping.set()
        self.stop_started = time.monotonic()
        self.progress.message(
            f"interrupted: cancelling {len(self.live)} run(s) (press Ctrl-C again to abort)"
        )
        for live in list(self.live.values()):
            live.stream.cancel()

    def _record_failure(self, what: str, exc: BaseException) -> None:
        if not self.recorder_failed:
            self.recorder_failed = True
            self.progress.message(
                f"warning: the transcript store failed ({what}: {exc}); "
                "runs go on without being saved"
            )
        self.recorder = None

    async def one_run(self, session: SessionConfig) -> None:
        """Stream one run of ``session`` to its end and report it."""
        from tui.stream.accumulate import RunAccumulator
        from tui.stream.runner import StreamRun

        run_id = new_run_id()
        prompt = self.options.prompt if self.options.prompt is not None else session.prompt
        base_url = self.sim_url if session.is_simulated and self.sim_url else session.base_url
        stream = StreamRun(session, client=self.client, base_url=base_url, prompt=prompt)
        acc = RunAccumulator(run_id, session.name, session.api, session.model, prompt)
        live = _LiveRun(session, run_id, stream, acc, time.monotonic())
        if self.recorder is not None:
            try:
                await self.recorder.start_run(
                    session, prompt=prompt, run_id=run_id, accumulator=acc
                )
            except Exception as exc:
                self._record_failure("start_run", exc)
        self.live[run_id] = live
        if self.stopping.is_set():
            stream.cancel()
        try:
            try:
                async for batch in stream.batches():
                    self._apply(live, batch)
            except Exception as exc:  # a bug below us: end the run as failed, keep going
                error = RunError(
                    "protocol", f"tokentop internal error: {type(exc).__name__}: {exc}"
                )
                t = time.monotonic() - live.started
                self._apply(live, [Finished(t, "failed", "error", None, error)])
        finally:
            self.live.pop(run_id, None)
            await stream.aclose()  # no-op after Finished; stops the producer otherwise
        self._finished(live)

    def _apply(self, live: _LiveRun, events: Sequence[RunEvent]) -> None:
        """Fold the events of one network read into the run, then record them in one call."""
        apply, observe = live.accumulator.apply, live.observe
        for event in events:
            apply(event)
            observe(event)
        if self.recorder is not None:
            try:
                self.recorder.add_events(live.run_id, events)
            except Exception as exc:
                self._record_failure("add_events", exc)

    def _finished(self, live: _LiveRun) -> None:
        result = live.accumulator.result()
        self.results.append(result)
        if self.options.jsonl:
            self.emit({"type": "result", **result})
        if result["status"] == "failed":
            self.progress.message(failure_line(live.session, live.accumulator.error))
        else:
            tokens = _tokens(result.get("output_tokens"), bool(result.get("tokens_estimated")))
            attempts = _count(result.get("attempts"))
            self.progress.message(
                f"[{live.session.name}] {result['status']} ({result['finish_reason']}): "
                f"{tokens} tokens, ttft {_ms(result.get('ttft_ms'))}, "
                f"{_rate(result.get('tokens_per_s'))} tok/s, attempts {attempts}"
            )

    async def session_loop(self, session: SessionConfig) -> None:
        """One run, or a run every ``repeat.every_s`` seconds ``repeat.count`` times."""
        repeat = session.repeat
        done = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            await self.one_run(session)
            done += 1
            if repeat is None or (repeat.count and done >= repeat.count):
                return
            delay = started + repeat.every_s - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=delay)

    async def ticker(self) -> None:
        """Progress output until cancelled."""
        interval = _REDRAW_EVERY_S if self.progress.interactive else _PROGRESS_EVERY_S
        last_record = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            runs = list(self.live.values())
            width = max((len(r.session.name) for r in runs), default=0)
            self.progress.draw([r.line(width) for r in runs])
            now = time.monotonic()
            if self.options.jsonl and now - last_record >= _PROGRESS_EVERY_S - 0.05:
                last_record = now
                for r in runs:
                    self.emit(r.progress())

    async def run(self) -> int:
        """Run every session; the exit status."""
        tasks = [asyncio.create_task(self.session_loop(s)) for s in self.sessions]
        ticker = asyncio.create_task(self.ticker())
        unfinished = 0
        try:
            pending = set(tasks)
            while pending:
                _, pending = await asyncio.wait(pending, timeout=0.1)
                if pending and (self.aborted or self._grace_over()):
                    unfinished = len(self.live)
                    for task in pending:
                        task.cancel()
                    await asyncio.gather(*pending, return_exceptions=True)
                    self.aborted = True
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            self.progress.clear()
        if self.aborted:
            self.progress.message(f"aborted: {unfinished} run(s) did not finish")
        for task in tasks:
            exc = None if task.cancelled() else task.exception()
            if exc is not None:  # a bug in this module: say so in one line, fail the run
                self.progress.message(f"error: {type(exc).__name__}: {exc}")
                self.aborted = True
        failed = any(r["status"] == "failed" for r in self.results)
        return EXIT_FAILED if failed or self.aborted else EXIT_OK

    def _grace_over(self) -> bool:
        """Cancelled runs have had their time to end."""
        started = self.stop_started
        return started is not None and time.monotonic() - started > _CANCEL_GRACE_S


async def _open_recorder(options: RunOptions, progress: _Progress) -> RunRecorder | None:
    """The transcript store, or None with ``--no-store``; StoreError when it cannot open."""
    if not options.store:
        return None
    from tui.paths import default_db_path
    from tui.store import Store

    store = await Store.open(options.db_path or default_db_path())
    # a write error (disk full, ...) stops recording; the streams go on and the user is told
    store.on_error = lambda message: progress.message(f"warning: runs are not saved: {message}")
    return store


def _make_client(sim_url: str | None) -> httpx.AsyncClient:
    from tui.stream.transport import make_client

    # the in-process simulator is never reached through an HTTP(S)_PROXY from the env
    origins = [] if sim_url is None else [sim_url.split("/v1", 1)[0]]
    return make_client(direct_origins=origins)


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
    progress = _Progress(err, interactive)
    sim_url: str | None = None
    if any(s.is_simulated for s in sessions):
        from tui.sim.server import shared_simulator

        try:
            sim_url = await asyncio.to_thread(shared_simulator)
        except (OSError, RuntimeError) as exc:
            progress.message(f"error: the built-in simulator did not start: {exc}")
            return EXIT_FAILED
    if recorder is None:
        try:
            recorder = await _open_recorder(options, progress)
        except Exception as exc:  # StoreError: a message fit to show as is
            progress.message(f"error: {exc} (use --db PATH, or --no-store to run without saving)")
            return EXIT_BAD_INPUT
    async with _make_client(sim_url) as client:
        batch = _Batch(tuple(sessions), options, out, progress, client, sim_url, recorder)
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if handle_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(signum, batch.interrupt)
                    installed.append(signum)
        try:
            status = await batch.run()
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
            if batch.recorder is not None:
                try:
                    await batch.recorder.flush()
                    await batch.recorder.close()
                except Exception as exc:
                    progress.message(f"warning: the transcript store did not close cleanly: {exc}")
    if not options.jsonl:
        with contextlib.suppress(OSError, ValueError):
            # in the sessions' order (runs of one session in start order)
            order = {s.name: i for i, s in enumerate(sessions)}
            results = sorted(batch.results, key=lambda r: order.get(r["session"], len(order)))
            out.write(summary_table(results) + "\n" if results else "no runs\n")
            out.flush()
    return status


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
