"""What ``tokentop run`` says while the sessions run: a printer that follows every session
(a result per finished run, a record and a line per conversation that ended, alerts) and
the progress ticker (see :mod:`tui.headless` for the output as a whole)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from tui.headless.output import (
    Progress,
    alert_line,
    alert_record,
    client_bound_words,
    conversation_line,
    conversation_record,
    failure_line,
    fmt_count,
    output_count,
    progress_line,
    run_label,
    timing_words,
)
from tui.session import SessionController, SessionRun, SessionRuntime
from tui.stream.events import Finished, RunEvent

if TYPE_CHECKING:
    from tui.session.alerts import Alert
    from tui.session.conversation_view import ConversationOutcome

__all__ = [
    "PROGRESS_BUDGET",
    "PROGRESS_EVERY_S",
    "REDRAW_EVERY_S",
    "RunPrinter",
    "progress_record",
]

PROGRESS_EVERY_S = 1.0
"""Progress records (``--jsonl``) and plain progress lines: once a second per running run."""
PROGRESS_BUDGET = 200
"""Progress records (and plain lines) per :data:`PROGRESS_EVERY_S` in all: with more runs
going, each is reported every ``ceil(runs / budget)`` seconds, in turn, so that a thousand
sessions do not spend a share of a core on progress nobody can read at that rate."""
REDRAW_EVERY_S = 0.2
"""Redraw interval of the in-place progress block on a terminal."""


def progress_record(controller: SessionController, run: SessionRun) -> dict[str, Any]:
    """The ``--jsonl`` progress record of a running run."""
    snap = run.accumulator.metrics()
    return {
        "type": "progress",
        "session": controller.name,
        "run_id": run.run_id,
        "conversation_id": run.conversation_id,
        "turn": run.turn,
        "phase": controller.phase,
        "attempts": len(run.accumulator.attempts),
        "output_tokens": snap.output_tokens,
        "tokens_estimated": snap.tokens_estimated,
        "tokens_source": snap.tokens_source,
        "tokens_per_s": snap.rolling_tokens_per_s,
        "ttft_ms": snap.ttft_ms,
        "elapsed_s": round(time.time() - run.started_at, 3),
    }


class RunPrinter:
    """Follows every session: a result (JSON line, stderr line) per finished run, a
    conversation record (and line) per conversation that ended."""

    def __init__(self, out: TextIO, progress: Progress, *, jsonl: bool) -> None:
        self.jsonl = jsonl
        """JSON lines on stdout (else the face prints the tables at the end)."""
        self.out = out
        self.progress = progress
        self.results: list[dict[str, Any]] = []
        self.conversations: list[ConversationOutcome] = []
        self.several_turns = False
        """Some conversation was planned with more than one turn."""
        self._turn = 0
        """Where the next portion of the running runs begins (see :data:`PROGRESS_BUDGET`)."""

    def emit(self, record: dict[str, Any]) -> None:
        """One JSON line on stdout."""
        self.emit_all([record])

    def emit_all(self, records: Sequence[dict[str, Any]]) -> None:
        """JSON lines on stdout, in one write."""
        if not records:
            return
        with contextlib.suppress(OSError, ValueError):
            self.out.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
            self.out.flush()

    def run_started(self, controller: SessionController, run: SessionRun) -> None:
        """Nothing to say until the run shows progress."""

    def run_events(
        self, controller: SessionController, run: SessionRun, events: Sequence[RunEvent]
    ) -> None:
        """Report the run when its last batch arrives."""
        if type(events[-1]) is Finished:
            self._finished(controller, run)

    def _finished(self, controller: SessionController, run: SessionRun) -> None:
        result = run.result()
        self.results.append(result)
        if self.jsonl:
            self.emit({"type": "result", **result})
        planned = controller.conversation.planned
        self.several_turns = self.several_turns or planned > 1 or run.turn > 1
        label = run_label(controller.name, run.turn, planned, run.conversation_id)
        if result["status"] == "failed":
            self.progress.message(failure_line(controller.session, run.accumulator.error, label))
            return
        bound = client_bound_words(result)
        self.progress.message(
            f"{label} {result['status']} ({result['finish_reason']}): "
            f"{output_count(result)}, {timing_words(result)}, "
            f"attempts {fmt_count(result.get('attempts'))}" + (f", {bound}" if bound else "")
        )

    def conversation(self, controller: SessionController, outcome: ConversationOutcome) -> None:
        """A conversation ended: its record (``--jsonl``), and its line when it was planned
        with several turns."""
        self.conversations.append(outcome)
        if self.jsonl:
            self.emit(conversation_record(outcome))
        if outcome.turns_planned > 1:
            self.progress.message(conversation_line(outcome))

    def alert(self, alert: Alert) -> None:
        """An alert sink: the ``alert`` record (``--jsonl``) and the stderr line."""
        if self.jsonl:
            self.emit(alert_record(alert))
        self.progress.message(alert_line(alert))

    async def ticker(self, runtime: SessionRuntime) -> None:
        """Progress output until cancelled: on a terminal a block redrawn in place (as many
        runs as it has rows for), otherwise lines; with ``--jsonl`` also progress records.
        Past :data:`PROGRESS_BUDGET` running runs, each second reports a portion of them."""
        progress = self.progress
        interval = REDRAW_EVERY_S if progress.interactive else PROGRESS_EVERY_S
        last_record = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            running = [
                (c, c.current)
                for c in runtime.controllers
                if c.current is not None and not c.current.done
            ]
            now = time.monotonic()
            due = self.jsonl and now - last_record >= PROGRESS_EVERY_S - 0.05
            if due:
                last_record = now
            if progress.interactive:
                shown = running[: progress.rows()]
                lines = self._lines([progress_record(c, r) for c, r in shown])
                progress.draw(lines, more=len(running) - len(shown))
                if due:
                    self.emit_all([progress_record(c, r) for c, r in self._portion(running)])
            else:
                records = [progress_record(c, r) for c, r in self._portion(running)]
                progress.draw(self._lines(records))
                if due:
                    self.emit_all(records)

    def _portion(
        self, running: list[tuple[SessionController, SessionRun]]
    ) -> list[tuple[SessionController, SessionRun]]:
        """The running runs to report now: all of them, or the next
        :data:`PROGRESS_BUDGET` in turn."""
        if len(running) <= PROGRESS_BUDGET:
            return running
        start = self._turn % len(running)
        self._turn = start + PROGRESS_BUDGET
        return (running[start:] + running[:start])[:PROGRESS_BUDGET]

    @staticmethod
    def _lines(records: list[dict[str, Any]]) -> list[str]:
        width = max((len(r["session"]) for r in records), default=0)
        return [progress_line(r, width) for r in records]
