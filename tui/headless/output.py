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
from tui.stream.events import RunError
from tui.vocab import MISSING


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


def fmt_tokens(count: int | None, estimated: bool) -> str:
    if count is None:
        return MISSING
    return f"~{count}" if estimated else str(count)


def fmt_count(attempts: object) -> str:
    """The attempt count of a result record."""
    return MISSING if attempts is None else str(attempts)


def summary_table(results: Sequence[dict[str, Any]]) -> str:
    """The end-of-run table: one row per run."""
    header = ("session", "model", "status", "finish", "tokens", "ttft", "tok/s", "attempts")
    rows = [
        (
            str(r["session"]),
            str(r["model"]),
            str(r["status"]),
            str(r["finish_reason"] or MISSING),
            fmt_tokens(r.get("output_tokens"), bool(r.get("tokens_estimated"))),
            fmt_ms(r.get("ttft_ms")),
            fmt_rate(r.get("tokens_per_s")),
            fmt_count(r.get("attempts")),
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


def progress_line(record: dict[str, Any], name_width: int) -> str:
    """One compact progress line from a progress record."""
    ttft = MISSING if record["ttft_ms"] is None else f"{record['ttft_ms']:.0f}ms"
    tokens = fmt_tokens(record["output_tokens"], record["tokens_estimated"])
    return (
        f"{record['session']:<{name_width}}  {record['phase']:<17} "
        f"{tokens:>5} tok {fmt_rate(record['tokens_per_s']):>6} tok/s  ttft {ttft:>6}  "
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
