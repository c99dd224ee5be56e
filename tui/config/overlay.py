"""tokentop's own settings file (``local.toml``, :func:`tui.paths.local_config_path`): the
sessions added from the dashboard and the ``[ui]`` settings it changed.

The user's sessions file is theirs (comments, layout): tokentop never writes it. What the
dashboard keeps goes into this file instead, which :func:`load_with_local` merges with the
sessions file: its ``[[sessions]]`` after the file's (a name in both is the file's, and the
clash is said naming both files), its ``[ui]`` keys over the file's. It is checked by the
loader's own code (:class:`~tui.config.load.FileLoader`), and never stops tokentop: its
problems are in :attr:`LoadedConfig.local_error` (file:line, as the loader says them) and
its sessions without a problem are used.

:class:`LocalFile` writes it: read, change, then an atomic replace (a temporary file in the
same directory, flushed to disk, then ``os.replace``), under a lock, with tomli-w. A file it
cannot parse is never overwritten (:class:`LocalFileError` says so): nothing in it is lost.
An added session names its API key's environment variable (``api_key_env``), never a key:
:func:`key_like` refuses what looks like a pasted key, and no message repeats it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import tempfile
import threading
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tui.config.errors import ConfigError, ConfigProblem
from tui.config.load import FileLoader, in_file_order, load_config, read_toml
from tui.config.schema import AppConfig, SessionConfig, UiConfig
from tui.config.validate import Invalid, keys_of

HEADER = (
    "# tokentop's own settings: sessions added from the dashboard and the [ui] settings it\n"
    "# changed. tokentop rewrites this file (comments are not kept); your sessions file is\n"
    "# never written. Remove a session from the dashboard, or delete its table here.\n\n"
)


class LocalFileError(Exception):
    """tokentop's own file cannot be written or changed; the message says why, in one
    sentence that names the file (never a secret)."""


# -- reading and merging ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A sessions file merged with tokentop's own file (:func:`load_with_local`)."""

    config: AppConfig
    """The sessions file's sessions, then the own file's; its [ui] keys over the file's."""
    local_path: Path | None
    """tokentop's own file (None: none was merged)."""
    own: frozenset[str] = frozenset()
    """Names of the sessions from tokentop's own file (the ones the dashboard may remove)."""
    local_error: ConfigError | None = None
    """The own file's problems (its sessions with one are left out); None: there are none."""


def _same_file(a: Path, b: Path | None) -> bool:
    if b is None:
        return False
    with contextlib.suppress(OSError):
        return a.resolve() == b.resolve()
    return False


def _local_sessions(
    loader: FileLoader, file_names: set[str], file_path: Path | None
) -> tuple[list[SessionConfig], list[ConfigProblem]]:
    """The own file's sessions that can be used, and the problems (an unset API key variable
    is said, but its session is kept: its runs say it again; any other problem drops it)."""
    bad = {p.index for p in loader.problems if p.index is not None}
    problems = list(loader.problems) + loader.key_problems
    kept: list[SessionConfig] = []
    for index, session in loader.built:
        where: tuple[str | int, ...] = ("sessions", index)
        if session.name in file_names:
            shown = file_path if file_path is not None else "the sessions file"
            loader.report(
                f"{shown} also has a session called {session.name!r}: that one is used "
                "(rename or remove this one)",
                where,
                ("name",),
                session.name,
                into=problems,
            )
        elif index in bad:
            message = "not loaded until its problems are fixed (or its [[sessions]] table deleted)"
            problems.append(ConfigProblem(message, session.name, line=loader.lines.line(where)))
        else:
            kept.append(session)
    return kept, problems


def load_with_local(
    path: Path,
    local: Path | None,
    *,
    environ: Mapping[str, str] | None = None,
    only: Sequence[str] | None = None,
) -> LoadedConfig:
    """:func:`~tui.config.load.load_config` of ``path``, merged with tokentop's own file at
    ``local`` (None, or a file that does not exist yet: nothing to merge).

    A broken sessions file raises :class:`ConfigError` as ``load_config`` does; the own
    file's problems never raise (see the module docstring).
    """
    environ = os.environ if environ is None else environ
    config = load_config(path, environ=environ, only=only)
    if local is None:
        return LoadedConfig(config, None)
    local = Path(local)
    if _same_file(local, config.path):
        problem = ConfigProblem(
            "this is the sessions file itself: tokentop's own file must be another one "
            "(see TOKENTOP_LOCAL_CONFIG)"
        )
        return LoadedConfig(config, None, local_error=ConfigError(local, [problem]))
    try:
        text, data = read_toml(local)
    except ConfigError as exc:
        missing = [p.message for p in exc.problems] == ["file not found"]
        return LoadedConfig(config, local, local_error=None if missing else exc)
    loader = FileLoader(local, text, environ, only, local=True)
    loader.load(data)
    sessions, problems = _local_sessions(loader, {s.name for s in config.sessions}, config.path)
    ui = dataclasses.replace(config.ui, **loader.ui_values)
    merged = dataclasses.replace(config, sessions=(*config.sessions, *sessions), ui=ui)
    error = ConfigError(local, in_file_order(problems)) if problems else None
    return LoadedConfig(merged, local, frozenset(s.name for s in sessions), error)


def check_session(
    values: Mapping[str, Any], *, environ: Mapping[str, str] | None = None
) -> tuple[SessionConfig | None, list[ConfigProblem]]:
    """One ``[[sessions]]`` table checked as the own file's are (by the loader's code, no
    ``[defaults]``): the session (None without a required key) and every problem, each
    naming its key (an unset ``api_key_env`` variable included)."""
    raw = dict(values)
    name = raw.get("name")
    label = name if isinstance(name, str) and name.strip() else None
    environ = os.environ if environ is None else environ
    loader = FileLoader(Path("<new session>"), "", environ, local=True)
    session = loader.check_session(1, label, raw)
    return session, loader.problems + loader.key_problems


# -- what may be written ------------------------------------------------------------------------

_KEY_PREFIX = re.compile(r"(sk|pk|rk|gsk|xai|hf|ghp|gho|glpat|AIza)[-_]")


def key_like(value: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Why ``value``, typed where the NAME of an environment variable belongs, looks like an
    API key itself; None when it does not. The message never repeats the value."""
    text = value.strip()
    environ = os.environ if environ is None else environ
    if not text or text in environ:
        return None
    said = (
        "api_key_env takes the NAME of an environment variable (like OPENAI_API_KEY), and "
        "this looks like a key itself: it was not kept."
    )
    if len(text) >= 12:
        holders = sorted(name for name, held in environ.items() if held.strip() == text)
        if holders:
            return f"{said} It is the value of {holders[0]}: type {holders[0]} instead."
    looks_like_key = (
        _KEY_PREFIX.match(text) is not None
        or any(c in text for c in " \t.:/+=")
        or (len(text) >= 20 and "_" not in text and any(c.isdigit() for c in text))
        or (len(text) >= 32 and any(c.islower() for c in text) and any(c.isdigit() for c in text))
    )
    if looks_like_key:
        return f"{said} Export the key in a variable and type that variable's name."
    return None


def _toml_value(value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _table_of(value, f"{key}.")
    if isinstance(value, Mapping):
        return {str(k): _toml_value(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_toml_value(v, key) for v in value]
    return value


def _table_of(obj: object, prefix: str = "") -> dict[str, Any]:
    schema: type = type(obj)
    out: dict[str, Any] = {}
    for key in keys_of(schema).values():
        value = getattr(obj, key.name)
        if key.default is not None and value == key.default():
            continue
        if value is None:  # TOML has no null: only a default can be None
            raise LocalFileError(f"{prefix}{key.name} has no TOML spelling (None)")
        out[key.name] = _toml_value(value, prefix + key.name)
    return out


def session_table(session: SessionConfig) -> dict[str, Any]:
    """The ``[[sessions]]`` table of ``session``: the keys whose values are not the defaults
    (it loads back to an equal :class:`SessionConfig`). LocalFileError for a value TOML
    cannot hold."""
    return _table_of(session)


# -- writing ------------------------------------------------------------------------------------


_TABLE_HEADER = re.compile(r"^(\[\[?)", re.MULTILINE)


def render(data: Mapping[str, Any]) -> str:
    """The file's text (without :data:`HEADER`): its other tables first, then each session
    as a ``[[sessions]]`` table, as people write them (tomli-w alone writes short ones as
    one inline array). The text is checked to parse back to ``data``."""
    import tomli_w  # only tokentop's own file is written: not needed to read one

    rest = {k: v for k, v in data.items() if k != "sessions"}
    parts = [tomli_w.dumps(rest)] if rest else []
    for table in data.get("sessions", []):
        # a session's own sub-tables ([params], [[params.tools]]) belong to that session
        body = _TABLE_HEADER.sub(r"\1sessions.", tomli_w.dumps(table))
        parts.append("[[sessions]]\n" + body)
    text = "\n".join(parts)
    return text if tomllib.loads(text) == data else tomli_w.dumps(data)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between tokentop processes on ``<file>.lock`` (POSIX ``flock``;
    elsewhere, only the lock within this process)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_atomically(path: Path, text: str) -> None:
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class LocalFile:
    """Reads and changes tokentop's own file at ``path``. ``sessions_file`` is the user's
    sessions file, which is never written (a ``path`` that is that file is refused).

    Each change reads the file again, changes it and replaces it atomically, under a lock
    (between threads and between tokentop processes), so two dashboards lose no change.
    Every method raises :class:`LocalFileError` (one sentence) instead of another error."""

    def __init__(self, path: Path, *, sessions_file: Path | None = None) -> None:
        self.path = Path(path)
        self.sessions_file = sessions_file
        self._lock = threading.Lock()

    def read(self) -> dict[str, Any]:
        """The file's TOML as parsed (``{}`` when it does not exist yet)."""
        try:
            _, data = read_toml(self.path)
        except ConfigError as exc:
            if [p.message for p in exc.problems] == ["file not found"]:
                return {}
            raise LocalFileError(
                f"{exc.render()}\n(tokentop does not overwrite it: fix or delete the file)"
            ) from None
        return data

    def session_names(self) -> list[str]:
        """The names of the sessions in the file, in its order."""
        return [s["name"] for s in self._sessions(self.read()) if isinstance(s.get("name"), str)]

    def add_session(self, session: SessionConfig) -> None:
        """Add ``session`` (its :func:`session_table`) after the file's sessions. Refused: a
        name the file has already, an ``api_key_env`` that looks like a key."""
        refused = None if session.api_key_env is None else key_like(session.api_key_env)
        if refused is not None:
            raise LocalFileError(refused)
        table = session_table(session)

        def add(data: dict[str, Any]) -> None:
            sessions = self._sessions(data)
            if any(s.get("name") == session.name for s in sessions):
                raise LocalFileError(f"{self.path} already has a session called {session.name!r}")
            sessions.append(table)
            data["sessions"] = sessions

        self._change(add)

    def remove_session(self, name: str) -> bool:
        """Remove the session called ``name``; False when the file has none of that name."""
        removed = False

        def remove(data: dict[str, Any]) -> None:
            nonlocal removed
            sessions = self._sessions(data)
            kept = [s for s in sessions if s.get("name") != name]
            removed = len(kept) != len(sessions)
            if kept:
                data["sessions"] = kept
            else:
                data.pop("sessions", None)

        if self.path.exists():
            self._change(remove)
        return removed

    def set_ui(self, **values: Any) -> None:
        """Keep ``[ui]`` settings (``theme="nord"``), each checked as the loader checks it;
        a None value removes the key. ValueError for a key ``[ui]`` does not have."""
        keys = keys_of(UiConfig)
        checked: dict[str, Any] = {}
        for name, value in values.items():
            if name not in keys:
                raise ValueError(f"[ui] has no key {name!r}")
            try:
                checked[name] = None if value is None else keys[name].check(name, value)
            except Invalid as exc:
                raise LocalFileError(f"cannot keep {name}: {exc}") from None

        def update(data: dict[str, Any]) -> None:
            ui = data.get("ui", {})
            if not isinstance(ui, dict):
                raise LocalFileError(f"{self.path}: ui is not a table (fix or delete the file)")
            for name, value in checked.items():
                if value is None:
                    ui.pop(name, None)
                else:
                    ui[name] = value
            if ui:
                data["ui"] = ui
            else:
                data.pop("ui", None)

        self._change(update)

    def _sessions(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        sessions = data.get("sessions", [])
        if not isinstance(sessions, list) or not all(isinstance(s, dict) for s in sessions):
            raise LocalFileError(
                f"{self.path}: sessions is not an array of tables (fix or delete the file)"
            )
        return sessions

    def _change(self, change: Callable[[dict[str, Any]], None]) -> None:
        if _same_file(self.path, self.sessions_file):
            raise LocalFileError(
                f"{self.path} is the sessions file: tokentop never writes it "
                "(point TOKENTOP_LOCAL_CONFIG at another file)"
            )
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with _file_lock(self.path):
                    data = self.read()
                    change(data)
                    _write_atomically(self.path, HEADER + render(data))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise LocalFileError(f"cannot write {self.path}: {reason}") from None
