"""``tokentop history``, ``tokentop export`` and ``tokentop prune``: the command-line face of
the store.

Only click and :mod:`tui.vocab` are imported at module level (``tokentop --help`` stays
fast); the store is imported when a command runs. Expected problems (no database yet, an
unknown run id, any :class:`~tui.store.errors.StoreError`) print one line on stderr and exit
1; bad arguments exit 2 (click's usage errors).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tui.cli_common import aligned, db_option, db_path, emit, fmt_num, run_store, time_span
from tui.vocab import FINISH_REASONS, MISSING, RUN_STATUSES, STORED_STATUSES

if TYPE_CHECKING:
    from tui.store.records import PruneResult, RoundRecord, RunSummary

FINISH_CHOICES: tuple[str, ...] = (
    *FINISH_REASONS,
    *(status for status in STORED_STATUSES if status not in RUN_STATUSES),
)
"""``--finish`` values: the normalized finish reasons, plus the statuses of runs that never
finished (``running``, ``interrupted``)."""


def history_table(runs: list[RunSummary]) -> str:
    """Runs as a plain text table (local times), one line per run."""
    header = ("TIME", "SESSION", "MODEL", "STATUS", "FINISH", "TOKENS", "TTFT ms", "TOK/S", "RUN")
    rows = [header]
    for run in runs:
        tokens = MISSING if run.output_tokens is None else str(run.output_tokens)
        if run.tokens_estimated and run.output_tokens is not None:
            tokens = "~" + tokens
        rows.append(
            (
                run.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                run.session[:28],
                run.model[:28],
                run.status,
                run.finish_reason or MISSING,
                tokens,
                fmt_num(run.ttft_ms),
                fmt_num(run.tokens_per_s, 1),
                run.run_id[:14],
            )
        )
    return "\n".join(aligned(rows, right={5, 6, 7})) + "\n"


def rounds_table(rounds: list[RoundRecord]) -> str:
    """Compare rounds as a plain text table (local times), one line per round: its id
    prefix, start, columns, runs per column, order, status, and its stored runs out of
    all it was to have."""
    from datetime import datetime

    header = ("ROUND", "TIME", "SESSIONS", "COUNT", "ORDER", "STATUS", "RUNS")
    rows = [header]
    for found in rounds:
        names = ", ".join(found.sessions)
        rows.append(
            (
                found.id[:14],
                datetime.fromtimestamp(found.started_at).strftime("%Y-%m-%d %H:%M:%S"),
                names if len(names) <= 40 else names[:39] + "…",
                str(found.count),
                found.order[:14],
                found.status,
                f"{len(found.runs)}/{found.count * len(found.sessions)}",
            )
        )
    return "\n".join(aligned(rows, right={3, 6})) + "\n"


@click.command("history")
@click.option("--search", metavar="TEXT", help="Full-text search in prompts and outputs.")
@click.option("--session", metavar="NAME", help="Only runs of this session.")
@click.option("--model", metavar="M", help="Only runs of this model.")
@click.option(
    "--finish",
    metavar="REASON",
    type=click.Choice(FINISH_CHOICES),
    help="Only runs with this finish reason (or interrupted / running).",
)
@click.option(
    "--since",
    metavar="SPAN",
    callback=time_span,
    help="Only runs started within this span (90s, 10m, 1h, 7d, 2w).",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most N runs."
)
@click.option(
    "--rounds",
    "list_rounds",
    is_flag=True,
    help="List compare rounds instead of runs (with --since, --limit, --json).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON lines (the run --jsonl result records; with --rounds, one line per round).",
)
@db_option
def history_command(
    search: str | None,
    session: str | None,
    model: str | None,
    finish: str | None,
    since: float | None,
    limit: int,
    list_rounds: bool,
    as_json: bool,
    db: Path | None,
) -> None:
    """List stored runs (or compare rounds), newest first."""
    path = db_path(db)
    if list_rounds:
        if search or session or model or finish:
            raise click.UsageError(
                "--search, --session, --model and --finish choose runs; --rounds takes "
                "--since, --limit and --json"
            )
        _history_rounds(path, since=since, limit=limit, as_json=as_json)
        return

    async def main() -> list[RunSummary]:
        from tui.store import Store
        from tui.store.window import started_since

        store = await Store.open(path, readonly=True)
        try:
            return await store.list_runs(
                search=search,
                session=session,
                model=model,
                finish=finish,
                limit=limit,
                since=None if since is None else started_since(since),
            )
        finally:
            await store.close()

    runs = run_store(main)
    out = sys.stdout
    if as_json:
        from tui.store import result_record
        from tui.store.export import json_line

        emit("".join(json_line(result_record(r)) for r in runs), out)
    elif runs:
        emit(history_table(runs), out)
    else:
        filtered = search or session or model or finish or since is not None
        click.echo("no runs match" if filtered else "no runs yet", err=True)


def _history_rounds(path: Path, *, since: float | None, limit: int, as_json: bool) -> None:
    """``tokentop history --rounds``: the stored compare rounds, newest first."""

    async def main() -> list[RoundRecord]:
        import time

        from tui.store import Store

        store = await Store.open(path, readonly=True)
        try:
            return await store.list_rounds(
                limit=limit, since=None if since is None else time.time() - since
            )
        finally:
            await store.close()

    rounds = run_store(main)
    if as_json:
        from tui.store.export import json_line
        from tui.store.records import round_fields

        emit("".join(json_line(round_fields(r)) for r in rounds), sys.stdout)
    elif rounds:
        emit(rounds_table(rounds), sys.stdout)
    else:
        click.echo("no rounds match" if since is not None else "no rounds yet", err=True)


@click.command("export")
@click.argument("run_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "json", "jsonl"]),
    default="md",
    show_default=True,
    help="md: for reading; json: the whole run with its attempts; jsonl: one line per event.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write to FILE instead of stdout.",
)
@db_option
def export_command(run_id: str, fmt: str, output: Path | None, db: Path | None) -> None:
    """Export one stored run (a unique run id prefix is enough)."""
    path = db_path(db)

    async def main() -> str:
        from tui.store import Store, export

        store = await Store.open(path, readonly=True)
        try:
            run = await store.get_run(run_id)
            if fmt == "md":
                return export.to_markdown(run)
            if fmt == "json":
                return export.to_json(run)
            return "".join(export.to_jsonl(await store.run_events(run.run_id)))
        finally:
            await store.close()

    text = run_store(main)
    if output is None:
        emit(text, sys.stdout)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None


def span_text(seconds: float) -> str:
    """Seconds as a span in the largest of d, h, m, s that gives a whole number (``7d``)."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:g}s"


def _size(n: int) -> str:
    """Bytes for people: ``812 B``, ``41.3 KB``, ``1.7 GB`` (powers of 1000, as ``ls -h``
    does not, but as disk vendors and ``du --si`` do)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError  # pragma: no cover


def prune_line(result: PruneResult, span: str, path: Path, *, vacuum: bool) -> str:
    """The one line ``tokentop prune`` prints."""
    if result.runs == 0:
        return f"no runs older than {span} in {path} ({_size(result.bytes_after)})"
    runs = f"{result.runs:,} run{'s' if result.runs != 1 else ''}"
    if vacuum:
        sizes = f"{_size(result.bytes_before)} -> {_size(result.bytes_after)}"
        return (
            f"pruned {runs} older than {span} from {path}: {sizes} on disk "
            f"({_size(result.freed_bytes)} freed)"
        )
    return (
        f"pruned {runs} older than {span} from {path}: {_size(result.bytes_after)} on disk, "
        f"{_size(result.free_after)} of it free pages that new runs reuse "
        "(--vacuum gives the space back)"
    )


@click.command("prune")
@click.option(
    "--older-than",
    "older_than",
    metavar="SPAN",
    callback=time_span,
    required=True,
    help="Delete the runs that started longer ago than this (90s, 10m, 1h, 7d, 2w).",
)
@click.option(
    "--vacuum", is_flag=True, help="Then rebuild the file, giving the freed space back to the disk."
)
@db_option
def prune_command(older_than: float, vacuum: bool, db: Path | None) -> None:
    """Delete stored runs older than a time span, with their events, alerts and search
    entries (runs still running are kept)."""
    path = db_path(db)

    async def main() -> PruneResult:
        from tui.store import Store

        store = await Store.open(path)
        try:
            return await store.prune(older_than, vacuum=vacuum)
        finally:
            await store.close()

    if not path.is_file():
        raise click.ClickException(f"no database at {path} yet (nothing has been recorded)")
    result = run_store(main)
    click.echo(prune_line(result, span_text(older_than), path, vacuum=vacuum))
