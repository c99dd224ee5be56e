"""Reading a sessions file: TOML -> :class:`AppConfig`, or one :class:`ConfigError` that lists
every problem with its file, line, session and key.

The checks come from the schema (:mod:`tui.config.schema`); this module applies them to the
file's layout: ``[defaults]`` under every ``[[sessions]]`` table, ``[ui]``, ``[store]`` and
``[keymap]``.

:mod:`tui.config.overlay` checks tokentop's own file with the same :class:`FileLoader`.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from tui.config.errors import ConfigError, ConfigProblem
from tui.config.locate import KeyLines, KeyPath
from tui.config.schema import (
    AppConfig,
    KeyBinding,
    SessionConfig,
    StoreConfig,
    UiConfig,
    is_simulator_url,
    session_conflicts,
)
from tui.config.select import chosen
from tui.config.validate import (
    Invalid,
    build,
    check_table,
    merge,
    required_keys,
    settings,
    table,
    unknown_key,
    value_check,
)

T = TypeVar("T")

TOP_LEVEL = ("defaults", "sessions", "ui", "store", "keymap")
"""The tables a sessions file may have."""
LOCAL_TOP_LEVEL = ("sessions", "ui")
"""The tables tokentop's own file may have."""

_check_key_binding = value_check(KeyBinding)


class FileLoader:
    """Validates one parsed sessions file (``local``: tokentop's own file), collecting every
    problem."""

    def __init__(
        self,
        path: Path,
        text: str,
        environ: Mapping[str, str],
        only: Sequence[str] | None = None,
        *,
        local: bool = False,
    ) -> None:
        self.path = path
        self.local = local
        """Checking tokentop's own file: only [[sessions]] and [ui], no session needed."""
        self.environ = environ
        self.only = only
        """``--only`` patterns: only their sessions need their API key variables set."""
        self.key_problems: list[ConfigProblem] = []
        """Unset API key variables, reported at the end for the sessions that will run."""
        self._text = text
        self.problems: list[ConfigProblem] = []
        self.defaults: dict[str, Any] = {}
        """The checked [defaults] values."""
        self.raw_default_keys: set[str] = set()
        """Keys present in [defaults], valid or not (a missing key is not an invalid one)."""
        self.built: list[tuple[int, SessionConfig]] = []
        """Every session that could be built, with its 1-based [[sessions]] position."""
        self.ui_values: dict[str, Any] = {}
        """The valid keys of [ui] as written (a local file's override the sessions file's)."""

    @functools.cached_property
    def lines(self) -> KeyLines:
        """Where each key is written: scanned for the first problem (a valid file needs none)."""
        return KeyLines(self._text)

    def report(
        self,
        message: str,
        table: KeyPath,
        key: tuple[str, ...] = (),
        session: str | None = None,
        *,
        into: list[ConfigProblem] | None = None,
    ) -> None:
        """Record a problem about ``key`` of ``table`` (``()``: the file's top level,
        ``("sessions", n)``: the n-th session, ``("defaults",)``, ``("ui",)``, ...) in
        ``into`` (default: the problems reported at the end)."""
        index: int | None = None
        match table:
            case ("sessions", int() as index):
                named = key  # as written in the session
            case ():
                named = key
            case _:
                named = (str(table[0]), *key)  # [defaults], [ui], [keymap]: with the table
        line = self.lines.line((*table, *key))
        shown = ".".join(named) if named else None
        target = self.problems if into is None else into
        target.append(ConfigProblem(message, session, shown, line, index=index))

    def load(self, data: dict[str, Any]) -> AppConfig:
        top_level = LOCAL_TOP_LEVEL if self.local else TOP_LEVEL
        for key in data:
            if key not in top_level:
                self.report(unknown_key(key, top_level), (), (key,))
        self.defaults = self._defaults(data.get("defaults", {})) if not self.local else {}
        ui = self._plain_table("ui", UiConfig, data.get("ui", {}))
        store = self._plain_table("store", StoreConfig, data.get("store", {}))
        keymap = self._keymap(data.get("keymap", {}))
        sessions = self._sessions(data.get("sessions", []))
        needed = None if not self.only else set(chosen([s.name for s in sessions], self.only)[0])
        if not self.local:  # an own file's unset variables are said, its sessions kept
            self.problems += [p for p in self.key_problems if needed is None or p.session in needed]
        return AppConfig(path=self.path, sessions=sessions, ui=ui, store=store, keymap=keymap)

    def _table(self, name: str, raw: object) -> dict[str, Any] | None:
        """A top-level table, or None (reported) when ``name`` is not one."""
        try:
            return table(name, raw)
        except Invalid as exc:
            self.report(str(exc), (), (name,))
            return None

    def _defaults(self, raw: object) -> dict[str, Any]:
        values = self._table("defaults", raw)
        if values is None:
            return {}
        if "name" in values:
            self.report(
                "name cannot be set in [defaults]: every session needs its own unique name",
                ("defaults",),
                ("name",),
            )
            values = {k: v for k, v in values.items() if k != "name"}
        self.raw_default_keys = set(values)
        return check_table(
            SessionConfig, values, lambda key, message: self.report(message, ("defaults",), key)
        )

    def _plain_table(self, name: str, schema: type[T], raw: object) -> T:
        """A top-level table of ``schema`` (``[ui]``, ``[store]``): its valid keys."""
        values = self._table(name, raw)
        if values is None:
            return schema()
        checked = check_table(
            schema, values, lambda key, message: self.report(message, (name,), key)
        )
        if schema is UiConfig:
            self.ui_values = checked
        return build(schema, checked) or schema()

    def _keymap(self, raw: object) -> dict[str, str]:
        values = self._table("keymap", raw)
        out: dict[str, str] = {}
        for key, value in (values or {}).items():
            try:
                out[key] = _check_key_binding(key, value)
            except Invalid as exc:
                self.report(str(exc), ("keymap",), (key,))
        return out

    def _sessions(self, raw: object) -> tuple[SessionConfig, ...]:
        if not isinstance(raw, list) or not all(isinstance(s, dict) for s in raw):
            self.report(
                "sessions must be an array of tables: write each one as [[sessions]]",
                (),
                ("sessions",),
            )
            return ()
        if not raw and not self.local:
            self.report(
                "no sessions: add at least one [[sessions]] table with name, model and prompt",
                (),
                ("sessions",),
            )
        seen: dict[str, int] = {}
        sessions: list[SessionConfig] = []
        for index, values in enumerate(raw, start=1):
            name = values.get("name")
            label = name if isinstance(name, str) and name.strip() else None
            session = self.check_session(index, label, values)
            if label is not None:
                if label in seen:
                    self.report(
                        f"duplicate name {label!r} (also session #{seen[label]}): "
                        "names must be unique",
                        ("sessions", index),
                        ("name",),
                        label,
                    )
                seen.setdefault(label, index)
            if session is not None:
                sessions.append(session)
                self.built.append((index, session))
        return tuple(sessions)

    def check_session(
        self, index: int, label: str | None, raw: dict[str, Any]
    ) -> SessionConfig | None:
        """Check the ``index``-th session, merge it over the checked defaults and check the
        whole; None when a required key has no value (every problem is reported)."""
        where: KeyPath = ("sessions", index)

        def problem(key: tuple[str, ...], message: str) -> None:
            self.report(message, where, key, label)

        merged = merge(SessionConfig, self.defaults, check_table(SessionConfig, raw, problem))
        for key in required_keys(SessionConfig):
            if key not in raw and key not in self.raw_default_keys:
                problem((key,), f"missing required key {key!r}")
        resolved = settings(SessionConfig, merged)
        for key_path, message in session_conflicts(resolved):
            problem(key_path, message)
        api_key_env = resolved["api_key_env"]
        if (
            api_key_env is not None
            and not is_simulator_url(resolved["base_url"])
            and not self.environ.get(api_key_env)
        ):
            self.report(
                f"environment variable {api_key_env} is not set (named by api_key_env); "
                'export it, or use base_url = "sim" for the simulator',
                where,
                ("api_key_env",),
                label,
                into=self.key_problems,
            )
        return build(SessionConfig, merged)


_SYNTAX_PLACE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$|\s*\(at end of document\)$")


def _syntax_problem(exc: tomllib.TOMLDecodeError, text: str) -> ConfigProblem:
    message = str(exc)
    match = _SYNTAX_PLACE.search(message)
    line = column = None
    if match:
        message = message[: match.start()]
        if match.group(1):
            line, column = int(match.group(1)), int(match.group(2))
        else:
            line = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
    return ConfigProblem(f"TOML syntax error: {message}", line=line, column=column)


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """The text and the parsed TOML of ``path``; ConfigError when it cannot be read or parsed
    (FileNotFoundError's problem is ``file not found``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, [ConfigProblem("file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(path, [ConfigProblem(f"cannot read the file: {reason}")]) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [_syntax_problem(exc, text)]) from None


def in_file_order(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    return sorted(problems, key=lambda p: p.line or 0)  # those without a line first


def load_config(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    only: Sequence[str] | None = None,
) -> AppConfig:
    """Read and validate a sessions file; raise :class:`ConfigError` listing every problem.

    ``environ`` (default ``os.environ``) is only used to check that the variables named by
    ``api_key_env`` exist for sessions that talk to a real server; no value is kept or shown.
    With ``only`` (``--only`` patterns, see :mod:`tui.config.select`), that check covers only
    the sessions they choose: a session that will not run needs no key.
    """
    path = Path(path)
    text, data = read_toml(path)
    loader = FileLoader(path, text, os.environ if environ is None else environ, only)
    config = loader.load(data)
    if loader.problems:
        raise ConfigError(path, in_file_order(loader.problems))
    return config


_PACKAGE = Path(__file__).resolve().parent.parent


def example_config_path() -> Path:
    """The shipped ``sessions.example.toml`` (inside the wheel, or at the repository root)."""
    for candidate in (
        _PACKAGE / "_data" / "sessions.example.toml",
        _PACKAGE.parent / "sessions.example.toml",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("sessions.example.toml is not installed with tokentop")


def default_config_path(cwd: Path | None = None) -> Path:
    """The sessions file used when none is given: ``./sessions.toml``, then
    ``<config dir>/sessions.toml``, else the shipped example (all simulated, no key needed)."""
    from tui.paths import config_dir  # platformdirs: only when actually needed

    local = (cwd or Path.cwd()) / "sessions.toml"
    if local.is_file():
        return local
    user = config_dir(create=False) / "sessions.toml"
    if user.is_file():
        return user
    return example_config_path()


def load_default_config(
    *, environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> AppConfig:
    """:func:`load_config` of :func:`default_config_path`."""
    return load_config(default_config_path(cwd), environ=environ)
