"""Sessions file (TOML) -> frozen dataclasses.

Headless: never imports Textual or Rich. ``load_config`` validates everything and reports
every problem at once in one :class:`ConfigError` that names the file, the session and the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from tui.stream.events import Api

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
    """Run the session again every ``every_s`` seconds, ``count`` times (0 = until stopped)."""

    every_s: float
    count: int = 0


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
    session: str | None = None
    key: str | None = None
    line: int | None = None


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
            parts = [where + (f":{p.line}" if p.line else "")]
            if p.session is not None:
                parts.append(f"session {p.session!r}")
            if p.key is not None:
                parts.append(f"key {p.key!r}")
            lines.append("  " + ", ".join(parts) + ": " + p.message)
        return "\n".join(lines)


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> AppConfig:
    """Read and validate a sessions file; raise :class:`ConfigError` listing every problem."""
    raise NotImplementedError  # implemented in tui/config_loader (see ARCHITECTURE.md)
