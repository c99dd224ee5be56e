"""``tokentop stats``: per-session run counts, success rate, last failure and p50/p95 over a
window, read from the store (:mod:`tui.store.stats` has every definition).

Only click and :mod:`tui.vocab` are imported at module level (``tokentop --help`` stays
fast); the store is imported when the command runs. As for ``tokentop history``: a missing
or unreadable database is one ``Error:`` line and exit 1, bad arguments exit 2 (click's
usage errors), and an empty database or window says so and exits 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tui.cli_common import (
    aligned,
    db_option,
    db_path,
    emit,
    fmt_num,
    load_config_or_exit,
    run_store,
)
from tui.vocab import MISSING

if TYPE_CHECKING:
    from tui.store.stats import Percentiles, SessionStats

ALL = "all"
"""``--since all``: every stored run (the default)."""


def _since_seconds(text: str | None) -> float | None:
    """``--since`` in seconds (None for every run); a usage error naming what is accepted."""
    if text is None or text.strip().lower() == ALL:
        return None
    from tui.store.window import parse_age

    try:
        return parse_age(text)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}, or {ALL}", param_hint="'--since'") from None


def _config_sessions(config: Path | None) -> list[str] | None:
    """The session names of the sessions file ``config`` (None without one)."""
    return None if config is None else [s.name for s in load_config_or_exit(config).sessions]


def _pair(p: Percentiles, digits: int = 0, scale: float = 1.0) -> str:
    if p.p50 is None or p.p95 is None:
        return MISSING
    return f"{fmt_num(p.p50 / scale, digits)} / {fmt_num(p.p95 / scale, digits)}"


def stats_table(stats: list[SessionStats]) -> str:
    """The sessions as a plain text table (times local), then one line per last failure."""
    header = (
        "SESSION",
        "RUNS",
        "OK %",
        "FAILED",
        "LAST FAILURE",
        "TTFT ms p50 / p95",
        "TOK/S p50 / p95",
        "DURATION s p50 / p95",
    )
    rows = [header]
    for s in stats:
        runs = str(s.runs) + (f" +{s.running}" if s.running else "")
        rate = MISSING if s.success_rate is None else f"{100.0 * s.success_rate:.1f}"
        failure = MISSING
        if s.last_failure is not None:
            when = s.last_failure.at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
            failure = f"{when} {s.last_failure.kind}"
        rows.append(
            (
                s.session,
                runs,
                rate,
                str(s.failures),
                failure,
                _pair(s.ttft_ms),
                _pair(s.tokens_per_s, 1),
                _pair(s.duration_ms, 2, 1000.0),
            )
        )
    lines = aligned(rows, right={1, 2, 3, 5, 6, 7})
    for s in stats:
        f = s.last_failure
        if f is not None and f.message:
            status = f" {f.error_status}" if f.error_status is not None else ""
            lines.append(f"{s.session}: last failure ({f.kind}{status}): {f.message}")
    return "\n".join(lines) + "\n"


def _window_words(since: str | None) -> str:
    return "" if since is None or since.strip().lower() == ALL else f" in the last {since.strip()}"


@click.command("stats")
@click.argument(
    "config", required=False, type=click.Path(dir_okay=False, path_type=Path), metavar="[CONFIG]"
)
@click.option(
    "--session",
    "sessions",
    multiple=True,
    metavar="NAME",
    help="Only this session (repeat for more).",
)
@click.option(
    "--since",
    metavar="SPAN",
    help="Only runs that started within this span (90s, 10m, 1h, 7d, 2w; default: all).",
)
@click.option("--json", "as_json", is_flag=True, help="A JSON list: one object per session.")
@db_option
def stats_command(
    config: Path | None,
    sessions: tuple[str, ...],
    since: str | None,
    as_json: bool,
    db: Path | None,
) -> None:
    """Per-session run counts, success rate, last failure and p50/p95 of TTFT, tokens/s
    and duration, from the stored runs.

    With CONFIG, the sessions of that file are listed (also those without runs). The
    success rate counts completed and incomplete runs (answers cut by length or a content
    filter included) against failed and interrupted ones; cancelled runs are left out.
    Percentiles are over the successful runs. RUNS counts finished runs (+N still running).
    """
    seconds = _since_seconds(since)
    wanted = list(dict.fromkeys(sessions)) or _config_sessions(config)
    path = db_path(db)

    async def main() -> tuple[list[str], list[SessionStats]]:
        from tui.store import Store
        from tui.store.stats import session_names, session_stats
        from tui.store.window import started_since

        store = await Store.open(path, readonly=True)
        try:
            known = await session_names(store)
            unknown = [name for name in sessions if name not in known]
            if unknown:
                return known, []
            lower = None if seconds is None else started_since(seconds)
            return known, await session_stats(store, session=wanted, since=lower)
        finally:
            await store.close()

    known, stats = run_store(main)
    unknown = [name for name in sessions if name not in known]
    if unknown:
        exist = ", ".join(known) if known else "none yet"
        raise click.BadParameter(
            f"no runs of {', '.join(map(repr, unknown))} in {path} (sessions with runs: {exist})",
            param_hint="'--session'",
        )
    if as_json:
        emit(json.dumps([s.as_dict() for s in stats], indent=2) + "\n", sys.stdout)
    if not known:
        click.echo(f"no runs yet in {path}", err=True)
    elif not any(s.runs or s.running for s in stats):
        click.echo(f"no runs{_window_words(since)}", err=True)
        if stats and not as_json:
            emit(stats_table(stats), sys.stdout)
    elif not as_json:
        emit(stats_table(stats), sys.stdout)
