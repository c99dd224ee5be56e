"""Where tokentop keeps its files: XDG locations via platformdirs.

Nothing is created at import time; directories are made when a caller asks for a location it
is about to write to.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "tokentop"
DB_ENV = "TOKENTOP_DB"
"""Environment variable that overrides the default database path."""
LOCAL_CONFIG_ENV = "TOKENTOP_LOCAL_CONFIG"
"""Environment variable that overrides where tokentop keeps its own settings file."""


def data_dir(*, create: bool = True) -> Path:
    """The user data directory (``$XDG_DATA_HOME/tokentop`` on Linux), created on demand."""
    path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir(*, create: bool = True) -> Path:
    """The user config directory (``$XDG_CONFIG_HOME/tokentop`` on Linux), created on demand."""
    path = Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def default_db_path() -> Path:
    """The transcript database: ``$TOKENTOP_DB`` if set, else ``<data dir>/tokentop.db``.

    The parent directory of the default location is created; a path from the environment is
    used as given (the store reports a missing directory clearly).
    """
    override = os.environ.get(DB_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    return data_dir() / "tokentop.db"


def local_config_path() -> Path:
    """tokentop's own settings file (sessions added from the dashboard, UI settings):
    ``$TOKENTOP_LOCAL_CONFIG`` if set, else ``<config dir>/local.toml``.

    Nothing is created here: the file and its directory are made when tokentop first writes
    it (:mod:`tui.config.overlay`). The user's sessions file is never this one.
    """
    override = os.environ.get(LOCAL_CONFIG_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    return config_dir(create=False) / "local.toml"


def user_themes_dir() -> Path:
    """User theme files (``<config dir>/themes``); may not exist, it is only read."""
    return config_dir(create=False) / "themes"


def shipped_themes_dir() -> Path:
    """Theme files shipped with tokentop: ``tui/_themes`` in a wheel, ``<repo>/themes`` in a
    checkout or an editable install."""
    package = Path(__file__).resolve().parent
    packaged = package / "_themes"
    return packaged if packaged.is_dir() else package.parent / "themes"
