"""Sessions file (TOML) -> frozen dataclasses.

Headless: never imports Textual or Rich. ``load_config`` validates everything and reports
every problem at once in one :class:`ConfigError` that names the file, the session and the key.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeAlias, get_args
from urllib.parse import urlsplit

from tui.vocab import Api

OnDrop: TypeAlias = Literal["resume", "restart", "fail"]

SIM_BASE_URLS = frozenset({"sim", "sim://", "builtin"})
"""``base_url`` spellings that mean: the built-in simulator, started in-process on demand."""


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How a session reacts to failures before the first byte and to drops and stalls."""

    max_retries: int = 4
    """Retries per run, before the first byte or after a drop (attempts = retries + 1)."""
    backoff_initial_s: float = 0.5
    """First backoff delay; doubles per retry, with up to 25% jitter taken off."""
    backoff_max_s: float = 8.0
    """Upper bound of the backoff delay."""
    idle_timeout_s: float = 60.0
    """No bytes at all (keep-alive comments count) for this long = a stalled stream."""
    connect_timeout_s: float = 10.0
    """Time allowed to connect."""
    on_drop: OnDrop = "resume"
    """After a drop or stall: ``resume`` (falls back to ``restart`` when resuming is
    impossible), ``restart`` (a new attempt), or ``fail``."""


@dataclass(frozen=True, slots=True)
class Repeat:
    """Run the session periodically: a new run starts every ``every_s`` seconds (or as soon as the
    previous one ended, when it took longer), ``count`` runs in all (0 = until stopped)."""

    every_s: float
    """Seconds from the start of one run to the start of the next (> 0)."""
    count: int = 0
    """Total number of runs, the first one included; 0 = until stopped."""


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """One streaming session as described in the sessions file (after defaults applied)."""

    name: str
    """Unique session name."""
    model: str
    """Model name sent to the server."""
    prompt: str
    """``input`` (responses) or the one user message (chat)."""
    base_url: str = "sim"
    """Server base URL including ``/v1``, or ``sim`` for the built-in simulator."""
    api_key_env: str | None = None
    """Name of the environment variable that holds the API key (never the key itself)."""
    api: Api = "responses"
    """``responses`` (POST /v1/responses) or ``chat`` (POST /v1/chat/completions)."""
    system: str | None = None
    """``instructions`` (responses) or a system message (chat)."""
    max_output_tokens: int | None = None
    """``max_output_tokens`` (responses) or ``max_tokens`` (chat)."""
    temperature: float | None = None
    """Sampling temperature."""
    background: bool = False
    """Responses only: create a background response, so that a dropped stream can resume."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Merged into the request body as is."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra request headers."""
    repeat: Repeat | None = None
    """Run again periodically, for monitoring."""
    reconnect: ReconnectPolicy = field(default_factory=ReconnectPolicy)
    """Retry, resume and stall policy."""

    @property
    def is_simulated(self) -> bool:
        """True when this session talks to the built-in simulator."""
        return self.base_url.strip().lower() in SIM_BASE_URLS

    def api_key(self) -> str | None:
        """The API key from the environment, read at request time (never stored)."""
        if self.api_key_env is None:
            return None
        return os.environ.get(self.api_key_env)


@dataclass(frozen=True, slots=True)
class UiConfig:
    """Dashboard preferences (``[ui]`` table)."""

    theme: str | None = None
    """Theme name (a shipped theme, a user theme, or a Textual built-in)."""


@dataclass(frozen=True, slots=True)
class AppConfig:
    """A whole sessions file."""

    path: Path | None
    """Where it was read from (None for a config built in code)."""
    sessions: tuple[SessionConfig, ...]
    ui: UiConfig = field(default_factory=UiConfig)
    keymap: Mapping[str, str] = field(default_factory=dict)
    """Binding id -> key(s), like posting's ``[keymap]`` (e.g. ``cancel_run = "ctrl+x"``)."""

    def session(self, name: str) -> SessionConfig:
        """The session called ``name`` (KeyError when there is none)."""
        for s in self.sessions:
            if s.name == name:
                return s
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem found in a sessions file."""

    message: str
    """What is wrong and how to fix it (never contains a secret)."""
    session: str | None = None
    """Name of the session concerned (None for a file-level problem or an unnamed session)."""
    key: str | None = None
    """The key concerned, dotted for nested tables (``reconnect.max_retries``)."""
    line: int | None = None
    """1-based line in the file, when known."""
    column: int | None = None
    """1-based column (TOML syntax errors only)."""
    index: int | None = None
    """1-based position of the ``[[sessions]]`` table, for sessions without a usable name."""


class ConfigError(Exception):
    """A sessions file that must not start anything; ``problems`` lists every issue found."""

    def __init__(self, path: Path | None, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        """All problems, one per line, each naming the file, the session and the key."""
        where = str(self.path) if self.path else "<config>"
        lines = [f"{where}: {len(self.problems)} problem(s):"]
        for p in self.problems:
            place = where
            if p.line:
                place += f":{p.line}" + (f":{p.column}" if p.column else "")
            parts = [place]
            if p.session is not None:
                parts.append(f"session {p.session!r}")
            elif p.index is not None:
                parts.append(f"session #{p.index}")
            if p.key is not None:
                parts.append(f"key {p.key!r}")
            lines.append("  " + ", ".join(parts) + ": " + p.message)
        return "\n".join(lines)


# --- value checks ----------------------------------------------------------------------------


class _Invalid(Exception):
    """Raised by a value check; the message completes "<key> ..."."""


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    return "date/time"


def _wrong_type(key: str, expected: str, value: object) -> _Invalid:
    return _Invalid(f"{key} must be {expected}, got {_type_name(value)}")


def _text(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise _wrong_type(key, "a string", value)
    return value


def _nonempty_text(key: str, value: object) -> str:
    text = _text(key, value)
    if not text.strip():
        raise _Invalid(f"{key} must not be empty")
    return text


def _integer(key: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(key, "an integer", value)
    if value < minimum:
        raise _Invalid(f"{key} must be >= {minimum}, got {value}")
    return value


def _number(key: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(key, "a number", value)
    number = float(value)
    if not math.isfinite(number):
        raise _Invalid(f"{key} must be a finite number")
    if number < 0 or (positive and number == 0):
        raise _Invalid(f"{key} must be {'> 0' if positive else '>= 0'}, got {value}")
    return number


def _boolean(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _wrong_type(key, "true or false", value)
    return value


def _table(key: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong_type(key, "a table", value)
    return value


def _string_table(key: str, value: object) -> dict[str, str]:
    table = _table(key, value)
    bad = [k for k, v in table.items() if not isinstance(v, str)]
    if bad:
        raise _Invalid(f"{key} values must be strings (not {', '.join(map(repr, bad))})")
    return table


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _headers(key: str, value: object) -> dict[str, str]:
    table = _string_table(key, value)
    bad_names = [name for name in table if not _HEADER_NAME.fullmatch(name)]
    if bad_names:
        raise _Invalid(f"{key}: {', '.join(map(repr, bad_names))} is not a valid header name")
    # values are not echoed: a header may carry a secret
    bad_values = [name for name, v in table.items() if "\r" in v or "\n" in v]
    if bad_values:
        raise _Invalid(f"{key}: the value of {', '.join(bad_values)} contains a line break")
    return table


def _choice(key: str, value: object, allowed: tuple[str, ...]) -> str:
    text = _text(key, value)
    if text not in allowed:
        options = " | ".join(f'"{a}"' for a in allowed)
        raise _Invalid(f"{key} must be one of {options}, got {text!r}")
    return text


def _redact_userinfo(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)


def _base_url(key: str, value: object) -> str:
    text = _text(key, value).strip()
    if text.lower() in SIM_BASE_URLS:
        return text
    try:
        parts = urlsplit(text)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        valid = valid and " " not in text and (parts.port or 1) > 0
    except ValueError:  # e.g. "http://[::1" or a non-numeric port
        valid = False
    if not valid:
        raise _Invalid(
            f"{key} must be an http(s):// URL (like https://api.tokenlab.sh/v1) or "
            f'"sim" for the built-in simulator, got {_redact_userinfo(text)!r}'
        )
    return text.rstrip("/")


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(key: str, value: object) -> str:
    text = _text(key, value)
    if not _ENV_NAME.fullmatch(text):
        # The value may be a pasted key: never echo it.
        raise _Invalid(
            f"{key} must be the NAME of an environment variable (like TOKENLAB_API_KEY), "
            "not the key itself"
        )
    return text


_API_VALUES: tuple[str, ...] = get_args(Api)
_ON_DROP_VALUES: tuple[str, ...] = get_args(OnDrop)

_Check: TypeAlias = Callable[[str, object], Any]

_RECONNECT_CHECKS: dict[str, _Check] = {
    "max_retries": lambda k, v: _integer(k, v, 0),
    "backoff_initial_s": _number,
    "backoff_max_s": _number,
    "idle_timeout_s": lambda k, v: _number(k, v, positive=True),
    "connect_timeout_s": lambda k, v: _number(k, v, positive=True),
    "on_drop": lambda k, v: _choice(k, v, _ON_DROP_VALUES),
}
_REPEAT_CHECKS: dict[str, _Check] = {
    "every_s": lambda k, v: _number(k, v, positive=True),
    "count": lambda k, v: _integer(k, v, 0),
}
_SESSION_CHECKS: dict[str, _Check] = {
    "name": _nonempty_text,
    "model": _nonempty_text,
    "prompt": _nonempty_text,
    "base_url": _base_url,
    "api_key_env": _env_name,
    "api": lambda k, v: _choice(k, v, _API_VALUES),
    "system": _text,
    "max_output_tokens": lambda k, v: _integer(k, v, 1),
    "temperature": _number,
    "background": _boolean,
    "params": _table,
    "headers": _headers,
    # repeat and reconnect are nested tables, checked key by key (see _Loader._nested)
    "repeat": _table,
    "reconnect": _table,
}
_NESTED: dict[str, dict[str, _Check]] = {"repeat": _REPEAT_CHECKS, "reconnect": _RECONNECT_CHECKS}
_REQUIRED = ("name", "model", "prompt")
_TOP_LEVEL = ("defaults", "sessions", "ui", "keymap")
_UI_KEYS = ("theme",)
_MERGED_TABLES = ("params", "headers", "reconnect")
"""Tables that [defaults] and a session merge key by key (the session wins)."""


def _unknown_key(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r}{hint}"


# --- line numbers ---------------------------------------------------------------------------


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")


class _Locator:
    """Best-effort line numbers for keys, from the raw text (tomllib keeps none)."""

    def __init__(self, text: str) -> None:
        self._lines = text.splitlines()
        # (first line, last line) per [[sessions]] table and per other top-level section
        self._sessions: list[tuple[int, int]] = []
        self._sections: dict[str, tuple[int, int]] = {}
        starts: list[tuple[int, str, bool]] = []
        for number, line in enumerate(self._lines, start=1):
            match = _HEADER.match(line)
            if match:
                starts.append((number, match.group(2).replace(" ", ""), match.group(1) == "[["))
        # keys before the first header belong to the top level ("")
        self._sections[""] = (1, starts[0][0] - 1 if starts else len(self._lines))
        owner: tuple[str, bool] | None = None
        spans: list[tuple[str, bool, int, int]] = []
        for i, (number, name, is_array) in enumerate(starts):
            end = starts[i + 1][0] - 1 if i + 1 < len(starts) else len(self._lines)
            top = name.split(".")[0]
            if is_array or owner is None or top != owner[0] or "." not in name:
                owner = (top, is_array)
                spans.append((top, is_array, number, end))
            else:  # [sessions.reconnect] continues the current table
                t, a, s, _ = spans[-1]
                spans[-1] = (t, a, s, end)
        for top, is_array, start, end in spans:
            if top == "sessions" and is_array:
                self._sessions.append((start, end))
            else:
                self._sections.setdefault(top, (start, end))

    def line(self, section: str, index: int | None, *keys: str) -> int | None:
        """The line of the first of ``keys`` found in a section (else the section header)."""
        span = (
            self._sessions[index - 1]
            if index is not None and 0 < index <= len(self._sessions)
            else self._sections.get(section)
        )
        if span is None:
            return None
        start, end = span
        for key in keys:
            pattern = re.compile(rf"""^\s*(?:[\w"'.\s-]+\.)?\s*["']?{re.escape(key)}["']?\s*=""")
            for number in range(start, end + 1):
                if pattern.match(self._lines[number - 1]):
                    return number
        return start


# --- loading ---------------------------------------------------------------------------------


class _Loader:
    """Validates one parsed file, collecting every problem."""

    def __init__(self, path: Path, text: str, environ: Mapping[str, str]) -> None:
        self.path = path
        self.environ = environ
        self.locator = _Locator(text)
        self.problems: list[ConfigProblem] = []
        self.defaults: dict[str, Any] = {}
        """The checked [defaults] values."""
        self.raw_default_keys: set[str] = set()
        """Keys present in [defaults], valid or not (a missing key is not an invalid one)."""

    def report(
        self,
        message: str,
        *,
        section: str,
        key: str | None = None,
        session: str | None = None,
        index: int | None = None,
    ) -> None:
        leaf = key.rsplit(".", 1)[-1] if key else None
        keys = [k for k in (leaf, key.split(".")[0] if key else None) if k]
        line = self.locator.line(section, index, *keys)
        shown = key if section in ("sessions", "") or key is None else f"{section}.{key}"
        self.problems.append(ConfigProblem(message, session, shown, line, index=index))

    def load(self, data: dict[str, Any]) -> AppConfig:
        for key in data:
            if key not in _TOP_LEVEL:
                self.report(_unknown_key(key, _TOP_LEVEL), section="", key=key)
        self.defaults = self._defaults(data.get("defaults", {}))
        ui = self._ui(data.get("ui", {}))
        keymap = self._keymap(data.get("keymap", {}))
        sessions = self._sessions(data.get("sessions", []))
        return AppConfig(path=self.path, sessions=sessions, ui=ui, keymap=keymap)

    def _checked(
        self,
        raw: dict[str, Any],
        *,
        section: str,
        session: str | None = None,
        index: int | None = None,
    ) -> dict[str, Any]:
        """The valid keys of a session or [defaults] table, converted; reports the rest."""
        out: dict[str, Any] = {}
        for key, value in raw.items():
            check = _SESSION_CHECKS.get(key)
            if check is None:
                self.report(
                    _unknown_key(key, _SESSION_CHECKS),
                    section=section,
                    key=key,
                    session=session,
                    index=index,
                )
                continue
            try:
                converted = check(key, value)
            except _Invalid as exc:
                self.report(str(exc), section=section, key=key, session=session, index=index)
                continue
            if key in _NESTED:
                converted = self._nested(key, converted, section, session, index)
            out[key] = converted
        return out

    def _nested(
        self, key: str, table: dict[str, Any], section: str, session: str | None, index: int | None
    ) -> dict[str, Any]:
        checks = _NESTED[key]
        if key == "repeat" and "every_s" not in table:
            self.report(
                "repeat needs every_s (seconds between runs)",
                section=section,
                key="repeat.every_s",
                session=session,
                index=index,
            )
        out: dict[str, Any] = {}
        for sub, value in table.items():
            dotted = f"{key}.{sub}"
            if sub not in checks:
                message = _unknown_key(sub, checks)
            else:
                try:
                    out[sub] = checks[sub](dotted, value)
                    continue
                except _Invalid as exc:
                    message = str(exc)
            self.report(message, section=section, key=dotted, session=session, index=index)
        return out

    def _defaults(self, raw: object) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.report(str(_wrong_type("defaults", "a table", raw)), section="", key="defaults")
            return {}
        if "name" in raw:
            self.report(
                "name cannot be set in [defaults]: every session needs its own unique name",
                section="defaults",
                key="name",
            )
            raw = {k: v for k, v in raw.items() if k != "name"}
        self.raw_default_keys = set(raw)
        return self._checked(raw, section="defaults")

    def _ui(self, raw: object) -> UiConfig:
        if not isinstance(raw, dict):
            self.report(str(_wrong_type("ui", "a table", raw)), section="", key="ui")
            return UiConfig()
        theme: str | None = None
        for key, value in raw.items():
            if key not in _UI_KEYS:
                self.report(_unknown_key(key, _UI_KEYS), section="ui", key=key)
                continue
            try:
                theme = _nonempty_text(key, value)
            except _Invalid as exc:
                self.report(str(exc), section="ui", key=key)
        return UiConfig(theme=theme)

    def _keymap(self, raw: object) -> dict[str, str]:
        if not isinstance(raw, dict):
            self.report(str(_wrong_type("keymap", "a table", raw)), section="", key="keymap")
            return {}
        out: dict[str, str] = {}
        for key, value in raw.items():
            try:
                out[key] = _nonempty_text(key, value)
            except _Invalid as exc:
                self.report(str(exc), section="keymap", key=key)
        return out

    def _sessions(self, raw: object) -> tuple[SessionConfig, ...]:
        if not isinstance(raw, list) or not all(isinstance(s, dict) for s in raw):
            self.report(
                "sessions must be an array of tables: write each one as [[sessions]]",
                section="",
                key="sessions",
            )
            return ()
        if not raw:
            self.report(
                "no sessions: add at least one [[sessions]] table with name, model and prompt",
                section="",
                key="sessions",
            )
        seen: dict[str, int] = {}
        sessions: list[SessionConfig] = []
        for index, table in enumerate(raw, start=1):
            name = table.get("name")
            label = name if isinstance(name, str) and name.strip() else None
            values = self._checked(table, section="sessions", session=label, index=index)
            session = self._session(index, label, table, values)
            if label is not None:
                if label in seen:
                    self.report(
                        f"duplicate name {label!r} (also session #{seen[label]}): "
                        "names must be unique",
                        section="sessions",
                        key="name",
                        session=label,
                        index=index,
                    )
                seen.setdefault(label, index)
            if session is not None:
                sessions.append(session)
        return tuple(sessions)

    def _session(
        self, index: int, label: str | None, raw: dict[str, Any], values: dict[str, Any]
    ) -> SessionConfig | None:
        """Merge a checked session over the checked defaults and check the whole."""

        def problem(message: str, key: str) -> None:
            self.report(message, section="sessions", key=key, session=label, index=index)

        defaults = self.defaults
        merged = {**defaults, **values}
        for key in _MERGED_TABLES:
            if key in defaults and key in values:
                merged[key] = {**defaults[key], **values[key]}
        for key in _REQUIRED:
            if key not in raw and key not in self.raw_default_keys:
                problem(f"missing required key {key!r}", key)
        reconnect = ReconnectPolicy(**merged.pop("reconnect", {}))
        if reconnect.backoff_initial_s > reconnect.backoff_max_s:
            problem(
                "reconnect.backoff_initial_s must not be greater than reconnect.backoff_max_s",
                "reconnect.backoff_initial_s",
            )
        repeat_table = merged.pop("repeat", None)
        repeat = Repeat(**repeat_table) if repeat_table and "every_s" in repeat_table else None
        if merged.get("background") and merged.get("api", "responses") != "responses":
            problem(
                'background is only valid with api = "responses" (chat has no background mode)',
                "background",
            )
        api_key_env = merged.get("api_key_env")
        base_url = merged.get("base_url", "sim")
        if (
            api_key_env is not None
            and base_url.strip().lower() not in SIM_BASE_URLS
            and not self.environ.get(api_key_env)
        ):
            problem(
                f"environment variable {api_key_env} is not set (named by api_key_env); "
                'export it, or use base_url = "sim" for the simulator',
                "api_key_env",
            )
        if not all(key in merged for key in _REQUIRED):
            return None  # the cause has been reported
        return SessionConfig(**merged, reconnect=reconnect, repeat=repeat)


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


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> AppConfig:
    """Read and validate a sessions file; raise :class:`ConfigError` listing every problem.

    ``environ`` (default ``os.environ``) is only used to check that the variables named by
    ``api_key_env`` exist for sessions that talk to a real server; no value is kept or shown.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, [ConfigProblem("file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(path, [ConfigProblem(f"cannot read the file: {reason}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [_syntax_problem(exc, text)]) from None
    loader = _Loader(path, text, os.environ if environ is None else environ)
    config = loader.load(data)
    if loader.problems:
        # in file order; problems without a line (inline tables) first, in the order found
        raise ConfigError(path, sorted(loader.problems, key=lambda p: p.line or 0))
    return config


def example_config_path() -> Path:
    """The shipped ``sessions.example.toml`` (inside the wheel, or at the repository root)."""
    package = Path(__file__).resolve().parent
    for candidate in (
        package / "_data" / "sessions.example.toml",
        package.parent / "sessions.example.toml",
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


_SESSION_DEFAULTS = SessionConfig(name="", model="", prompt="")


def _session_table(session: SessionConfig) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for f in fields(SessionConfig):
        value = getattr(session, f.name)
        if f.name in _REQUIRED:
            table[f.name] = value
        elif f.name == "reconnect":
            default = ReconnectPolicy()
            changed = {
                r.name: getattr(value, r.name)
                for r in fields(ReconnectPolicy)
                if getattr(value, r.name) != getattr(default, r.name)
            }
            if changed:
                table["reconnect"] = changed
        elif f.name == "repeat":
            if value is not None:
                table["repeat"] = {"every_s": value.every_s, "count": value.count}
        elif value is not None and value != getattr(_SESSION_DEFAULTS, f.name):
            table[f.name] = dict(value) if isinstance(value, Mapping) else value
    return table


def dump_config(config: AppConfig) -> str:
    """The config as TOML (tomli-w) that :func:`load_config` reads back to an equal config.

    Defaults are written out into every session (``[defaults]`` is not reconstructed) and
    values equal to the built-in defaults are left out.
    """
    import tomli_w

    document: dict[str, Any] = {}
    if config.ui.theme is not None:
        document["ui"] = {"theme": config.ui.theme}
    if config.keymap:
        document["keymap"] = dict(config.keymap)
    document["sessions"] = [_session_table(s) for s in config.sessions]
    return str(tomli_w.dumps(document))
