"""The sessions file's schema: frozen dataclasses whose field types and ``Annotated`` rules are
also its validation (see :mod:`tui.config.validate`).

Adding a key means adding one field here (with its docstring); the loader, the checks, the
"did you mean" suggestions and the line numbers follow from it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias
from urllib.parse import urlsplit

from tui.config.conversation import Message, message_problems, prompts
from tui.config.validate import MERGED, Above, AtLeast, Hint, Invalid, Replaces, not_blank
from tui.vocab import Api, HistoryMode

OnDrop: TypeAlias = Literal["resume", "restart", "fail"]

SIM_BASE_URLS = frozenset({"sim", "sim://", "builtin"})
"""``base_url`` spellings that mean: the built-in simulator, started in-process on demand."""


def is_simulator_url(base_url: str) -> bool:
    """True when ``base_url`` means the built-in simulator."""
    return base_url.strip().lower() in SIM_BASE_URLS


def _redact_userinfo(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)


def sim_or_http_url(key: str, value: str) -> str:
    """Rule: a simulator spelling (kept as written) or an http(s) URL (without a trailing /)."""
    text = value.strip()
    if is_simulator_url(text):
        return text
    try:
        parts = urlsplit(text)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        valid = valid and " " not in text and (parts.port or 1) > 0
    except ValueError:  # e.g. "http://[::1" or a non-numeric port
        valid = False
    if not valid:
        raise Invalid(
            f"{key} must be an http(s):// URL (like https://api.tokenlab.sh/v1) or "
            f'"sim" for the built-in simulator, got {_redact_userinfo(text)!r}'
        )
    return text.rstrip("/")


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_var_name(key: str, value: str) -> str:
    """Rule: the name of an environment variable (never echoes the value: it may be a key)."""
    if not _ENV_NAME.fullmatch(value):
        raise Invalid(
            f"{key} must be the NAME of an environment variable (like TOKENLAB_API_KEY), "
            "not the key itself"
        )
    return value


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def header_fields(key: str, value: Mapping[str, str]) -> Mapping[str, str]:
    """Rule: valid header names, values without line breaks (values are never echoed)."""
    bad_names = [name for name in value if not _HEADER_NAME.fullmatch(name)]
    if bad_names:
        raise Invalid(f"{key}: {', '.join(map(repr, bad_names))} is not a valid header name")
    bad_values = [name for name, v in value.items() if "\r" in v or "\n" in v]
    if bad_values:
        raise Invalid(f"{key}: the value of {', '.join(bad_values)} contains a line break")
    return value


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How a session reacts to failures before the first byte and to drops and stalls."""

    max_retries: Annotated[int, AtLeast(0)] = 4
    """Retries per run, before the first byte or after a drop (attempts = retries + 1)."""
    backoff_initial_s: Annotated[float, AtLeast(0)] = 0.5
    """First backoff delay; doubles per retry, with up to 25% jitter taken off."""
    backoff_max_s: Annotated[float, AtLeast(0)] = 8.0
    """Upper bound of the backoff delay."""
    idle_timeout_s: Annotated[float, Above(0)] = 60.0
    """No bytes at all (keep-alive comments count) for this long = a stalled stream. tokentop
    watches the bytes it receives itself (cut at most 25% later), whatever the transport does."""
    connect_timeout_s: Annotated[float, Above(0)] = 10.0
    """Time allowed to connect. The complete response headers must arrive within
    ``connect_timeout_s + idle_timeout_s`` of the request (a server that trickles them fails)."""
    first_token_timeout_s: Annotated[float | None, Above(0)] = 300.0
    """No content (text, reasoning or a tool call; comments and keep-alives do not count)
    within this long of an attempt's request = a stalled stream. Generous by default: a
    reasoning model that hides its reasoning sends no delta while it thinks, which can take
    minutes at high effort, and a queued background response starts late; the point is that
    keep-alives alone cannot hold a run forever."""
    max_duration_s: Annotated[float | None, Above(0)] = None
    """The longest a whole run may take, retries and waits included; then it fails.
    None (the default): no limit, as a long answer at a slow rate may rightly take long."""
    on_drop: OnDrop = "resume"
    """After a drop or stall: ``resume`` (falls back to ``restart`` when resuming is
    impossible), ``restart`` (a new attempt), or ``fail``."""


@dataclass(frozen=True, slots=True)
class Repeat:
    """Run the session periodically: a new run starts every ``every_s`` seconds (or as soon as the
    previous one ended, when it took longer), ``count`` runs in all (0 = until stopped)."""

    every_s: Annotated[float, Above(0), Hint("seconds between runs")]
    """Seconds from the start of one run to the start of the next (> 0)."""
    count: Annotated[int, AtLeast(0)] = 0
    """Total number of runs, the first one included; 0 = until stopped."""


@dataclass(frozen=True, slots=True)
class Price:
    """What a session's model costs, in US dollars per million tokens: it replaces the list
    price tokentop knows from the genai-prices package (a session's table replaces
    ``[defaults]``'s)."""

    input_per_mtok: Annotated[float, AtLeast(0), Hint("USD per million input tokens")]
    """Input (prompt) tokens."""
    output_per_mtok: Annotated[float, AtLeast(0), Hint("USD per million output tokens")]
    """Output tokens (reasoning tokens included, as servers count them)."""
    cached_input_per_mtok: Annotated[float | None, AtLeast(0)] = None
    """Input tokens served from the server's prompt cache (None: priced as input)."""


def argv(key: str, value: tuple[str, ...]) -> tuple[str, ...]:
    """Rule: a command as an argv list (a program and its arguments; never run by a shell)."""
    if not value or not value[0].strip():
        raise Invalid(f'{key} must name a program first, like ["notify-send", "tokentop"]')
    return value


@dataclass(frozen=True, slots=True)
class AlertRules:
    """When a session's finished runs raise an alert (a session's ``alerts`` table, merged key
    by key over ``[defaults.alerts]``). No rule is set by default: nothing alerts."""

    ttft_ms: Annotated[float | None, Above(0)] = None
    """A run whose time to first token is above this many milliseconds."""
    min_tokens_per_s: Annotated[float | None, Above(0)] = None
    """A completed run that streamed slower than this many output tokens per second."""
    max_duration_s: Annotated[float | None, Above(0)] = None
    """A run that took longer than this many seconds, start to end."""
    on_failure: bool = False
    """Every failed run (a cancelled run never alerts)."""
    consecutive_failures: Annotated[int | None, AtLeast(1)] = None
    """This many failed runs in a row (once per streak: the next alert needs a success first)."""
    on_alert: Annotated[tuple[str, ...] | None, argv] = None
    """A command run on every alert: an argv list, never a shell. It gets the alert in
    ``TOKENTOP_ALERT_*`` environment variables (session, metric, value, threshold, ...)."""
    command_timeout_s: Annotated[float, Above(0)] = 10.0
    """``on_alert`` commands still running after this long are killed."""


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """One streaming session as described in the sessions file (after defaults applied)."""

    name: Annotated[str, not_blank]
    """Unique session name."""
    model: Annotated[str, not_blank]
    """Model name sent to the server."""
    prompt: Annotated[str, not_blank, Replaces(("turns",))] = ""
    """``input`` (responses) or the user message (chat) of a one-turn session (``""`` when
    ``turns`` is given: see :attr:`script`)."""
    turns: Annotated[tuple[str, ...], prompts, Replaces(("prompt",))] = ()
    """A scripted conversation: the prompts of its turns, sent one after another, each with
    the history so far (instead of ``prompt``; a session's own ``prompt`` or ``turns``
    replaces the other one of ``[defaults]``; both in one table are an error)."""
    messages: tuple[Message, ...] = ()
    """Seeded history (few-shot), sent before turn 1 of every conversation."""
    history: HistoryMode = "auto"
    """How a Responses follow-up carries the history: ``auto`` (``previous_response_id``
    while the server keeps responses, else the earlier turns as input items), ``server``
    (only ``previous_response_id``) or ``client`` (always the items). Chat Completions
    always sends the whole ``messages`` list."""
    base_url: Annotated[str, sim_or_http_url] = "sim"
    """Server base URL including ``/v1``, or ``sim`` for the built-in simulator."""
    api_key_env: Annotated[str | None, env_var_name] = None
    """Name of the environment variable that holds the API key (never the key itself)."""
    api: Api = "responses"
    """``responses`` (POST /v1/responses) or ``chat`` (POST /v1/chat/completions)."""
    system: str | None = None
    """``instructions`` (responses) or a system message (chat)."""
    max_output_tokens: Annotated[int | None, AtLeast(1)] = None
    """``max_output_tokens`` (responses) or ``max_tokens`` (chat)."""
    temperature: Annotated[float | None, AtLeast(0)] = None
    """Sampling temperature."""
    background: bool = False
    """Responses only: create a background response, so that a dropped stream can resume."""
    params: Annotated[Mapping[str, Any], MERGED] = field(default_factory=dict)
    """Merged into the request body as is; merged key by key over ``[defaults]``'s."""
    headers: Annotated[Mapping[str, str], header_fields, MERGED] = field(default_factory=dict)
    """Extra request headers; merged key by key over ``[defaults]``'s."""
    repeat: Repeat | None = None
    """Run again periodically, for monitoring (a session's table replaces ``[defaults]``'s)."""
    reconnect: Annotated[ReconnectPolicy, MERGED] = field(default_factory=ReconnectPolicy)
    """Retry, resume and stall policy; merged key by key over ``[defaults]``'s."""
    alerts: Annotated[AlertRules, MERGED] = field(default_factory=AlertRules)
    """Alert thresholds; merged key by key over ``[defaults.alerts]``."""
    price: Price | None = None
    """The model's price for compare rounds' cost per run (None: the genai-prices list price
    where the model and provider are known, else unknown)."""

    @property
    def is_simulated(self) -> bool:
        """True when this session talks to the built-in simulator."""
        return is_simulator_url(self.base_url)

    @property
    def script(self) -> tuple[str, ...]:
        """The prompts of a conversation's turns: ``turns``, else the one ``prompt``."""
        return self.turns or (self.prompt,)

    @property
    def server_keeps(self) -> bool:
        """False when ``params`` sends ``store = false`` (Responses: the server keeps no
        response, so there is no ``previous_response_id`` to continue from)."""
        return self.params.get("store") is not False

    def api_key(self) -> str | None:
        """The API key from the environment, read at request time (never stored)."""
        if self.api_key_env is None:
            return None
        return os.environ.get(self.api_key_env)


def session_conflicts(settings: Mapping[str, Any]) -> Iterator[tuple[tuple[str, ...], str]]:
    """(key path, message) for each pair of a session's settings that contradict each other.

    ``settings`` holds every key of :class:`SessionConfig` with a valid value or its default
    (``reconnect`` built), as :func:`tui.config.validate.settings` returns them.
    """
    reconnect: ReconnectPolicy = settings["reconnect"]
    if reconnect.backoff_initial_s > reconnect.backoff_max_s:
        yield (
            ("reconnect", "backoff_initial_s"),
            "reconnect.backoff_initial_s must not be greater than reconnect.backoff_max_s",
        )
    if settings["background"] and settings["api"] != "responses":
        yield (
            ("background",),
            'background is only valid with api = "responses" (chat has no background mode)',
        )
    if settings["prompt"] and settings["turns"]:
        yield (
            ("turns",),
            "prompt and turns both say what to send: give prompt for one turn, or turns "
            "for a scripted conversation (the prompt as its first turn)",
        )
    elif not settings["prompt"] and not settings["turns"]:
        yield (("prompt",), "missing required key 'prompt' (or turns, for a conversation)")
    if settings["history"] == "server":
        if settings["api"] != "responses":
            yield (
                ("history",),
                'history = "server" needs api = "responses": Chat Completions keeps no '
                "state on the server (it always sends the whole messages list)",
            )
        elif settings["params"].get("store") is False:
            yield (
                ("history",),
                'history = "server" continues from previous_response_id, but params.store = '
                'false keeps no response on the server: use "auto" or "client"',
            )
    yield from message_problems(settings["messages"])


@dataclass(frozen=True, slots=True)
class UiConfig:
    """Dashboard preferences (``[ui]`` table)."""

    theme: Annotated[str | None, not_blank] = None
    """Theme name (a shipped theme, a user theme, or a Textual built-in)."""
    confirm_quit: bool = True
    """Ask before quitting while runs are active or repeats are scheduled."""
    alert_bell: bool = True
    """Ring the terminal bell when an alert fires."""
    alert_notify: bool = True
    """Send a desktop notification through the terminal (OSC 9 / OSC 777) on an alert."""


KeepRawEvents: TypeAlias = Literal["all", "failed", "none"]


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """What the store keeps, and for how long (``[store]`` table)."""

    keep_days: Annotated[float | None, Above(0)] = None
    """Runs that started more than this many days ago are deleted when a writer opens the
    database (None, the default: runs are kept until ``tokentop prune``)."""
    keep_raw_events: KeepRawEvents = "failed"
    """Which runs keep every raw SSE event as received (most of a database's bytes): ``all``,
    ``failed`` (runs that did not complete, for debugging them), or ``none``. The text, the
    per-delta timing and the metrics of every run are kept either way."""


KeyBinding: TypeAlias = Annotated[str, not_blank]
"""A ``[keymap]`` value: the key(s) of one binding."""


@dataclass(frozen=True, slots=True)
class AppConfig:
    """A whole sessions file."""

    path: Path | None
    """Where it was read from (None for a config built in code)."""
    sessions: tuple[SessionConfig, ...]
    ui: UiConfig = field(default_factory=UiConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    keymap: Mapping[str, str] = field(default_factory=dict)
    """Binding id -> key(s), like posting's ``[keymap]`` (e.g. ``cancel_run = "ctrl+x"``)."""

    def session(self, name: str) -> SessionConfig:
        """The session called ``name`` (KeyError when there is none)."""
        for s in self.sessions:
            if s.name == name:
                return s
        raise KeyError(name)
