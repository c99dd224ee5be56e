"""``tokentop history``, ``tokentop export`` and ``tokentop prune``: the command-line face of
the store.

Only click and :mod:`tui.vocab` are imported at module level (``tokentop --help`` stays
fast); the store is imported when a command runs. Expected problems (no database yet, an
unknown run id, any :class:`~tui.store.errors.StoreError`) print one line on stderr and exit
1; bad arguments exit 2 (click's usage errors).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import click

from tui.cli_common import aligned, db_option, db_path, emit, fmt_num, run_store, time_span
from tui.vocab import FINISH_REASONS, MISSING, RUN_STATUSES, STORED_STATUSES

if TYPE_CHECKING:
    from tui.store.conversation_records import ConversationSummary
    from tui.store.export import ExportFormat
    from tui.store.records import PruneResult, RoundRecord, RunSummary

FINISH_CHOICES: tuple[str, ...] = (
    *FINISH_REASONS,
    *(status for status in STORED_STATUSES if status not in RUN_STATUSES),
)
"""``--finish`` values: the normalized finish reasons, plus the statuses of runs that never
finished (``running``, ``interrupted``)."""


def history_table(runs: list[RunSummary]) -> str:
    """Runs as a plain text table (local times), one line per run (:mod:`tui.store.labels`)."""
    from tui.store.labels import tokens_cell, tpot_of

    header = ("TIME", "SESSION", "MODEL", "STATUS", "FINISH", "TOKENS", "TTFT ms", "TOK/S")
    rows = [(*header, "TPOT ms", "NOTE", "RUN")]
    for run in runs:
        rows.append(
            (
                run.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                run.session[:28],
                run.model[:28],
                run.status,
                run.finish_reason or MISSING,
                tokens_cell(run),
                fmt_num(run.ttft_ms),
                fmt_num(run.tokens_per_s, 1),
                fmt_num(tpot_of(run), 2),
                "client-bound" if run.client_bound else "",
                run.run_id[:14],
            )
        )
    return "\n".join(aligned(rows, right={5, 6, 7, 8})) + "\n"


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


def conversations_table(conversations: list[ConversationSummary]) -> str:
    """Conversations as a plain text table (local times), one line per conversation: its
    id prefix, last activity, session, model, turns, the status of its latest run and the
    start of its first prompt."""
    header = ("CONVERSATION", "TIME", "SESSION", "MODEL", "TURNS", "STATUS", "PROMPT")
    rows = [header]
    for found in conversations:
        prompt = " ".join(found.first_prompt.split())
        rows.append(
            (
                found.id[:14],
                found.last_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                found.session[:28],
                found.model[:28],
                str(found.turns),
                found.last_status,
                prompt if len(prompt) <= PROMPT_WIDTH else prompt[: PROMPT_WIDTH - 1] + "…",
            )
        )
    return "\n".join(aligned(rows, right={4})) + "\n"


PROMPT_WIDTH = 40
"""How much of a conversation's first prompt ``tokentop history`` shows."""


@click.command("history")
@click.option(
    "--search", metavar="TEXT", help="Full-text search in the prompts and answers of any turn."
)
@click.option("--session", metavar="NAME", help="Only conversations (runs) of this session.")
@click.option("--model", metavar="M", help="Only conversations (runs) of this model.")
@click.option(
    "--finish",
    metavar="REASON",
    type=click.Choice(FINISH_CHOICES),
    help="Only conversations with a run (only runs) with this finish reason (or interrupted "
    "/ running).",
)
@click.option(
    "--since",
    metavar="SPAN",
    callback=time_span,
    help="Only conversations with a run (only runs) started within this span (90s, 10m, 1h, "
    "7d, 2w).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="At most N conversations (runs, rounds).",
)
@click.option(
    "--runs", "list_runs", is_flag=True, help="List the single runs instead of conversations."
)
@click.option(
    "--rounds",
    "list_rounds",
    is_flag=True,
    help="List compare rounds instead of conversations (with --since, --limit, --json).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON lines: one per conversation; with --runs, the run --jsonl result records; "
    "with --rounds, one per round.",
)
@db_option
def history_command(
    search: str | None,
    session: str | None,
    model: str | None,
    finish: str | None,
    since: float | None,
    limit: int,
    list_runs: bool,
    list_rounds: bool,
    as_json: bool,
    db: Path | None,
) -> None:
    """List stored conversations with their turn count (or single runs, or compare rounds),
    the latest first."""
    path = db_path(db)
    if list_rounds:
        if list_runs:
            raise click.UsageError("--runs and --rounds exclude each other")
        if search or session or model or finish:
            raise click.UsageError(
                "--search, --session, --model and --finish choose conversations or runs; "
                "--rounds takes --since, --limit and --json"
            )
        _history_rounds(path, since=since, limit=limit, as_json=as_json)
        return
    filters = Filters(search, session, model, finish, since, limit)
    if list_runs:
        _history_runs(path, filters, as_json=as_json)
    else:
        _history_conversations(path, filters, as_json=as_json)


class Filters(NamedTuple):
    """What ``tokentop history`` was asked to list (``since``: seconds back from now)."""

    search: str | None
    session: str | None
    model: str | None
    finish: str | None
    since: float | None
    limit: int

    def query(self) -> dict[str, Any]:
        """As keyword arguments of ``Store.list_runs`` and ``Store.list_conversations``."""
        from tui.store.window import started_since

        since = None if self.since is None else started_since(self.since)
        return {
            "search": self.search,
            "session": self.session,
            "model": self.model,
            "finish": self.finish,
            "since": since,
            "limit": self.limit,
        }

    def nothing(self, what: str) -> str:
        """What to say when nothing was found."""
        filtered = self.search or self.session or self.model or self.finish
        return f"no {what} match" if filtered or self.since is not None else "no runs yet"


def _history_runs(path: Path, filters: Filters, *, as_json: bool) -> None:
    """``tokentop history --runs``: the stored runs, newest first."""

    async def main() -> list[RunSummary]:
        from tui.store import Store

        async with await Store.open(path, readonly=True) as store:
            return await store.list_runs(**filters.query())

    from tui.store.labels import tokens_legend

    runs = run_store(main)
    if as_json:
        from tui.store import result_record
        from tui.store.export import json_line

        emit("".join(json_line(result_record(r)) for r in runs), sys.stdout)
    elif runs:
        emit(history_table(runs), sys.stdout)
        emit("".join(f"{note}\n" for note in tokens_legend(runs)), sys.stderr)  # the marks
    else:
        click.echo(filters.nothing("runs"), err=True)


def _history_conversations(path: Path, filters: Filters, *, as_json: bool) -> None:
    """``tokentop history``: the stored conversations, the latest activity first."""

    async def main() -> list[ConversationSummary]:
        from tui.store import Store

        async with await Store.open(path, readonly=True) as store:
            return await store.list_conversations(**filters.query())

    found = run_store(main)
    if as_json:
        from tui.store.conversation_records import conversation_fields
        from tui.store.export import json_line

        emit("".join(json_line(conversation_fields(c)) for c in found), sys.stdout)
    elif found:
        emit(conversations_table(found), sys.stdout)
    else:
        click.echo(filters.nothing("conversations"), err=True)


def _history_rounds(path: Path, *, since: float | None, limit: int, as_json: bool) -> None:
    """``tokentop history --rounds``: the stored compare rounds, newest first."""

    async def main() -> list[RoundRecord]:
        import time

        from tui.store import Store

        async with await Store.open(path, readonly=True) as store:
            return await store.list_rounds(
                limit=limit, since=None if since is None else time.time() - since
            )

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
@click.argument("conversation_id", metavar="ID")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "json", "jsonl"]),
    default="md",
    show_default=True,
    help="md: for reading; json: the whole conversation with every run's attempts; jsonl: "
    "a line per run and per event.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write to FILE instead of stdout.",
)
@db_option
def export_command(
    conversation_id: str, fmt: ExportFormat, output: Path | None, db: Path | None
) -> None:
    """Export a stored conversation, every turn with its prompt, answer, finish reason,
    usage and metrics (ID: a conversation or run id, or a unique prefix; a run names its
    conversation). A conversation of one run exports as that run."""
    path = db_path(db)

    async def main() -> None:
        from tui.store import Store
        from tui.store.errors import StoreError
        from tui.store.export_conversation import export_conversation, named_run

        async with await Store.open(path, readonly=True) as store:
            record = await store.get_conversation(conversation_id)
            if record is None:
                raise StoreError(f"no conversation or run {conversation_id.strip()!r} in {path}")
            top = named_run(record, conversation_id)
            pieces = export_conversation(store, record, fmt, top=top)
            if output is None:
                async for piece in pieces:
                    emit(piece, sys.stdout)
            else:
                await _write_file(output, pieces)

    run_store(main)


async def _write_file(output: Path, pieces: AsyncIterator[str]) -> None:
    """Write ``pieces`` to ``output`` whole or not at all: into ``.NAME.part`` next to it,
    renamed over it once complete (removed when writing fails)."""
    part = output.with_name(f".{output.name}.part")
    try:
        # the command's own output file: the event loop has nothing else to do meanwhile
        with part.open("w", encoding="utf-8") as f:
            async for piece in pieces:
                f.write(piece)
        part.replace(output)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            part.unlink()
        if isinstance(exc, OSError):
            raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
        raise


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
