"""The engine's HTTP client (tui/stream/transport.py) on both transports, over real sockets:
the runner's user-facing error kinds and messages must not depend on whether httpx's own
transport or the aiohttp one carried the request."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import gzip
import json
import socket
import time
import warnings
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.stream.canned import CannedServer, response
from tests.stream.helpers import FakeSleep, make_session, of_type, run_session, sse
from tui.sim import text as sim_text
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import Api, Retrying, RunEvent
from tui.stream.transport import HTTP_ENV, KEEPALIVE_S, http_backend, make_client

BACKENDS = ["httpx", "aiohttp"]
APIS: list[Api] = ["chat", "responses"]
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
CHUNK = '{"id":"c1","choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":%s}]}'
CHAT_OK = sse(CHUNK % ("Hi", "null"), CHUNK % (" there", '"stop"'), "[DONE]")


def _clear_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(params=BACKENDS)
async def client(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """A client from :func:`make_client` on the transport named by the parameter."""
    _clear_proxies(monkeypatch)
    if request.param == "httpx":
        monkeypatch.setenv(HTTP_ENV, "httpx")
    else:
        monkeypatch.delenv(HTTP_ENV, raising=False)
    assert http_backend() == request.param
    async with make_client() as http:
        yield http


async def run(
    session_kw: dict[str, Any], base_url: str, client: httpx.AsyncClient, api: Api = "chat"
) -> tuple[list[RunEvent], RunAccumulator]:
    """Run a test session (no real backoff waits) on ``client``."""
    session = make_session(api, **session_kw)
    return await run_session(session, base_url, client=client, sleep=FakeSleep())


def reference_text(tokens: int = 60) -> str:
    """The simulator's (seed 0) uninterrupted answer to the test prompt."""
    return "".join(sim_text.answer_tokens(0, "Tell me about rivers.", tokens))


def closed_port() -> int:
    """A loopback port nobody listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def unanswered_port() -> Iterator[int]:
    """A loopback port whose listen backlog is full: the kernel drops further SYNs, so a
    connect neither succeeds nor fails until the client's connect timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        with socket.socket() as probe:
            probe.settimeout(0.3)
            try:
                probe.connect(("127.0.0.1", port))
            except TimeoutError:
                pass
            else:
                pytest.skip("this kernel accepts connections beyond a full backlog")
        yield port
    finally:
        for sock in [*fillers, listener]:
            sock.close()


# -- normal runs ------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_completes(api: Api, client: httpx.AsyncClient, sim_url: str, sim_key: str) -> None:
    timing = "ttft=0.01,tps=2000,tokens=60"
    events, acc = await run({"key": sim_key, "timing": timing}, sim_url, client, api)
    assert acc.status == "completed" and acc.finish_reason == "stop"
    assert acc.output_text == reference_text() and acc.metrics().output_tokens == 60
    assert not of_type(events, Retrying)


async def test_sixteen_concurrent_streams(client: httpx.AsyncClient, sim_url: str) -> None:
    """16 streams of ~0.6 s each at once take about as long as one (no connection cap)."""
    timing = "ttft=0.3,tps=100,tokens=30"
    start = time.monotonic()
    results = await asyncio.gather(
        *(
            run({"key": f"c{i}-{time.time_ns()}", "timing": timing}, sim_url, client, APIS[i % 2])
            for i in range(16)
        )
    )
    elapsed = time.monotonic() - start
    assert all(acc.status == "completed" for _, acc in results)
    assert all(acc.output_text == reference_text(30) for _, acc in results)
    assert elapsed < 4.0  # one after another: >= 16 * 0.6 s


# -- before the response ----------------------------------------------------------------------


async def test_connection_refused(client: httpx.AsyncClient) -> None:
    base = f"http://127.0.0.1:{closed_port()}/v1"
    events, acc = await run({"max_retries": 1}, base, client)
    assert acc.status == "failed" and acc.error is not None and acc.error.kind == "connect"
    assert acc.error.message.startswith(
        f"gave up after 1 retry: cannot connect to {base}/chat/completions: "
    )
    assert "timed out" not in acc.error.message.lower()
    if http_backend() == "aiohttp":  # the OS's reason, not asyncio's "Connect call failed"
        assert acc.error.message.endswith(": Connection refused"), acc.error.message
    (retry,) = of_type(events, Retrying)
    assert retry.mode == "retry" and retry.cause.kind == "connect"


async def test_unresolvable_host(client: httpx.AsyncClient) -> None:
    _, acc = await run({"max_retries": 0}, "http://tokentop-test.invalid/v1", client)
    assert acc.error is not None and acc.error.kind == "connect"
    assert acc.error.message.startswith("cannot connect to http://tokentop-test.invalid/v1/")


async def test_connect_timeout(client: httpx.AsyncClient) -> None:
    with unanswered_port() as port:
        start = time.monotonic()
        _, acc = await run(
            {"max_retries": 0, "connect_timeout_s": 0.5}, f"http://127.0.0.1:{port}/v1", client
        )
        elapsed = time.monotonic() - start
    assert acc.status == "failed" and acc.error is not None and acc.error.kind == "timeout"
    assert acc.error.message == (
        f"timed out waiting for connect from http://127.0.0.1:{port}/v1/chat/completions"
    )
    assert 0.4 <= elapsed < 5.0


async def test_no_response_headers_in_time(client: httpx.AsyncClient) -> None:
    async with CannedServer([None]) as server:
        base = server.base_url
        _, acc = await run({"max_retries": 0, "idle_timeout_s": 0.5}, base, client)
    assert acc.error is not None and acc.error.kind == "timeout"
    assert acc.error.message == f"timed out waiting for the response from {base}/chat/completions"


async def test_closed_before_the_response(client: httpx.AsyncClient) -> None:
    async with CannedServer([[]]) as server:
        _, acc = await run({"max_retries": 0}, server.base_url, client)
    assert acc.error is not None and acc.error.kind == "connect"
    assert acc.error.message.startswith("connection closed before the response: ")


async def test_not_http_at_all(client: httpx.AsyncClient) -> None:
    """A server that answers garbage: a clean failure, never an internal error."""
    async with CannedServer([[b"garbage\r\n\r\n"]]) as server:
        _, acc = await run({"max_retries": 0}, server.base_url, client)
    assert acc.error is not None and acc.error.kind == "connect"
    assert acc.error.message.startswith("connection closed before the response: ")
    assert "internal error" not in acc.error.message and "400" not in acc.error.message


# -- in the middle of the stream --------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_mid_stream_disconnect(
    api: Api, client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    _, acc = await run(
        {"key": sim_key, "fault": "drop=10", "on_drop": "fail"}, sim_url, client, api
    )
    assert (acc.status, acc.finish_reason) == ("failed", "truncated")
    assert acc.error is not None and acc.error.kind == "dropped"
    assert acc.error.message.startswith("connection dropped mid-stream: ")
    assert "400" not in acc.error.message  # aiohttp's parser status is no HTTP status
    assert acc.output_text and reference_text().startswith(acc.output_text)


async def test_mid_stream_disconnect_restarts(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    events, acc = await run({"key": sim_key, "fault": "drop=10"}, sim_url, client)
    assert acc.status == "completed" and acc.output_text == reference_text()
    (retry,) = of_type(events, Retrying)
    assert retry.mode == "restart" and retry.cause.kind == "dropped"


@pytest.mark.parametrize("api", APIS)
async def test_stall(api: Api, client: httpx.AsyncClient, sim_url: str, sim_key: str) -> None:
    session_kw = {"key": sim_key, "fault": "stall=10", "idle_timeout_s": 0.5, "max_retries": 0}
    _, acc = await run(session_kw, sim_url, client, api)
    assert (acc.status, acc.finish_reason) == ("failed", "truncated")
    assert acc.error is not None and acc.error.kind == "stalled"
    assert acc.error.message == "no data for 0.5 s (stalled stream)"


# -- error pages and encodings ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (404, "http", "HTTP 404 Not Found: Simulated HTTP 404."),
        (429, "http", "HTTP 429 Too Many Requests: Simulated HTTP 429."),
        (503, "http", "HTTP 503 Service Unavailable: Simulated HTTP 503."),
        (401, "auth", "HTTP 401 Unauthorized: no API key was sent"),
    ],
)
async def test_http_errors(
    status: int, kind: str, message: str, client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    fault = f"status={status}*5"
    _, acc = await run({"key": sim_key, "fault": fault, "max_retries": 0}, sim_url, client)
    assert acc.status == "failed" and acc.error is not None
    assert (acc.error.kind, acc.error.http_status) == (kind, status)
    assert acc.error.message.startswith(message)


async def test_html_error_page(client: httpx.AsyncClient, sim_url: str, sim_key: str) -> None:
    _, acc = await run({"key": sim_key, "fault": "html*5", "max_retries": 0}, sim_url, client)
    assert acc.error is not None and acc.error.http_status == 502
    assert (
        acc.error.message
        == "HTTP 502 Bad Gateway (text/html): 502 Bad Gateway 502 Bad Gateway nginx"
    )


def _gzip_stream(*parts: bytes) -> list[bytes | float]:
    """Each part gzip-compressed and flushed on its own (as a streaming gzip server does),
    with a short pause in between."""
    compressor = zlib.compressobj(wbits=31)
    out: list[bytes | float] = []
    for part in parts:
        out += [compressor.compress(part) + compressor.flush(zlib.Z_SYNC_FLUSH), 0.02]
    out.append(compressor.flush())
    return out


async def test_gzip_event_stream(client: httpx.AsyncClient) -> None:
    head = response(headers={"content-encoding": "gzip"})
    events = [sse(CHUNK % ("Hi", "null")), sse(CHUNK % (" there", '"stop"')), sse("[DONE]")]
    async with CannedServer([[head, *_gzip_stream(*events)]]) as server:
        _, acc = await run({"timing": None}, server.base_url, client)
        assert server.requests[0].headers["accept-encoding"].startswith("gzip")
    assert acc.status == "completed" and acc.output_text == "Hi there"
    assert acc.metrics().chunks == 2


async def test_gzip_json_error(client: httpx.AsyncClient) -> None:
    body = json.dumps({"error": {"message": "Upstream exploded.", "code": "boom"}}).encode()
    answer = response(
        500,
        gzip.compress(body),
        reason="Internal Server Error",
        content_type="application/json",
        headers={"content-encoding": "gzip"},
        length=True,
    )
    async with CannedServer([[answer]]) as server:
        _, acc = await run({"timing": None, "max_retries": 0}, server.base_url, client)
    assert acc.error is not None and acc.error.kind == "http" and acc.error.code == "boom"
    assert acc.error.message == "HTTP 500 Internal Server Error: Upstream exploded."


async def test_gzip_html_error(client: httpx.AsyncClient) -> None:
    page = b"<html><head><title>503 Service Unavailable</title></head><body>busy</body></html>"
    answer = response(
        503,
        gzip.compress(page),
        reason="Service Unavailable",
        content_type="text/html",
        headers={"content-encoding": "gzip"},
    )
    async with CannedServer([[answer]]) as server:
        _, acc = await run({"timing": None, "max_retries": 0}, server.base_url, client)
    assert acc.error is not None and acc.error.http_status == 503
    assert acc.error.message == (
        "HTTP 503 Service Unavailable (text/html): 503 Service Unavailable busy"
    )


async def test_undecodable_body(client: httpx.AsyncClient) -> None:
    answer = response(body=b"data: not gzip\n\n", headers={"content-encoding": "gzip"})
    async with CannedServer([[answer]]) as server:
        _, acc = await run({"timing": None}, server.base_url, client)
    assert acc.status == "failed" and acc.error is not None and acc.error.kind == "protocol"
    assert acc.error.message.startswith("cannot decode the response body: ")
    assert len(acc.attempts) == 1


# -- choice of transport, proxies, closing ----------------------------------------------------


def test_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_proxies(monkeypatch)
    monkeypatch.delenv(HTTP_ENV, raising=False)
    assert http_backend() == "aiohttp"
    monkeypatch.setenv(HTTP_ENV, "HTTPX")
    assert http_backend() == "httpx"
    monkeypatch.setenv(HTTP_ENV, "aiohttp")
    assert http_backend() == "aiohttp"
    monkeypatch.setenv("NO_PROXY", "localhost,example.com")  # no proxy: nothing to bypass
    assert http_backend() == "aiohttp"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert http_backend() == "httpx"
    monkeypatch.setenv("NO_PROXY", "*")  # every proxy is bypassed
    assert http_backend() == "aiohttp"


async def test_env_proxy_is_used_except_for_direct_origins(
    monkeypatch: pytest.MonkeyPatch, sim_url: str, sim_key: str
) -> None:
    """With a proxy in the environment httpx applies it; the simulator's origin is direct."""
    _clear_proxies(monkeypatch)
    monkeypatch.delenv(HTTP_ENV, raising=False)
    dead_proxy = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)
    monkeypatch.setenv("ALL_PROXY", dead_proxy)
    origin = sim_url.split("/v1", 1)[0]
    async with make_client(direct_origins=[origin]) as http, CannedServer([[]]) as server:
        assert isinstance(http._transport, httpx.AsyncHTTPTransport)
        _, acc = await run({"key": sim_key}, sim_url, http)
        assert acc.status == "completed" and acc.output_text == reference_text()
        _, acc = await run({"max_retries": 0}, server.base_url, http)
        assert acc.error is not None and acc.error.kind == "connect"
        assert not server.requests  # it went to the (dead) proxy, not to the server


async def test_session_runtime_client_uses_aiohttp(
    monkeypatch: pytest.MonkeyPatch, sim_url: str
) -> None:
    from tui.session import SessionRuntime

    _clear_proxies(monkeypatch)
    monkeypatch.delenv(HTTP_ENV, raising=False)
    runtime = SessionRuntime([dataclasses.replace(make_session(), base_url=sim_url)])
    await runtime.start()
    try:
        assert type(runtime.client._transport).__name__ == "_AiohttpTransport"  # type: ignore[union-attr]
    finally:
        await runtime.close()


async def test_aiohttp_session_settings_and_close(
    monkeypatch: pytest.MonkeyPatch, sim_url: str, sim_key: str
) -> None:
    import aiohttp

    _clear_proxies(monkeypatch)
    monkeypatch.delenv(HTTP_ENV, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        http = make_client()
        _, acc = await run({"key": sim_key}, sim_url, http)
        assert acc.status == "completed"
        session = http._transport.client  # type: ignore[attr-defined]
        assert isinstance(session, aiohttp.ClientSession) and not session.closed
        connector = session.connector
        assert connector is not None and connector.limit == 0 and connector.limit_per_host == 0
        assert not session.trust_env
        await http.aclose()
        assert session.closed
        del http, session, connector
        gc.collect()
    assert not [w for w in caught if "nclosed" in str(w.message)]
    assert KEEPALIVE_S < 5.0
