"""MetricsExporter: what every finished run measured, as Prometheus metrics.

The exporter is a :class:`~tui.session.run.SessionListener` on every controller of a
runtime (:meth:`MetricsExporter.follow`). It records a run once, when its ``Finished``
arrives, from the run's :class:`~tui.stream.accumulate.RunAccumulator` (the fold the views
and the store read), into its own ``CollectorRegistry``, which
:func:`tui.session.prometheus_http.serve_metrics` serves. The GenAI histograms follow the
OpenTelemetry GenAI client conventions (semantic-conventions-genai,
``docs/gen-ai/gen-ai-metrics.md``): their names with underscores, their bucket boundaries,
their attributes as labels. ``docs/monitoring/README.md`` lists every metric, its labels and
what is measured. Every label value comes from the sessions file or from a fixed list:
never a run id, a prompt, a server's model name or an error message.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, cast, get_args
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString as _go_float

from tui.session.alerts import Alert, AlertMetric
from tui.stream.accumulate import RunAccumulator
from tui.vocab import FINISH_REASONS, ErrorKind

if TYPE_CHECKING:
    from tui.config import SessionConfig
    from tui.session.controller import SessionController
    from tui.session.run import SessionRun
    from tui.session.runtime import SessionRuntime
    from tui.stream.events import RunEvent

__all__ = [
    "DURATION_BUCKETS",
    "OUTPUT_RATE_BUCKETS",
    "TOKEN_BUCKETS",
    "ChunkGapHistogram",
    "MetricsExporter",
    "error_type",
    "provider_name",
]

DURATION_BUCKETS: tuple[float, ...] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
"""The conventions' boundaries (s) of operation duration, time to first chunk and time per
output chunk (the same list for all three)."""

TOKEN_BUCKETS: tuple[float, ...] = tuple(float(4**i) for i in range(14))
"""The conventions' boundaries of ``gen_ai.client.token.usage``: 1, 4, 16, ... 67108864."""

OUTPUT_RATE_BUCKETS: tuple[float, ...] = (
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000,
)  # fmt: skip
"""Boundaries (tokens/s) of tokentop's per-run output rate."""

OPERATION_NAME = "chat"
"""``gen_ai.operation.name`` of both APIs (Chat Completions and Responses are inference
calls; the OpenAI conventions tell them apart with ``openai.api.type``)."""

API_TYPES = {"chat": "chat_completions", "responses": "responses"}
"""``openai.api.type`` of each API kind."""

PROVIDERS: dict[str, str] = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "api.perplexity.ai": "perplexity",
    "api.moonshot.ai": "moonshot_ai",
    "api.moonshot.cn": "moonshot_ai",
    "api.cohere.com": "cohere",
    "api.cohere.ai": "cohere",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "aiplatform.googleapis.com": "gcp.vertex_ai",
}
"""Hosts whose ``gen_ai.provider.name`` is one of the conventions' well-known values."""

DEFAULT_PROVIDER = "openai"
"""Any other host (a gateway, vLLM, the simulator): the conventions' provider name is "the
telemetry format flavor", and every server tokentop talks to speaks OpenAI's API."""

ERROR_KINDS: frozenset[str] = frozenset(get_args(ErrorKind))
ALERT_METRICS: tuple[str, ...] = get_args(AlertMetric)
go_float = cast(Callable[[float], str], _go_float)
"""How prometheus-client spells a bucket bound (the ``le`` label), as its Histogram does."""

OTHER = "_OTHER"
"""The conventions' fallback ``error.type`` (and tokentop's for an unknown alert metric)."""

GENAI_LABELS = (
    "session",
    "gen_ai_operation_name",
    "openai_api_type",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "server_address",
    "server_port",
)


def provider_name(host: str) -> str:
    """``gen_ai.provider.name`` for a server host (see :data:`PROVIDERS`)."""
    host = host.lower()
    if host.endswith(".openai.azure.com"):
        return "azure.ai.openai"
    if host.endswith("-aiplatform.googleapis.com"):
        return "gcp.vertex_ai"
    return PROVIDERS.get(host, DEFAULT_PROVIDER)


def server_of(base_url: str | None) -> tuple[str, str]:
    """``(server_address, server_port)`` of a base URL (the scheme's port when it names
    none; ``("", "")`` when it is unknown). User info in the URL is never part of it."""
    if not base_url:
        return "", ""
    parts = urlsplit(base_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return (parts.hostname or ""), ("" if port is None else str(port))


def error_type(acc: RunAccumulator) -> str:
    """The ``error_type`` of a finished run: ``""`` when it completed or was cut
    (``incomplete``: an answer, shortened), ``cancelled`` when it was cancelled, and for a
    failure the kind of its error (:data:`tui.vocab.ErrorKind`: ``http``, ``auth``,
    ``connect``, ``timeout``, ``stalled``, ``dropped``, ``protocol``, ``server``,
    ``truncated``), else its finish reason, else ``_OTHER``."""
    status = acc.status
    if status in ("completed", "incomplete"):
        return ""
    if status == "cancelled":
        return "cancelled"
    err = acc.error
    if err is not None and err.kind in ERROR_KINDS:
        return err.kind
    reason = acc.finish_reason
    return reason if reason in FINISH_REASONS else OTHER


class ChunkGapHistogram:
    """A labelled histogram that takes all of a run's values in one call.

    ``prometheus_client``'s ``Histogram.observe`` costs about 2 µs a value (a lock and a
    scan of the bounds per value); a long run has tens of thousands of gaps and they are
    known at once when it ends, on the face's loop. :meth:`add` sorts them (in C) and finds
    each bound's cumulative count with one bisection, under one lock. Registered as a
    custom collector; a scrape (another thread) reads a consistent copy.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        *,
        unit: str = "",
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._bounds = tuple(float(b) for b in buckets)
        self._unit = unit
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}
        """Per label set: the cumulative bucket counts, and ``[count, sum]``."""
        registry.register(self)

    def add(self, labels: tuple[str, ...], values: Iterable[float]) -> None:
        """Count every value of ``values`` under ``labels`` (NaN values are skipped)."""
        ordered = sorted(values)
        total = sum(ordered)
        if total != total:  # a NaN: it has no bucket (and leaves the list unsorted)
            ordered = sorted(v for v in ordered if v == v)
            total = sum(ordered)
        if not ordered:
            return
        # the cumulative bucket counts at once: values <= each bound
        cumulative = [bisect_right(ordered, bound) for bound in self._bounds]
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = ([0] * len(self._bounds), [0, 0.0])
            buckets, totals = series
            for i, n in enumerate(cumulative):
                buckets[i] += n
            totals[0] += len(ordered)
            totals[1] += total

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(
            self._name, self._documentation, labels=self._labelnames, unit=self._unit
        )

    def describe(self) -> list[Metric]:
        """The family without samples (the registry checks names with it)."""
        return [self._family()]

    def collect(self) -> list[Metric]:
        """The family with a sample set per label set."""
        with self._lock:
            copy = [(k, list(b), t[0], t[1]) for k, (b, t) in self._series.items()]
        family = self._family()
        les = [go_float(b) for b in self._bounds]
        for labels, buckets, count, total in copy:
            cumulative = [(le, float(n)) for le, n in zip(les, buckets, strict=True)]
            cumulative.append(("+Inf", float(count)))
            family.add_metric(list(labels), cumulative, total)
        return [family]


class MetricsExporter:
    """Records each finished run of the sessions it follows into :attr:`registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        """The exporter's own registry (never the process-wide default one)."""
        reg = self.registry
        self.duration = Histogram(
            "gen_ai_client_operation_duration",
            "GenAI operation duration: a run, from its start to its end (retries included).",
            (*GENAI_LABELS, "error_type"),
            unit="seconds",
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.time_to_first_chunk = Histogram(
            "gen_ai_client_operation_time_to_first_chunk",
            "Time from the start of a run to its first content chunk.",
            GENAI_LABELS,
            unit="seconds",
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.time_per_output_chunk = ChunkGapHistogram(
            "gen_ai_client_operation_time_per_output_chunk",
            "Time per output chunk: each gap between two consecutive content chunks.",
            GENAI_LABELS,
            DURATION_BUCKETS,
            unit="seconds",
            registry=reg,
        )
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Number of input and output tokens used (the server's usage report).",
            (*GENAI_LABELS, "gen_ai_token_type"),
            buckets=TOKEN_BUCKETS,
            registry=reg,
        )
        self.output_rate = Histogram(
            "tokentop_output_tokens_per_second",
            "Output tokens per second of each run (first to last content chunk).",
            ("session",),
            buckets=OUTPUT_RATE_BUCKETS,
            registry=reg,
        )
        self.runs = Counter(
            "tokentop_runs",
            "Finished runs by final status and finish reason.",
            ("session", "status", "finish_reason"),
            registry=reg,
        )
        self.retries = Counter(
            "tokentop_retries",
            "Attempts after the first, by how they continued the run.",
            ("session", "mode"),
            registry=reg,
        )
        self.resumes = Counter(
            "tokentop_resumes",
            "Streams the server continued after a break (Last-Event-ID or sequence number).",
            ("session",),
            registry=reg,
        )
        self.alerts = Counter(
            "tokentop_alerts",
            "Alerts raised, by the rule that fired.",
            ("session", "metric"),
            registry=reg,
        )
        self.active = Gauge(
            "tokentop_active_runs",
            "Runs in progress (0 or 1 per session).",
            ("session",),
            registry=reg,
        )
        self._labels: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self._sim_url: Callable[[], str | None] = lambda: None

    # -- following ----

    def follow(self, runtime: SessionRuntime) -> Callable[[], None]:
        """Record every run of every controller of ``runtime`` (``sim`` sessions labelled
        with its simulator's address); returns the function that stops that."""
        self._sim_url = lambda: runtime.sim_url
        stops = [self.subscribe(c) for c in runtime.controllers]

        def unfollow() -> None:
            for stop in stops:
                stop()

        return unfollow

    def subscribe(self, controller: SessionController) -> Callable[[], None]:
        """Record every run of one controller; returns the function that unsubscribes. Its
        series start at zero (alerts for each rule, retries, resumes, the active gauge), so
        that a first increase is seen."""
        name = controller.name
        self.active.labels(name).set(0)
        self.resumes.labels(name)
        for mode in ("retry", "resume", "restart"):
            self.retries.labels(name, mode)
        for metric in ALERT_METRICS:
            self.alerts.labels(name, metric)
        return controller.subscribe(self)

    def run_started(self, session: SessionController, run: SessionRun) -> None:
        """Count the run as active."""
        self.active.labels(session.name).set(1)

    def run_events(
        self, session: SessionController, run: SessionRun, events: Sequence[RunEvent]
    ) -> None:
        """Record the run once its ``Finished`` is in (O(1) per batch until then; the
        controller delivers nothing after the batch that finished a run)."""
        if run.finished is not None:
            config = session.session
            self.record(config, run.accumulator, self.base_url(config))

    def base_url(self, session: SessionConfig) -> str | None:
        """Where ``session``'s requests go: the followed runtime's simulator for ``sim``
        sessions (None while it is not running), else the session's base URL."""
        return self._sim_url() if session.is_simulated else session.base_url

    # -- recording ----

    def observe_alert(self, alert: Alert) -> None:
        """Count one alert (by session and rule)."""
        metric = alert.metric if alert.metric in ALERT_METRICS else OTHER
        self.alerts.labels(alert.session, metric).inc()

    def record(self, session: SessionConfig, acc: RunAccumulator, base_url: str | None) -> None:
        """Record one finished run (``acc`` holds its ``Finished``) of ``session``, whose
        requests went to ``base_url``."""
        name = session.name
        self.active.labels(name).set(0)
        status = acc.status or "failed"
        self.runs.labels(name, status, acc.finish_reason or OTHER).inc()
        for attempt in acc.attempts[1:]:
            self.retries.labels(name, attempt.mode or "retry").inc()
        if acc.resumes:
            self.resumes.labels(name).inc(acc.resumes)

        labels = self._genai_labels(session, base_url)
        m = acc.metrics()
        if m.duration_s is not None:
            self.duration.labels(*labels, error_type(acc)).observe(m.duration_s)
        first = acc.first_token_s
        if first is not None:
            self.time_to_first_chunk.labels(*labels).observe(first)
        self.time_per_output_chunk.add(labels, acc.chunk_gaps())
        if m.input_tokens is not None:
            self.token_usage.labels(*labels, "input").observe(m.input_tokens)
        if not m.tokens_estimated:
            self.token_usage.labels(*labels, "output").observe(m.output_tokens)
        if m.tokens_per_s is not None and math.isfinite(m.tokens_per_s):
            self.output_rate.labels(name).observe(m.tokens_per_s)

    def _genai_labels(self, session: SessionConfig, base_url: str | None) -> tuple[str, ...]:
        key = (session.name, base_url or "", session.model)
        labels = self._labels.get(key)
        if labels is None:
            host, port = server_of(base_url)
            labels = (
                session.name,
                OPERATION_NAME,
                API_TYPES.get(session.api, OTHER),
                provider_name(host) if host else DEFAULT_PROVIDER,
                session.model,
                host,
                port,
            )
            self._labels[key] = labels
        return labels
