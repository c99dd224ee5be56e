"""What the command-line modules share (``tui.cli``, ``tui.cli_store``, ``tui.cli_monitor``):
the ``--db`` option and path, reading the sessions file, running a store coroutine, writing
to a pipe that may close, time spans, and plain aligned tables.

Only click and :mod:`tui.vocab` are imported at module level (``tokentop --help`` stays
fast); the config loader and the store are imported when a command needs them.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Collection, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from tui.vocab import MISSING

if TYPE_CHECKING:
    from tui.config import AppConfig
    from tui.config.overlay import LoadedConfig

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_BAD_CONFIG = 2
"""Exit status for a broken sessions file (the same as click's usage errors)."""


def db_option(command: F) -> F:
    """The ``--db PATH`` option every store command has."""
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Database file (default: $TOKENTOP_DB, else tokentop.db in the user data dir).",
    )(command)


def db_path(db: Path | None) -> Path:
    """``--db``'s path, else the default database (``$TOKENTOP_DB`` or the data directory)."""
    if db is not None:
        return db
    from tui.paths import default_db_path

    return default_db_path()


def load_config_or_exit(path: Path | None, only: Sequence[str] = ()) -> AppConfig:
    """The sessions file at ``path`` (or the default one); a broken file prints every problem
    and exits with status 2. With ``only`` (``--only`` patterns), only the sessions they
    choose need their API key variables set."""
    from tui.config import ConfigError, default_config_path, load_config

    try:
        return load_config(default_config_path() if path is None else path, only=only or None)
    except ConfigError as exc:
        click.echo(exc.render(), err=True)
        raise SystemExit(EXIT_BAD_CONFIG) from None
    except FileNotFoundError as exc:  # no ./sessions.toml and no shipped example
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_BAD_CONFIG) from None


def load_dashboard_config_or_exit(path: Path | None) -> LoadedConfig:
    """The dashboard's config: the sessions file at ``path`` (or the default one) merged
    with tokentop's own file (:func:`tui.paths.local_config_path`: the sessions added from
    the dashboard, the theme chosen there). A broken sessions file exits with status 2 as in
    :func:`load_config_or_exit`; the own file's problems never do (the dashboard says them)."""
    from tui import paths
    from tui.config import ConfigError, default_config_path
    from tui.config.overlay import load_with_local

    try:
        local = paths.local_config_path()
    except OSError:  # no usable config directory: nothing of tokentop's own to merge
        local = None
    try:
        return load_with_local(default_config_path() if path is None else path, local)
    except ConfigError as exc:
        click.echo(exc.render(), err=True)
        raise SystemExit(EXIT_BAD_CONFIG) from None
    except FileNotFoundError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_BAD_CONFIG) from None


def run_store(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main`` and turn a StoreError into a one-line ``Error:`` with exit status 1."""
    from tui.store.errors import StoreError

    try:
        return asyncio.run(main())
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


def emit(text: str, out: TextIO) -> None:
    """Write ``text``; a reader that went away (``tokentop history | head``) ends quietly."""
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        sys.stderr.close()
        raise SystemExit(0) from None


def time_span(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """Option callback: a time span as people type it (``90s``, ``10m``, ``1h``, ``7d``,
    ``2w``) -> seconds; a bad one is a usage error (exit 2) that says what is accepted
    (:func:`tui.store.window.parse_age`)."""
    if value is None:
        return None
    from tui.store.window import parse_age

    try:
        return parse_age(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def fmt_num(value: float | None, digits: int = 0) -> str:
    """``value`` with ``digits`` decimals, or :data:`~tui.vocab.MISSING`."""
    return MISSING if value is None else f"{value:.{digits}f}"


def aligned(rows: Sequence[Sequence[str]], right: Collection[int]) -> list[str]:
    """``rows`` (the header first) as lines of columns two spaces apart, the columns in
    ``right`` aligned right (numbers), the others left."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]
