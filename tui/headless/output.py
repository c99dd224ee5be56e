"""What ``tokentop run`` prints: the summary table, result, failure and alert lines and
records, progress."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Sequence
from typing import Any, TextIO

from tui.config import SessionConfig
from tui.session.alert_command import alert_time
from tui.session.alerts import Alert
from tui.session.conversation_view import ConversationOutcome
from tui.session.loop_lag import CLIENT_BOUND_LAG_MS
from tui.stream.events import RunError
from tui.vocab import MISSING

SHORT_ID = 8
"""Characters of a conversation id in the text output (the JSON records have it whole)."""


def run_label(name: str, turn: int, planned: int, conversation_id: str) -> str:
    """``[name]`` for a one-turn conversation, ``[name · turn 2/3 · 1a2b3c4d]`` otherwise."""
    if planned <= 1 and turn <= 1:
        return f"[{name}]"
    return f"[{name} · turn {turn}/{max(planned, turn)} · {conversation_id[:SHORT_ID]}]"


def failure_line(session: SessionConfig, error: RunError | None, label: str | None = None) -> str:
    """``[name] failed: cause`` with a hint for authentication failures (never a key);
    ``label`` replaces ``[name]`` (see :func:`run_label`)."""
    message = error.message if error is not None else "unknown error"
    if error is not None and error.http_status and str(error.http_status) not in message:
        message = f"HTTP {error.http_status}: {message}"
    if error is not None and error.kind == "auth":
        if session.api_key_env and session.api_key_env not in message:
            message += f" — check {session.api_key_env}"
        elif not session.api_key_env:
            message += " — the server wants a key: set api_key_env in the session"
    return f"{label or f'[{session.name}]'} failed: {message}"


def alert_record(alert: Alert) -> dict[str, Any]:
    """The ``--jsonl`` record of an alert (``at`` as ISO 8601 in UTC)."""
    return {
        "type": "alert",
        "session": alert.session,
        "run_id": alert.run_id,
        "metric": alert.metric,
        "value": alert.value,
        "threshold": alert.threshold,
        "message": alert.message,
        "at": alert_time(alert.at),
    }


def alert_line(alert: Alert) -> str:
    """The stderr line of an alert: ``alert: name: ttft 2,340 ms > 2,000 ms``."""
    return f"alert: {alert.message}"


def alerts_summary(fired: int) -> str:
    """The end-of-run line that counts the alerts."""
    return f"alerts: {fired} fired"


def fmt_ms(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.0f} ms"


def fmt_rate(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.1f}"


def fmt_tokens(count: int | None, estimated: bool, source: object = None) -> str:
    """A token count: ``~N`` when estimated, ``Nch`` when it counts chunks (no usage and no
    tokenizer: see ``tokens_source``)."""
    if count is None:
        return MISSING
    if source == "chunks":
        return f"{count}ch"
    return f"~{count}" if estimated else str(count)


def output_count(record: dict[str, Any]) -> str:
    """A result's output count in words: ``20 tokens``, ``~20 tokens (estimated)``, ``5 chunks``."""
    count = record.get("output_tokens")
    source = record.get("tokens_source")
    if count is None:
        return f"{MISSING} tokens"
    if source == "chunks":
        return f"{count} chunks"
    if source == "estimated" or (source is None and record.get("tokens_estimated")):
        return f"~{count} tokens (estimated)"
    return f"{count} tokens"


def timing_words(record: dict[str, Any]) -> str:
    """A result's timing: TTFT, the rate (per chunk when the count is chunks), time per
    output token and the inter-chunk p50 / p99."""
    per = "chunks/s" if record.get("tokens_source") == "chunks" else "tok/s"
    chunk = record.get("inter_chunk_ms") or {}
    words = [
        f"ttft {fmt_ms(record.get('ttft_ms'))}",
        f"{fmt_rate(record.get('tokens_per_s'))} {per}",
        f"tpot {fmt_ms_fine(record.get('tpot_ms'))}",
        f"inter-chunk p50 {fmt_ms_fine(chunk.get('p50'))} p99 {fmt_ms_fine(chunk.get('p99'))}",
    ]
    return ", ".join(words)


def client_bound_words(record: dict[str, Any]) -> str:
    """``client-bound (engine lag p99 N ms)`` for a run whose times may be tokentop's own."""
    if not record.get("client_bound"):
        return ""
    return f"client-bound (engine lag p99 {fmt_ms(record.get('client_lag_p99_ms'))})"


def client_bound_summary(results: Sequence[dict[str, Any]]) -> str | None:
    """The end-of-run line that counts the client-bound runs (None when there is none)."""
    bound = sum(1 for r in results if r.get("client_bound"))
    if not bound:
        return None
    return (
        f"client-bound: {bound} of {len(results)} runs: tokentop's engine loop lagged past "
        f"{CLIENT_BOUND_LAG_MS:.0f} ms (p99) during them, so their times may be tokentop's "
        "own, not the server's (fewer sessions per process, or more cores)"
    )


def fmt_ms_fine(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.1f} ms"


def fmt_count(attempts: object) -> str:
    """The attempt count of a result record."""
    return MISSING if attempts is None else str(attempts)


def summary_table(results: Sequence[dict[str, Any]], *, turns: bool = False) -> str:
    """The end-of-run table: one row per run (``turns``: with each run's turn, after the
    session)."""
    header: tuple[str, ...] = (
        "session",
        "model",
        "status",
        "finish",
        "tokens",
        "ttft",
        "tok/s",
        "tpot",
        "attempts",
        "note",
    )
    rows: list[tuple[str, ...]] = [
        (
            str(r["session"]),
            str(r["model"]),
            str(r["status"]),
            str(r["finish_reason"] or MISSING),
            fmt_tokens(
                r.get("output_tokens"), bool(r.get("tokens_estimated")), r.get("tokens_source")
            ),
            fmt_ms(r.get("ttft_ms")),
            fmt_rate(r.get("tokens_per_s")),
            fmt_ms_fine(r.get("tpot_ms")),
            fmt_count(r.get("attempts")),
            "client-bound" if r.get("client_bound") else "",
        )
        for r in results
    ]
    right = {4, 5, 6, 7, 8}
    if turns:
        header = (header[0], "turn", *header[1:])
        rows = [
            (row[0], str(r.get("turn") or MISSING), *row[1:])
            for row, r in zip(rows, results, strict=True)
        ]
        right = {1, *(i + 1 for i in right)}
    return _table(header, rows, right)


def summary_notes(results: Sequence[dict[str, Any]]) -> list[str]:
    """The lines that go with the summary table (on stderr, so that the table alone is on
    stdout): what the marks of its tokens column mean, and the client-bound runs."""
    notes = tokens_legend(results)
    bound = client_bound_summary(results)
    return [*notes, bound] if bound else notes


def tokens_legend(results: Sequence[dict[str, Any]]) -> list[str]:
    """What the marks of the tokens column mean, when some row has one."""
    sources = {r.get("tokens_source") for r in results}
    notes = []
    if "estimated" in sources:
        notes.append("~N: estimated by a tokenizer (the server sent no usage)")
    if "chunks" in sources:
        notes.append("Nch: content chunks, not tokens (no usage, no tokenizer; tok/s is chunks/s)")
    return notes


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """Aligned columns (``right``: the right-aligned ones) under a rule."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def _history(outcome: ConversationOutcome) -> str:
    """How the turns carried the history: Chat's messages, or the Responses mode (``auto``
    turned to items once the server refused or ignored ``previous_response_id``)."""
    if outcome.api == "chat":
        return "messages"
    return "auto, items since the server kept none" if outcome.fell_back else outcome.mode


def _output(outcome: ConversationOutcome, *, words: bool = False) -> str:
    """A conversation's output count, marked as the runs' are (``~N`` estimated, ``Nch``
    chunks); ``words``: ``N output tokens``, ``~N output tokens (estimated)``, ``N chunks``."""
    count, counted = outcome.output_tokens, outcome.output_counted
    if not words:
        return fmt_tokens(count, counted != "usage", counted)
    if counted == "chunks":
        return f"{count:,} output chunks"
    if counted == "estimated":
        return f"~{count:,} output tokens (estimated)"
    return f"{count:,} output tokens"


def _ended(outcome: ConversationOutcome) -> str:
    if outcome.ended == "completed" or outcome.stopped_at is None:
        return outcome.ended
    return f"{outcome.ended} at turn {outcome.stopped_at}"


def conversation_record(outcome: ConversationOutcome) -> dict[str, Any]:
    """The ``--jsonl`` record of a conversation that ended."""
    return {"type": "conversation", **outcome.as_dict()}


def conversation_line(outcome: ConversationOutcome) -> str:
    """The stderr line of a conversation that ended: turns, tokens, time, how, history."""
    line = (
        f"[{outcome.session}] conversation {outcome.conversation_id[:SHORT_ID]}: "
        f"{outcome.turns_done}/{outcome.turns_planned} turns {_ended(outcome)}, "
        f"{outcome.input_tokens:,} input + {_output(outcome, words=True)}, "
        f"{outcome.duration_s:,.1f} s, history {_history(outcome)}"
    )
    return line + (f": {outcome.reason}" if outcome.reason else "")


def conversations_table(outcomes: Sequence[ConversationOutcome]) -> str:
    """The end-of-run table of the conversations: one row per conversation."""
    header = ("session", "conversation", "turns", "input", "output", "time", "ended", "history")
    rows = [
        (
            o.session,
            o.conversation_id[:SHORT_ID],
            f"{o.turns_done}/{o.turns_planned}",
            f"{o.input_tokens:,}",
            _output(o),
            f"{o.duration_s:,.1f} s",
            _ended(o),
            _history(o),
        )
        for o in outcomes
    ]
    return _table(header, rows, {2, 3, 4, 5})


def progress_line(record: dict[str, Any], name_width: int) -> str:
    """One compact progress line from a progress record."""
    ttft = MISSING if record["ttft_ms"] is None else f"{record['ttft_ms']:.0f}ms"
    chunks = record.get("tokens_source") == "chunks"  # live, before usage: the chunk count
    tokens = fmt_tokens(record["output_tokens"], record["tokens_estimated"] and not chunks)
    unit = "ch" if chunks else "tok"
    return (
        f"{record['session']:<{name_width}}  {record['phase']:<17} "
        f"{tokens:>5} {unit} {fmt_rate(record['tokens_per_s']):>6} {unit}/s  ttft {ttft:>6}  "
        f"{record['elapsed_s']:.1f}s"
    )


class Progress:
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

    def rows(self) -> int:
        """How many progress lines the terminal block shows (a row is kept for the
        "more running" line and one for the cursor)."""
        return max(1, shutil.get_terminal_size().lines - 2)

    def draw(self, lines: list[str], *, more: int = 0) -> None:
        """Show the current progress lines (in one write), and on a terminal how many
        running runs did not fit (``more``)."""
        if not self.interactive:
            if lines:
                self._write("".join(text + "\n" for text in lines))
            return
        width = max(20, shutil.get_terminal_size().columns - 1)
        if more > 0:
            lines = [*lines, f"... and {more} more running"]
        # one write: the old block cleared, the new one drawn (never a line that wraps: the
        # cursor arithmetic counts one row per line)
        clear = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
        self._write(clear + "".join(text[:width] + "\n" for text in lines))
        self._drawn = len(lines)
