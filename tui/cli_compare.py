"""``tokentop compare``: a compare round over the sessions (N runs each, ranked), or the
report of a stored round again (``--round ID``).

Only click and the command-line helpers are imported at module level (``tokentop --help``
stays fast); the session layer and the store are imported when the command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click
from click.core import ParameterSource

from tui.cli_common import aligned, db_path, emit, load_config_or_exit, run_store

if TYPE_CHECKING:
    from tui.session.round_report import RoundReport
    from tui.session.round_stats import Metric
    from tui.store.records import RoundRecord, RunDetail

Format = Literal["text", "markdown", "json"]

ORDERS = ("interleaved", "sequential", "parallel")
"""The orders of :data:`tui.session.round_plan.ROUND_ORDERS` (repeated here so that
``--help`` imports nothing; a test checks they agree)."""
METRICS = ("ttft", "tps", "duration")
"""The metrics of :data:`tui.session.round_stats.METRICS` (the same check)."""
MAX_RUNS = 1000
""":data:`tui.session.round_plan.MAX_RUNS_PER_COLUMN` (the same check)."""

_ROUND_ONLY_EXCLUDES = ("rounds", "only", "order", "prompt", "no_store", "quiet")


def render(report: RoundReport, fmt: Format) -> str:
    """The report as text (a title, an aligned table, the verdict), Markdown or JSON."""
    from tui.session.round_table import (
        RIGHT_ALIGNED,
        markdown_table,
        report_json,
        table_cells,
        title_line,
        verdict_lines,
    )

    if fmt == "json":
        return json.dumps(report_json(report), ensure_ascii=False, indent=2)
    if fmt == "markdown":
        return markdown_table(report)
    lines = [title_line(report), *aligned(table_cells(report), RIGHT_ALIGNED)]
    verdict = verdict_lines(report)
    return "\n".join(lines + (["", *verdict] if verdict else []))


def _stored(path: Path, round_id: str) -> tuple[RoundRecord | None, dict[str, RunDetail]]:
    """The stored round ``round_id`` names (a unique prefix is enough) and its runs."""

    async def main() -> tuple[RoundRecord | None, dict[str, RunDetail]]:
        from tui.store import Store, StoreError

        store = await Store.open(path, readonly=True)
        try:
            record = await store.get_round(round_id)
            details: dict[str, RunDetail] = {}
            for member in record.runs if record is not None else ():
                try:
                    details[member.run_id] = await store.get_run(member.run_id)
                except StoreError:  # pruned since
                    continue
            return record, details
        finally:
            await store.close()

    return run_store(main)


def _reprint(path: Path, round_id: str, by: Metric, fmt: Format) -> int:
    from tui.session.round_report import RoundReport

    record, details = _stored(path, round_id)
    if record is None:
        raise click.ClickException(f"no compare round {round_id!r} in {path}")
    report = RoundReport.of_stored(record, details, by)
    emit(render(report, fmt) + "\n", sys.stdout)
    return 0 if report.every_column_succeeded else 1


@click.command("compare", short_help="Send a prompt N times to each session and rank them.")
@click.argument(
    "config", required=False, type=click.Path(dir_okay=False, path_type=Path), metavar="[CONFIG]"
)
@click.option(
    "--rounds",
    "rounds",
    type=click.IntRange(1, MAX_RUNS),
    default=3,
    show_default=True,
    metavar="N",
    help="Runs per session.",
)
@click.option(
    "--only", multiple=True, metavar="NAME", help="Compare only this session (repeat for more)."
)
@click.option(
    "--order",
    type=click.Choice(ORDERS),
    default="interleaved",
    show_default=True,
    help="interleaved: A1 B1 A2 B2 (load changes spread fairly); sequential: A1 A2 B1 B2; "
    "parallel: every session's i-th run at once.",
)
@click.option(
    "--by",
    type=click.Choice(METRICS),
    default="ttft",
    show_default=True,
    help="Rank by median TTFT, tokens/s (higher is better) or duration.",
)
@click.option("--prompt", metavar="TEXT", help="Send TEXT instead of each session's prompt.")
@click.option("--markdown", is_flag=True, help="A Markdown table (for a report or a pull request).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every figure.")
@click.option(
    "--round",
    "round_id",
    metavar="ID",
    help="Print a stored round's report again (an id or a unique prefix; read-only).",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Transcript database (default: $TOKENTOP_DB, else the user data directory).",
)
@click.option("--no-store", is_flag=True, help="Do not record the round and its runs.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr (errors still).")
@click.pass_context
def compare_command(
    ctx: click.Context,
    config: Path | None,
    rounds: int,
    only: tuple[str, ...],
    order: str,
    by: str,
    prompt: str | None,
    markdown: bool,
    as_json: bool,
    round_id: str | None,
    db: Path | None,
    no_store: bool,
    quiet: bool,
) -> None:
    """Send a prompt N times to each session (a compare round) and rank them: median, p95
    and p25–p75 spread of TTFT, tokens/s and duration, successes, output tokens and cost per
    run (where the model's price is known: the session's `price`, else genai-prices' list
    price; unknown is "–"). Sessions whose spreads overlap are said to be tied.

    Progress goes to stderr, the report to stdout. With --round ID, the report of a stored
    round is printed again (nothing runs). Exit status: 0 when every session had at least
    one successful run (in a cancelled round too), 1 otherwise and for an unknown or
    unreadable --round, 2 for a bad sessions file, bad arguments or a store that cannot be
    opened. Ctrl-C cancels the round and still prints the report of the runs so far; a
    second Ctrl-C aborts at once.
    """
    if markdown and as_json:
        raise click.UsageError("--markdown and --json exclude each other")
    fmt: Format = "json" if as_json else "markdown" if markdown else "text"
    metric: Metric = by  # type: ignore[assignment]
    if round_id is not None:
        given = [
            name
            for name in _ROUND_ONLY_EXCLUDES
            if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
        ]
        if config is not None or given:
            names = ["CONFIG"] if config is not None else []
            names += ["--" + name.replace("_", "-") for name in given]
            raise click.UsageError(
                f"--round reprints a stored round: {', '.join(names)} cannot go with it"
            )
        raise SystemExit(_reprint(db_path(db), round_id, metric, fmt))
    if prompt is not None and not prompt.strip():
        raise click.BadParameter("must not be empty", param_hint="'--prompt'")
    app_config = load_config_or_exit(config, only)
    from tui.headless import select_sessions
    from tui.headless.compare import CompareOptions, compare_headless

    try:
        sessions = select_sessions(app_config, only)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="'--only'") from None
    options = CompareOptions(
        count=rounds,
        order=order,  # type: ignore[arg-type]
        by=metric,
        prompt=prompt,
        db_path=db,
        store=not no_store,
        retention=app_config.store,
        quiet=quiet,
    )
    raise SystemExit(compare_headless(sessions, options, lambda report: render(report, fmt)))
