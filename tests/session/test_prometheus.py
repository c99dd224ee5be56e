"""The Prometheus endpoint: a runtime's sessions on the simulator, recorded into a real store
file, the endpoint served on a free port and scraped over loopback, parsed with
prometheus-client's own parser; its numbers against the store's. Also the addresses, the
serving thread, the bulk histogram and the shipped Grafana dashboard and scrape config."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.stream.helpers import make_session
from tui.config import Repeat, SessionConfig
from tui.session import SessionRuntime
from tui.session.alerts import Alert
from tui.session.prometheus import (
    DURATION_BUCKETS,
    TOKEN_BUCKETS,
    ChunkGapHistogram,
    MetricsExporter,
    provider_name,
    server_of,
)
from tui.session.prometheus_http import (
    MetricsServer,
    MetricsServerError,
    parse_metrics_addr,
    serve_metrics,
)
from tui.store import RunSummary

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "docs" / "monitoring"

QUICK = "ttft=0.005,tps=4000,tokens=24"
"""A short answer with real gaps between its chunks (a few ms in all)."""

CONVENTION_SECONDS = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
]  # fmt: skip
"""The GenAI conventions' boundaries of the three time histograms (gen-ai-metrics.md)."""

CONVENTION_TOKENS = [
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
]  # fmt: skip


def probe(name: str, key: str, api: str, runs: int, **kwargs: object) -> SessionConfig:
    """A ``sim`` session called ``name`` that runs ``runs`` times back to back."""
    session = make_session(api, key=f"{key}-{name}", timing=QUICK, **kwargs)  # type: ignore[arg-type]
    return replace(session, name=name, repeat=Repeat(every_s=0.01, count=runs))


def families(text: str) -> dict[str, list[Sample]]:
    """The scraped samples by family name (counters without ``_total``)."""
    return {f.name: list(f.samples) for f in text_string_to_metric_families(text)}


def total(samples: Iterable[Sample], suffix: str, **match: str) -> float:
    """Sum of the samples named ``*suffix`` whose labels include ``match``."""
    return sum(
        s.value
        for s in samples
        if s.name.endswith(suffix) and all(s.labels.get(k) == v for k, v in match.items())
    )


def by(samples: Iterable[Sample], suffix: str, *keys: str) -> Counter[tuple[str, ...]]:
    """The samples named ``*suffix`` summed by the values of ``keys`` (zeros left out)."""
    out: Counter[tuple[str, ...]] = Counter()
    for s in samples:
        if s.name.endswith(suffix) and s.value:
            out[tuple(s.labels[k] for k in keys)] += int(s.value)
    return out


def bounds(samples: Iterable[Sample]) -> list[float]:
    """The finite ``le`` boundaries of a histogram's buckets, in order, once each."""
    seen: list[float] = []
    for s in samples:
        if s.name.endswith("_bucket") and s.labels["le"] != "+Inf":
            le = float(s.labels["le"])
            if le not in seen:
                seen.append(le)
    return sorted(seen)


@pytest.fixture
async def server() -> AsyncIterator[MetricsServer]:
    """An endpoint on a free loopback port for a fresh exporter, closed after the test."""
    exporter = MetricsExporter()
    served = serve_metrics("127.0.0.1:0", exporter.registry)
    try:
        yield served
    finally:
        await served.aclose()


async def scrape(url: str) -> str:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(url)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


async def test_scrape_agrees_with_the_store(sim_url: str, sim_key: str, tmp_path: Path) -> None:
    sessions = [
        probe("chat-ok", sim_key, "chat", 3),
        probe("resp-ok", sim_key, "responses", 2),
        probe("failing", sim_key, "chat", 2, fault="status=500*99"),
        probe("cut", sim_key, "chat", 1, fault="content_filter"),
        probe("dropping", sim_key, "responses", 2, fault="drop=9", background=True),
    ]
    runtime = SessionRuntime(sessions, simulator=lambda: sim_url)
    exporter = MetricsExporter()
    exporter.follow(runtime)
    store = await runtime.open_store(tmp_path / "tokentop.db")
    served = serve_metrics("127.0.0.1:0", exporter.registry)
    try:
        await runtime.start()
        for controller in runtime.controllers:
            controller.start()
        assert await runtime.wait_idle(30)
        exporter.observe_alert(Alert("failing", "r-1", "on_failure", None, None, "failed", 0.0))
        text = await scrape(served.url)
        stored = await store.list_runs(limit=1000)
    finally:
        await served.aclose()
        await runtime.close()

    got = families(text)
    assert len(stored) == 10
    runs: list[RunSummary] = stored

    # tokentop's counters: runs by outcome, retries by mode, resumes, alerts
    outcomes = Counter((r.session, r.status, r.finish_reason or "") for r in runs)
    assert by(got["tokentop_runs"], "_total", "session", "status", "finish_reason") == outcomes
    assert outcomes[("failing", "failed", "error")] == 2
    assert outcomes[("cut", "incomplete", "content_filter")] == 1
    modes = Counter(
        (r.session, a.mode) for r in runs for a in r.attempt_records if a.mode is not None
    )
    assert by(got["tokentop_retries"], "_total", "session", "mode") == modes
    assert modes[("failing", "retry")] == 2 * 3  # max_retries = 3, every attempt fails
    assert modes[("dropping", "resume")] == 1  # the first run's first attempt drops
    assert total(got["tokentop_resumes"], "_total") == sum(r.resumes for r in runs) == 1
    assert total(got["tokentop_alerts"], "_total", session="failing", metric="on_failure") == 1
    assert total(got["tokentop_alerts"], "_total") == 1
    assert total(got["tokentop_active_runs"], "") == 0

    # the GenAI histograms: one duration per run, failures with their error type
    duration = got["gen_ai_client_operation_duration_seconds"]
    per_session = Counter((r.session,) for r in runs)
    assert by(duration, "_count", "session") == per_session
    errors = by(duration, "_count", "session", "error_type")
    assert errors[("failing", "http")] == 2
    assert {e for (s, e) in errors if s != "failing"} == {""}
    ttft = got["gen_ai_client_operation_time_to_first_chunk_seconds"]
    assert total(ttft, "_count") == sum(r.first_token_s is not None for r in runs)
    gaps = got["gen_ai_client_operation_time_per_output_chunk_seconds"]
    assert total(gaps, "_count") == sum(max(r.chunks - 1, 0) for r in runs)
    assert total(gaps, "_sum") > 0
    usage = got["gen_ai_client_token_usage"]
    assert total(usage, "_sum", gen_ai_token_type="input") == sum(r.input_tokens or 0 for r in runs)
    assert total(usage, "_sum", gen_ai_token_type="output") == sum(
        r.output_tokens or 0 for r in runs if not r.tokens_estimated
    )
    assert total(usage, "_count", gen_ai_token_type="output") == sum(
        not r.tokens_estimated for r in runs
    )
    assert total(got["tokentop_output_tokens_per_second"], "_count") == sum(
        r.tokens_per_s is not None for r in runs
    )

    # the conventions' boundaries and labels
    for name in ("duration", "time_to_first_chunk", "time_per_output_chunk"):
        assert bounds(got[f"gen_ai_client_operation_{name}_seconds"]) == CONVENTION_SECONDS
    assert bounds(usage) == CONVENTION_TOKENS == list(TOKEN_BUCKETS)
    assert list(DURATION_BUCKETS) == CONVENTION_SECONDS
    port = sim_url.split(":")[2].split("/")[0]
    for s in duration:
        assert s.labels["gen_ai_operation_name"] == "chat"
        assert s.labels["gen_ai_provider_name"] == "openai"
        assert s.labels["gen_ai_request_model"] == "sim-fast"
        assert (s.labels["server_address"], s.labels["server_port"]) == ("127.0.0.1", port)
        api = next(x.api for x in sessions if x.name == s.labels["session"])
        expected = {"chat": "chat_completions", "responses": "responses"}[api]
        assert s.labels["openai_api_type"] == expected
    # bounded labels: no run id, prompt or error message anywhere
    values = {v for samples in got.values() for s in samples for v in s.labels.values()}
    assert not values & {r.run_id for r in runs}
    assert sessions[0].prompt not in values
    messages = {r.error.message for r in runs if r.error is not None}
    assert len(messages) >= 1 and not values & messages


async def test_scrapes_do_not_wait_for_the_loop_and_close_does_not_block_it(
    server: MetricsServer,
) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    texts = await asyncio.gather(*(scrape(server.url) for _ in range(5)))
    assert all("tokentop_runs" in t for t in texts)
    before = ticks
    await server.aclose()  # the server's poll ends in its own thread
    assert ticks > before
    ticker.cancel()
    with pytest.raises(httpx.ConnectError):
        await scrape(server.url)
    await server.aclose()  # twice: a no-op


def test_a_busy_port_is_a_clear_error(server: MetricsServer) -> None:
    with pytest.raises(MetricsServerError) as caught:
        serve_metrics(f"127.0.0.1:{server.port}", CollectorRegistry())
    assert str(caught.value) == (
        f"cannot serve metrics on 127.0.0.1:{server.port}: port {server.port} is already in use"
    )


def test_an_unknown_host_is_a_clear_error() -> None:
    with pytest.raises(MetricsServerError, match=r"on no-such-host\.invalid:0: the host"):
        serve_metrics("no-such-host.invalid:0", CollectorRegistry())


async def test_ipv6_loopback() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe_socket:
            probe_socket.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    served = serve_metrics("[::1]:0", CollectorRegistry())
    try:
        assert served.url == f"http://[::1]:{served.port}/metrics"
        await scrape(served.url)
    finally:
        await served.aclose()


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("localhost:9464", ("localhost", 9464)),
        ("0.0.0.0:9464", ("0.0.0.0", 9464)),
        ("[::1]:9464", ("::1", 9464)),
        ("[::]:0", ("::", 0)),
        (":9464", ("127.0.0.1", 9464)),
        ("9464", ("127.0.0.1", 9464)),
        (" 10.0.0.5:9464 ", ("10.0.0.5", 9464)),
    ],
)
def test_addresses(addr: str, expected: tuple[str, int]) -> None:
    assert parse_metrics_addr(addr) == expected


@pytest.mark.parametrize(
    ("addr", "says"),
    [
        ("", "is empty"),
        ("localhost", "has no port"),
        ("host:", "has no valid port"),
        ("host:http", "has no valid port"),
        ("host:65536", "is not a number from 0 to 65535"),
        ("host:-1", "has no valid port"),
        ("host:٩٤٦٤", "has no valid port"),
        ("::1:9464", "write an IPv6 address in brackets"),
        ("[::1]9464", "is not [IPV6]:PORT"),
        ("[::1:9464", "is not [IPV6]:PORT"),
        ("[example.com]:9464", "is not an IPv6 address"),
        ("http://127.0.0.1:9464", "no scheme or path"),
        ("127.0.0.1:9464/metrics", "no scheme or path"),
        ("my host:9464", "the host has spaces"),
    ],
)
def test_bad_addresses(addr: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_metrics_addr(addr)


def test_the_bulk_histogram_counts_as_prometheus_client_does() -> None:
    values = [0.0, 0.001, 0.01, 0.0100001, 0.02, 0.5, 81.92, 81.93, 1e6, float("nan")]
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    bulk = ChunkGapHistogram("gaps", "d", ("a",), DURATION_BUCKETS, unit="seconds", registry=ours)
    bulk.add(("x",), values[:4])
    bulk.add(("x",), values[4:])
    bulk.add(("y",), [])  # nothing: no series
    reference = Histogram("gaps", "d", ("a",), unit="seconds", buckets=DURATION_BUCKETS)
    theirs.register(reference)
    for value in values[:-1]:
        reference.labels("x").observe(value)

    def samples(registry: CollectorRegistry) -> list[tuple[str, list[tuple[str, str]], float]]:
        text = generate_latest(registry).decode()
        return sorted(
            (s.name, sorted(s.labels.items()), s.value)
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if not s.name.endswith("_created")
        )

    assert samples(ours) == samples(theirs)


def test_labels_of_servers() -> None:
    assert server_of("https://api.openai.com/v1") == ("api.openai.com", "443")
    assert server_of("http://user:secret@gateway:8080/v1") == ("gateway", "8080")
    assert server_of("http://10.0.0.5/v1") == ("10.0.0.5", "80")
    assert server_of("http://[::1]:9000/v1") == ("::1", "9000")
    assert server_of(None) == ("", "")
    assert provider_name("api.openai.com") == "openai"
    assert provider_name("my-east.openai.azure.com") == "azure.ai.openai"
    assert provider_name("API.GROQ.COM") == "groq"
    assert provider_name("vllm.internal") == "openai"  # the API flavor tokentop speaks


def exported_names() -> set[str]:
    """Every sample name the exporter can expose (histograms' three, counters' ``_total``)."""
    names: set[str] = set()
    for family in MetricsExporter().registry.collect():
        if family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
        elif family.type == "counter":
            names.add(family.name + "_total")
        else:
            names.add(family.name)
    return names


def promql_metrics(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers and groupings removed)."""
    bare = re.sub(r"\{[^}]*\}", "", expr)
    bare = re.sub(r"\b(by|without)\s*\([^)]*\)", "", bare)
    return set(re.findall(r"\b(?:gen_ai|tokentop)_[a-z0-9_]+\b", bare))


def test_the_grafana_dashboard_reads_what_the_exporter_exports() -> None:
    board = json.loads((MONITORING / "grafana-tokentop.json").read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    exported = exported_names()
    exprs = [
        target["expr"]
        for panel in board["panels"]
        for target in panel.get("targets", [])
        if panel["type"] != "row"
    ]
    assert len(exprs) >= 6
    read: set[str] = set()
    for expr in exprs:
        names = promql_metrics(expr)
        assert names, expr
        assert names <= exported, (expr, names - exported)
        read |= names
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    assert "gen_ai_client_operation_time_to_first_chunk_seconds_bucket" in read
    assert "tokentop_alerts_total" in read
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))


def test_the_scrape_config_lists_several_probes() -> None:
    text = (MONITORING / "prometheus.yml").read_text()
    assert "scrape_configs:" in text and "job_name: tokentop" in text
    assert re.search(r"^\s+scrape_interval: \d+s$", text, re.MULTILINE)
    targets = re.findall(r"^\s+- ([\w.-]+:\d+)\s*(?:#.*)?$", text, re.MULTILINE)
    assert len(targets) >= 3
    assert "\t" not in text  # YAML: spaces only
