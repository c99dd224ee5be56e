"""Fault and timing selection for the simulator.

A request picks its behaviour with headers (any API, any combination):

``X-Sim-Fault``: comma-separated items ``name[=value][*K]``. ``*K`` means "only on the first K
attempts" of that scenario; without it, connection faults (``drop``, ``stall``, ``status``,
``html``, ``not_sse``) apply to the first attempt only and framing quirks apply always.
Attempts are counted per scenario key: the ``X-Sim-Key`` header if given, else a hash of the
request body (a resume ``GET`` counts against the key of the response it resumes); a request
of turn 2 or later of a conversation counts under that key plus ``#tN``, so a fault on the
first attempt happens once in every turn.
Header items are added to the model preset's items (a header item replaces a preset item of
the same name). Unknown item names are a 400 error, so a typo never passes silently.

=====================  ==========================================================
item                   effect
=====================  ==========================================================
``drop=N``             close the socket abruptly after N events (no terminal chunk)
``stall=N``            after N events send nothing more (connection stays open)
``keepalive=S``        send ``: keep-alive`` comments after S seconds without a write (also
                       while waiting for the first token and while stalled)
``status=CODE``        answer HTTP CODE with a JSON error body (nested ``error`` shape)
``retry_after=S``      with ``status``: ``Retry-After: S`` header (seconds)
``retry_after_ms=MS``  with ``status``: ``retry-after-ms: MS`` header
``html``               answer 502 with an HTML page (``text/html``)
``not_sse``            answer 200 with ``application/json`` instead of an event stream
``bad_json=N``         the data of event N (1-based) is malformed JSON
``error=N``            in-band error after N events (chat: ``data: {"error": {...}}``;
                       responses: an ``error`` event)
``error_shape=flat``   responses ``error`` event in the documented flat shape (default nested)
``fail=N``             responses: ``response.failed`` after N events (chat: same as error)
``bom``                a leading UTF-8 BOM
``crlf`` / ``cr``      CRLF / CR-only line endings
``comments``           comment lines between events
``ids``                ``id:`` on every event, keep-alive comments in between; POST with
                       ``Last-Event-ID`` continues after that event
``multiline``          data JSON spread over several ``data:`` lines
``split``              every write split at arbitrary byte positions (inside UTF-8
                       characters and CRLFs), pieces flushed separately
``no_done``            end cleanly with no ``[DONE]`` and no terminal event
``content_filter``     end with ``content_filter`` (chat) / incomplete content_filter
``empty_stop``         ``stop`` with no content at all
``stateless=400|404``  server state: a gateway that keeps nothing. ``previous_response_id``
                       gets 400 ``unsupported_parameter`` or 404
                       ``previous_response_not_found``; responses are not retrievable
                       (background ones still are, for their resumes)
``ignore_previous``    server state: a gateway that accepts ``previous_response_id`` and
                       ignores it (aimock and ``transformers serve`` do): the answer has no
                       history and its response objects name no previous response
``context=N``          server state: a context window of N tokens; a longer request (its
                       input tokens: the whole history) gets 400 ``context_length_exceeded``
``turn=N``             the other items (but the server-state ones) apply only to the
                       requests of turn N of a conversation (1: a first turn), so a drop
                       can hit turn 2 alone; other turns run clean
=====================  ==========================================================

The two server-state items apply to every attempt (``*K`` is ignored) and on both APIs.

Details fixed by the implementation:

- Events are counted per HTTP response, 1-based, in wire order (chat: every ``data:`` chunk
  including the role chunk and ``[DONE]``; responses: every event). ``drop=0`` drops right
  after the headers.
- Event ids (``ids``) are the event's index in the whole stream, starting at 0 (responses:
  equal to ``sequence_number``); ``Last-Event-ID: K`` continues with event ``K + 1``.
- ``no_done``: chat ends after the usage chunk (or the ``finish_reason`` chunk) without
  ``data: [DONE]``; responses ends without the terminal ``response.*`` event.
- After an in-band ``error`` / ``fail`` the stream ends (chat: no ``[DONE]``). An N past the
  end puts the error just before the terminal event / ``[DONE]``, so it always happens.

``X-Sim-Timing``: ``ttft=S,tps=R,jitter=J,tokens=N,seed=K`` (time to first token in seconds,
tokens per second, relative jitter 0..1, output length in tokens, seed). ``tps=0`` sends as
fast as possible. Defaults come from the model preset.

Timing details: token k leaves at ``ttft + k gaps``, each gap ``1/tps`` times a uniform factor
in ``[1 - jitter, 1 + jitter]`` (so the mean rate stays ``tps``); ``response.created`` and
``response.in_progress`` leave at once; every other event rides with the token next to it;
events due at the same wake-up go out as one write. A non-streaming answer is sent when its
schedule ends. Reasoning (``reasoning.summary`` / ``reasoning_effort`` / ``sim-think``) adds
``min(48, tokens // 4)`` (at least 4) reasoning tokens before the answer; a cap
(``max_output_tokens`` / ``max_tokens``) counts reasoning tokens too.

Model presets (the model name, case-insensitive; any other name gets the ``sim`` preset):

=====================  ==========================================================
``sim``                ttft 0.25 s, 60 tok/s, jitter 0.2, 160 tokens
``sim-fast``           ttft 0.05 s, 400 tok/s, jitter 0.1, 400 tokens
``sim-slow``           ttft 1.5 s, 8 tok/s, jitter 0.3, 120 tokens
``sim-flaky``          ``sim`` + ``drop=40`` on the first attempt
``sim-429``            ``sim`` + ``status=429`` on the first attempt, ``retry_after=1``
``sim-broken``         ``sim`` + ``html`` on every attempt (a 502 page, always)
``sim-filter``         ``sim`` + ``content_filter``
``sim-tools``          ``sim`` that calls a tool (``get_weather``) even when none is offered
``sim-think``          ``sim`` that reasons (with a summary) even when not asked
``sim-stateless-400``  ``sim`` + ``stateless=400`` (``previous_response_id``: 400)
``sim-stateless-404``  ``sim`` + ``stateless=404`` (``previous_response_id``: 404)
``sim-small-context``  ``sim`` + ``context=320``: turns 1 and 2 of a conversation with the
                       default 160-token answers fit, turn 3 (about 380-500 tokens) does not
``sim-no-history``     ``sim`` + ``ignore_previous`` (a gateway that takes
                       ``previous_response_id`` and keeps nothing, silently)
=====================  ==========================================================

Every other preset has a context window of ``DEFAULT_CONTEXT`` (128,000) tokens, which also
bounds what a stored conversation chain holds.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Final

CONNECTION_FAULTS: Final = frozenset({"drop", "stall", "status", "html", "not_sse"})
"""Faults that apply to the first attempt only unless ``*K`` says otherwise."""

INT_FAULTS: Final = frozenset(
    {"drop", "stall", "status", "bad_json", "error", "fail", "stateless", "context", "turn"}
)
FLOAT_FAULTS: Final = frozenset({"keepalive", "retry_after", "retry_after_ms"})
FLAG_FAULTS: Final = frozenset(
    {
        "html",
        "not_sse",
        "bom",
        "crlf",
        "cr",
        "comments",
        "ids",
        "multiline",
        "split",
        "no_done",
        "content_filter",
        "empty_stop",
        "ignore_previous",
    }
)
STR_FAULTS: Final = frozenset({"error_shape"})
ALL_FAULTS: Final = INT_FAULTS | FLOAT_FAULTS | FLAG_FAULTS | STR_FAULTS

ALWAYS: Final = 1 << 62
"""``*K`` value meaning "on every attempt"."""
DEFAULT_CONTEXT: Final = 128_000
"""The context window (tokens) of a preset without ``context=N``."""
STATELESS_STATUSES: Final = (400, 404)


class SimSpecError(ValueError):
    """An ``X-Sim-Fault`` / ``X-Sim-Timing`` header that cannot be understood."""


@dataclass(frozen=True, slots=True)
class FaultItem:
    """One parsed ``name[=value][*K]`` item."""

    name: str
    value: float | int | str | None
    max_attempts: int
    """Applies on attempts 1..max_attempts."""


@dataclass(frozen=True, slots=True)
class Timing:
    """The generation schedule of one response."""

    ttft: float = 0.25
    """Seconds from the request to the first token."""
    tps: float = 60.0
    """Tokens per second after the first token; 0 = as fast as possible."""
    jitter: float = 0.2
    """Relative jitter of every inter-token gap (0..1); the mean gap stays 1/tps."""
    tokens: int = 160
    """Output length in tokens (before any ``max_output_tokens`` / ``max_tokens`` cap)."""
    seed: int | None = None
    """Seed override (None = the simulator's seed)."""


@dataclass(frozen=True, slots=True)
class Preset:
    """Defaults chosen by a model name."""

    timing: Timing
    faults: tuple[FaultItem, ...] = ()
    tools: bool = False
    """Call a tool even when the request offers none (a default ``get_weather``)."""
    reasoning: bool = False
    """Reason (with a summary) even when the request does not ask for it."""


def _always(name: str, value: float | int | str | None = None) -> FaultItem:
    return FaultItem(name, value, ALWAYS)


PRESETS: Final[dict[str, Preset]] = {
    "sim": Preset(Timing()),
    "sim-fast": Preset(Timing(ttft=0.05, tps=400.0, jitter=0.1, tokens=400)),
    "sim-slow": Preset(Timing(ttft=1.5, tps=8.0, jitter=0.3, tokens=120)),
    "sim-flaky": Preset(Timing(), (FaultItem("drop", 40, 1),)),
    "sim-429": Preset(
        Timing(), (FaultItem("status", 429, 1), FaultItem("retry_after", 1.0, ALWAYS))
    ),
    "sim-broken": Preset(Timing(), (_always("html"),)),
    "sim-filter": Preset(Timing(), (_always("content_filter"),)),
    "sim-tools": Preset(Timing(), tools=True),
    "sim-think": Preset(Timing(), reasoning=True),
    "sim-stateless-400": Preset(Timing(), (_always("stateless", 400),)),
    "sim-stateless-404": Preset(Timing(), (_always("stateless", 404),)),
    "sim-small-context": Preset(Timing(), (_always("context", 320),)),
    "sim-no-history": Preset(Timing(), (_always("ignore_previous"),)),
}
DEFAULT_PRESET: Final = PRESETS["sim"]


def preset_for(model: str) -> Preset:
    """The preset of a model name (the default preset for any unknown name)."""
    return PRESETS.get(model.strip().lower(), DEFAULT_PRESET)


def _number(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SimSpecError(f"{name}: {raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise SimSpecError(f"{name}: {raw!r} must be a finite number >= 0")
    return value


def parse_fault_header(header: str | None) -> tuple[FaultItem, ...]:
    """Parse an ``X-Sim-Fault`` header value (see the module docstring)."""
    if not header or not header.strip():
        return ()
    items: list[FaultItem] = []
    for raw_item in header.split(","):
        text = raw_item.strip()
        if not text:
            continue
        max_attempts: int | None = None
        if "*" in text:
            text, _, k = text.rpartition("*")
            max_attempts = int(_number("*K", k.strip()))
            text = text.strip()
        name, eq, raw_value = text.partition("=")
        name = name.strip().lower()
        raw_value = raw_value.strip()
        if name not in ALL_FAULTS:
            raise SimSpecError(f"unknown fault {name!r}")
        value: float | int | str | None
        if name in INT_FAULTS:
            if not eq:
                raise SimSpecError(f"{name} needs a value ({name}=N)")
            value = int(_number(name, raw_value))
            if name == "stateless" and value not in STATELESS_STATUSES:
                raise SimSpecError("stateless must be 400 or 404")
        elif name in FLOAT_FAULTS:
            if not eq:
                raise SimSpecError(f"{name} needs a value ({name}=S)")
            value = _number(name, raw_value)
        elif name in STR_FAULTS:
            if raw_value not in ("flat", "nested"):
                raise SimSpecError(f"{name} must be flat or nested")
            value = raw_value
        else:
            if eq:
                raise SimSpecError(f"{name} takes no value")
            value = None
        if max_attempts is None:
            max_attempts = 1 if name in CONNECTION_FAULTS else ALWAYS
        items.append(FaultItem(name, value, max_attempts))
    return tuple(items)


def parse_timing_header(header: str | None, base: Timing) -> Timing:
    """Apply an ``X-Sim-Timing`` header value to ``base`` (the preset's timing)."""
    if not header or not header.strip():
        return base
    timing = base
    for raw_item in header.split(","):
        text = raw_item.strip()
        if not text:
            continue
        name, eq, raw_value = text.partition("=")
        name = name.strip().lower()
        if not eq:
            raise SimSpecError(f"timing item {name!r} needs a value")
        value = _number(name, raw_value.strip())
        if name == "ttft":
            timing = replace(timing, ttft=value)
        elif name == "tps":
            timing = replace(timing, tps=value)
        elif name == "jitter":
            timing = replace(timing, jitter=min(value, 1.0))
        elif name == "tokens":
            timing = replace(timing, tokens=int(value))
        elif name == "seed":
            timing = replace(timing, seed=int(value))
        else:
            raise SimSpecError(f"unknown timing item {name!r}")
    return timing


@dataclass(frozen=True, slots=True)
class FaultSet:
    """The faults active on one attempt, with typed accessors."""

    items: dict[str, FaultItem] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        """True when fault ``name`` is active."""
        return name in self.items

    def int_of(self, name: str) -> int | None:
        """The integer value of an active fault, else None."""
        item = self.items.get(name)
        if item is None or item.value is None or isinstance(item.value, str):
            return None
        return int(item.value)

    def float_of(self, name: str) -> float | None:
        """The numeric value of an active fault, else None."""
        item = self.items.get(name)
        if item is None or item.value is None or isinstance(item.value, str):
            return None
        return float(item.value)

    def str_of(self, name: str) -> str | None:
        """The string value of an active fault, else None."""
        item = self.items.get(name)
        return item.value if item is not None and isinstance(item.value, str) else None

    @property
    def names(self) -> frozenset[str]:
        """Names of the active faults."""
        return frozenset(self.items)


def active_faults(items: tuple[FaultItem, ...], attempt: int, turn: int = 1) -> FaultSet:
    """The items that apply on ``attempt`` (1-based) of a request of turn ``turn``; later
    items replace earlier ones. With ``turn=N`` a request of another turn gets none."""
    merged: dict[str, FaultItem] = {}
    for item in items:
        merged[item.name] = item
    only = merged.get("turn")
    if only is not None and only.value != turn:
        return FaultSet()
    return FaultSet({n: i for n, i in merged.items() if attempt <= i.max_attempts})


@dataclass(frozen=True, slots=True)
class ServerState:
    """What the simulated server keeps and accepts (the ``stateless`` and ``context`` items)."""

    stateless: int | None = None
    """400 or 404: the answer to any ``previous_response_id`` (None: responses are kept)."""
    context: int = DEFAULT_CONTEXT
    """The context window in tokens."""
    ignores_previous: bool = False
    """``previous_response_id`` is accepted and ignored (no history, no echo of it)."""


def server_state(items: tuple[FaultItem, ...]) -> ServerState:
    """The server state of a request's items (later items replace earlier ones)."""
    merged = FaultSet({item.name: item for item in items})
    stateless = merged.int_of("stateless")
    context = merged.int_of("context")
    return ServerState(
        stateless,
        DEFAULT_CONTEXT if context is None else context,
        merged.has("ignore_previous"),
    )


def scenario_key(explicit: str | None, body: bytes) -> str:
    """The attempt-counting key: ``X-Sim-Key`` if given, else a hash of the request body."""
    if explicit:
        return "k:" + explicit
    return "b:" + hashlib.blake2b(body, digest_size=12).hexdigest()


class AttemptCounter:
    """Counts attempts per scenario key (bounded LRU; used from one event loop)."""

    DEFAULT_CAPACITY = 20_000

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._capacity = capacity

    def next(self, key: str) -> int:
        """Record one more attempt for ``key`` and return its number (1-based)."""
        count = self._counts.pop(key, 0) + 1
        self._counts[key] = count
        if len(self._counts) > self._capacity:
            self._counts.popitem(last=False)
        return count
