"""The ``tokentop`` command line: the dashboard (default), ``run``, ``sim``, ``replay``, and the
store's ``history`` and ``export``.

Start-up stays fast: this module imports only click; the config loader, the engine, the
simulator, the store and Textual are imported inside the command that needs them.
"""

from __future__ import annotations

import gc
import importlib
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from tui import __version__

if TYPE_CHECKING:
    from tui.config import AppConfig

REPLAY_MIN_SPEED = 0.25
REPLAY_MAX_SPEED = 10.0
"""The replay speeds the replay screen offers (its ``-`` / ``+`` steps end there)."""

_LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "history": (
        "tui.cli_store",
        "history_command",
        "List stored runs, newest first (search and filters, --json).",
    ),
    "export": (
        "tui.cli_store",
        "export_command",
        "Export one stored run as Markdown, JSON or JSON lines.",
    ),
    "prune": (
        "tui.cli_store",
        "prune_command",
        "Delete stored runs older than a time span (--older-than 7d), optionally VACUUM.",
    ),
    "stats": (
        "tui.cli_monitor",
        "stats_command",
        "Per-session run counts, success rate and p50/p95 over a window (--since, --json).",
    ),
    "compare": (
        "tui.cli_compare",
        "compare_command",
        "Send a prompt N times to each session and rank them (--rounds N, --markdown, --json).",
    ),
}
"""Commands that live in other modules: name -> (module, attribute, short help for --help)."""


def _unavailable(name: str, reason: str) -> click.Command:
    def fail() -> None:
        raise click.UsageError(f"'tokentop {name}' is not available: {reason}")

    return click.Command(name, callback=fail, help=f"(unavailable: {reason})")


def _load_lazy(name: str) -> click.Command:
    module_name, attribute, _ = _LAZY_COMMANDS[name]
    try:
        command = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        return _unavailable(name, f"{module_name}.{attribute} cannot be imported ({exc})")
    if not isinstance(command, click.Command):
        return _unavailable(name, f"{module_name}.{attribute} is not a click command")
    return command


def _looks_like_config(arg: str) -> bool:
    return arg.endswith(".toml") or Path(arg).is_file()


class _MainGroup(click.Group):
    """``tokentop [CONFIG]`` opens the dashboard; ``tokentop COMMAND ...`` runs a command.

    A first argument that is not a command name but a ``.toml`` path or an existing file is
    the dashboard's CONFIG. Store commands are imported only when they are run.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _LAZY_COMMANDS and cmd_name not in self.commands:
            return _load_lazy(cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if name not in self.commands and name not in _LAZY_COMMANDS and _looks_like_config(name):
            return "dashboard", self.commands["dashboard"], args
        return super().resolve_command(ctx, args)

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return ["[OPTIONS]", "[CONFIG | COMMAND [ARGS]...]"]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Lazy commands show their static help, so --help never imports the store.
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                command = self.commands[name]
                if not command.hidden:
                    rows.append((name, command.get_short_help_str(limit=70)))
            else:
                rows.append((name, _LAZY_COMMANDS[name][2]))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _load_config(path: Path | None, only: tuple[str, ...] = ()) -> AppConfig:
    """The sessions file at ``path`` (or the default one); a broken file exits with status 2."""
    from tui.cli_common import load_config_or_exit

    return load_config_or_exit(path, only)


_CONFIG_ARG = click.argument(
    "config", required=False, type=click.Path(dir_okay=False, path_type=Path), metavar="[CONFIG]"
)
_DB_OPTION = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Transcript database (default: $TOKENTOP_DB, else the user data directory).",
)
_THEME_OPTION = click.option("--theme", metavar="NAME", help="Dashboard theme (overrides [ui]).")


def _metrics_addr(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from tui.session.prometheus_http import parse_metrics_addr

    try:
        parse_metrics_addr(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


_METRICS_OPTION = click.option(
    "--metrics-addr",
    metavar="HOST:PORT",
    callback=_metrics_addr,
    help="Serve Prometheus /metrics there while the sessions run (e.g. 127.0.0.1:9464).",
)


@click.group(
    cls=_MainGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@_DB_OPTION
@_THEME_OPTION
@_METRICS_OPTION
@click.version_option(__version__, "-V", "--version", prog_name="tokentop")
@click.pass_context
def main(ctx: click.Context, db: Path | None, theme: str | None, metrics_addr: str | None) -> None:
    """Watch, compare and keep LLM streams from OpenAI-compatible servers.

    With no command, opens the dashboard on CONFIG: the given sessions file, else
    ./sessions.toml, else ~/.config/tokentop/sessions.toml, else the shipped example (which
    streams from the built-in simulator: no key, no network).
    """
    ctx.ensure_object(dict)
    ctx.obj["theme"] = theme
    ctx.obj["metrics_addr"] = metrics_addr
    if db is not None:
        # `tokentop --db X COMMAND` means `tokentop COMMAND --db X` for every command.
        group = ctx.command
        assert isinstance(group, click.Group)
        ctx.default_map = {name: {"db": str(db)} for name in group.list_commands(ctx)}
    if ctx.invoked_subcommand is None:
        ctx.invoke(dashboard, config=None, db=db, theme=theme, metrics_addr=metrics_addr)


@main.command()
@_CONFIG_ARG
@_DB_OPTION
@_THEME_OPTION
@_METRICS_OPTION
@click.pass_context
def dashboard(
    ctx: click.Context,
    config: Path | None,
    db: Path | None,
    theme: str | None,
    metrics_addr: str | None,
) -> None:
    """Open the dashboard (the default command)."""
    # No collection while the dashboard starts (its imports included): the app turns the
    # collector back on just after its first frame (``TokentopApp(freeze_gc=True)``).
    gc.disable()
    try:
        from tui.cli_common import load_dashboard_config_or_exit

        loaded = load_dashboard_config_or_exit(config)
        app_config = loaded.config
        theme = theme or (ctx.obj or {}).get("theme") or app_config.ui.theme
        metrics_addr = metrics_addr or (ctx.obj or {}).get("metrics_addr")
        from tui.ui.app import run_dashboard

        status = run_dashboard(
            app_config, db_path=db, theme=theme, metrics_addr=metrics_addr, local=loaded
        )
    finally:  # a config error, an app that never started
        gc.enable()
    if status:
        raise SystemExit(status)


@main.command("run", short_help="Run the sessions without the dashboard (headless).")
@_CONFIG_ARG
@click.option(
    "--jsonl", is_flag=True, help="JSON lines on stdout: progress and one result per run."
)
@click.option(
    "--only", multiple=True, metavar="NAME", help="Run only this session (repeat for more)."
)
@click.option("--prompt", metavar="TEXT", help="Send TEXT instead of each session's prompt.")
@_DB_OPTION
@click.option("--no-store", is_flag=True, help="Do not write the runs to the database.")
@_METRICS_OPTION
def run_command(
    config: Path | None,
    jsonl: bool,
    only: tuple[str, ...],
    prompt: str | None,
    db: Path | None,
    no_store: bool,
    metrics_addr: str | None,
) -> None:
    """Run every session (or those named by --only) concurrently, without the dashboard.

    Live progress goes to stderr and a summary table to stdout (or JSON lines with --jsonl).
    Exit status: 0 when every run completed or was incomplete (cancelled runs included),
    1 when any run failed, 2 for a bad sessions file or bad arguments. Ctrl-C cancels every
    run cleanly and still prints the results so far; a second Ctrl-C aborts at once.
    """
    if prompt is not None and not prompt.strip():
        raise click.BadParameter("must not be empty", param_hint="'--prompt'")
    app_config = _load_config(config, only)  # only the chosen sessions need their keys
    from tui.headless import RunOptions, run_headless, select_sessions

    try:
        sessions = select_sessions(app_config, only)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="'--only'") from None
    options = RunOptions(
        jsonl=jsonl,
        prompt=prompt,
        db_path=db,
        store=not no_store,
        metrics_addr=metrics_addr,
        retention=app_config.store,
    )
    raise SystemExit(run_headless(sessions, options))


@main.command(short_help="Run the built-in simulator standalone.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8700, show_default=True, type=click.IntRange(0, 65535))
def sim(host: str, port: int) -> None:
    """Run the built-in simulator standalone (prints its base URL; Ctrl-C stops it)."""
    from tui.sim.server import serve

    try:
        serve(host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    except KeyboardInterrupt:
        pass


@main.command(short_help="Replay a stored conversation or run in the dashboard.")
@click.argument("run_id", metavar="ID")
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    type=click.FloatRange(REPLAY_MIN_SPEED, REPLAY_MAX_SPEED),
    help=f"Replay speed factor, {REPLAY_MIN_SPEED:g} to {REPLAY_MAX_SPEED:g} (2 = twice as fast).",
)
@click.option("--instant", is_flag=True, help="Show the whole run at once, without delays.")
@click.option(
    "--columns",
    is_flag=True,
    help="Replay the compare the conversation was a column of, its columns side by side.",
)
@_DB_OPTION
@_THEME_OPTION
@click.pass_context
def replay(
    ctx: click.Context,
    run_id: str,
    speed: float,
    instant: bool,
    columns: bool,
    db: Path | None,
    theme: str | None,
) -> None:
    """Open the dashboard replaying a stored conversation turn by turn, or a run, with the
    original timing (the pause between two turns shortened to at most 2 s).

    ID is a conversation or run id, or a unique prefix of one: a run of a conversation of
    several turns replays that conversation; a conversation of one turn replays its answer,
    a run of one the run. In the replay, space pauses, - and + change the speed, i plays the
    rest at once. With --columns, every column of the compare the conversation was sent in
    plays side by side on one clock.
    """
    if instant and ctx.get_parameter_source("speed") is ParameterSource.COMMANDLINE:
        raise click.UsageError("--speed and --instant exclude each other")
    app_config = _load_config(None)
    theme = theme or (ctx.obj or {}).get("theme") or app_config.ui.theme
    from tui.paths import default_db_path

    db = db or default_db_path()
    # what cannot be replayed is an error line and a non-zero exit, not a dashboard
    run_id, conversation_id = _replay_target(db, run_id, columns=columns)
    from tui.ui.app import run_dashboard

    run_dashboard(
        app_config,
        db_path=db,
        theme=theme,
        replay_run_id=run_id,
        replay_conversation_id=conversation_id,
        replay_speed=None if instant else speed,
        replay_columns=columns,
    )


def _replay_target(db: Path, id_or_prefix: str, *, columns: bool = False) -> tuple[str, str | None]:
    """What ``tokentop replay ID`` plays, read without writing: the full id of the run ID
    names (for a conversation, its last turn's answer) and, when that run's conversation
    has several turns, the conversation's id (else None); with ``columns``, the id of the
    conversation, which must have been a column of a compare. A one-line ClickException
    when the database, the conversation or the run cannot be read."""
    import asyncio

    from tui.store import Store
    from tui.store.errors import StoreError
    from tui.store.export_conversation import named_run

    async def find() -> tuple[str, str | None]:
        async with await Store.open(db, readonly=True) as store:
            record = await store.get_conversation(id_or_prefix)
            compared = await store.compared_conversations(id_or_prefix) if record else []
        if record is None:
            raise StoreError(f"no conversation or run {id_or_prefix.strip()!r} in {db}")
        if columns:
            if len(compared) < 2:
                from tui.ui.screens.compare_replay import no_columns_message

                raise StoreError(no_columns_message(compared[0]))
            return record.id, record.id
        run = named_run(record, id_or_prefix)
        return run.run_id, (record.id if len(record.turns) > 1 else None)

    try:
        return asyncio.run(find())
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
