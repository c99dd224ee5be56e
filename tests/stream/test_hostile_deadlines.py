"""Every run ends in bounded time against servers that never finish: a broken chunk size
(aiohttp's parser then waits forever), keep-alive comments forever, headers trickled one byte
at a time, a body that never ends a line, a long Retry-After (``max_duration_s``). Real
loopback sockets (tests/stream/hostile.py), both transports, both APIs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.stream.helpers import make_session, of_type, run_session
from tests.stream.hostile import (
    HostileServer,
    Script,
    chat_events,
    chunk,
    forever,
    head,
    parts,
    responses_events,
)
from tui.config import SessionConfig
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import Api, Retrying, RunEvent
from tui.stream.transport import make_client

APIS: list[Api] = ["chat", "responses"]
WORDS = ["Hello", " there", ", river", "."]
LIMIT_S = 8.0
"""A bound far above what each run should take (the limits in these sessions are < 2 s)."""


@pytest.fixture(params=["aiohttp", "httpx"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """The engine's client (aiohttp transport) and plain httpx: where transports differ."""
    http = make_client() if request.param == "aiohttp" else httpx.AsyncClient()
    async with http:
        yield http


@pytest.fixture
async def engine() -> AsyncIterator[httpx.AsyncClient]:
    """The engine's client only: for limits the runner enforces above any transport."""
    async with make_client() as http:
        yield http


def events_of(api: Api, words: list[str] = WORDS, *, done: bool = True) -> list[bytes]:
    """A stream of ``api`` (chat or responses) carrying ``words``."""
    return chat_events(words, done=done) if api == "chat" else responses_events(words, done=done)


def session(api: Api, **policy: object) -> SessionConfig:
    """A session with small limits: idle 0.5 s, connect 0.5 s, no retries by default."""
    settings: dict[str, object] = {
        "idle_timeout_s": 0.5,
        "connect_timeout_s": 0.5,
        "max_retries": 0,
        **policy,
    }
    return make_session(api, timing=None, **settings)  # type: ignore[arg-type]


async def bounded_run(
    scripts: list[Script], cfg: SessionConfig, client: httpx.AsyncClient
) -> tuple[list[RunEvent], RunAccumulator, float, HostileServer]:
    """Run ``cfg`` against a hostile server; fail the test past :data:`LIMIT_S`."""
    loop = asyncio.get_running_loop()
    async with HostileServer(scripts) as server:
        start = loop.time()
        events, acc = await asyncio.wait_for(
            run_session(cfg, server.base_url, client=client), LIMIT_S
        )
        took = loop.time() - start
    return events, acc, took, server


# -- a transport that never returns ---------------------------------------------------------
BROKEN_CHUNK_LINES = [
    ("chat", b"zz\r\n"),
    ("responses", b"-5\r\n"),
    ("chat", b"f" * 24 + b"\r\n"),
    ("responses", b"5;\x01\r\n"),
    ("chat", b"5\r\nabcdefgh\r\n"),
]


@pytest.mark.parametrize(("api", "broken"), BROKEN_CHUNK_LINES, ids=repr)
async def test_broken_chunk_size_ends_within_the_idle_timeout(
    api: Api, broken: bytes, client: httpx.AsyncClient
) -> None:
    """aiohttp's parser waits forever on these (the connection stays open); httpx fails."""
    first, *_ = events_of(api)
    script = parts(head(chunked=True), chunk(first), 0.2, broken, hold=True)
    _events, acc, took, _ = await bounded_run([script], session(api), client)
    assert acc.status == "failed" and acc.error is not None
    assert acc.error.kind in ("stalled", "dropped")
    assert took < 0.2 + 0.5 * 1.25 + 2.0  # the watchdog, not a transport that waits forever


async def test_silent_transport_is_cut_by_the_watchdog(client: httpx.AsyncClient) -> None:
    """A body that stops after one event (no byte at all): a stall within 1.25 x idle."""
    first, *_ = events_of("chat")
    script = parts(head(), first, hold=True)
    _events, acc, took, _ = await bounded_run([script], session("chat"), client)
    assert acc.error is not None and acc.error.kind == "stalled"
    assert "0.5 s" in acc.error.message and took < 3.0


# -- keep-alives are bytes, not content -----------------------------------------------------
@pytest.mark.parametrize("api", APIS)
async def test_keepalives_forever_hit_first_token_timeout(
    api: Api, engine: httpx.AsyncClient
) -> None:
    script = forever(head(), b": keep-alive\n\n", every=0.05)
    cfg = session(api, first_token_timeout_s=0.6)
    _events, acc, took, _ = await bounded_run([script], cfg, engine)
    assert acc.status == "failed" and acc.error is not None
    assert acc.error.kind == "stalled"
    assert "first_token_timeout_s = 0.6 s" in acc.error.message
    assert 0.55 <= took < 4.0


@pytest.mark.parametrize("api", APIS)
async def test_first_token_timeout_is_retried_like_a_stall(
    api: Api, engine: httpx.AsyncClient
) -> None:
    keepalives = forever(head(), b": ping\n\n", every=0.05)
    ok = parts(head(), *events_of(api))
    cfg = session(api, first_token_timeout_s=0.6, max_retries=2, backoff_initial_s=0.01)
    events, acc, _, server = await bounded_run([keepalives, ok], cfg, engine)
    assert acc.status == "completed" and acc.output_text == "".join(WORDS)
    (retry,) = of_type(events, Retrying)
    assert retry.cause.kind == "stalled" and "first_token_timeout_s" in retry.cause.message
    assert len(server.requests) == 2


@pytest.mark.parametrize("api", APIS)
async def test_trickled_data_line_is_not_content(api: Api, engine: httpx.AsyncClient) -> None:
    """One byte of a never-ending line every 50 ms: bytes arrive, content never does."""
    script = forever(head() + b"data: ", b"x", every=0.05)
    cfg = session(api, first_token_timeout_s=0.6)
    _, acc, took, _ = await bounded_run([script], cfg, engine)
    assert acc.error is not None and "first_token_timeout_s = 0.6 s" in acc.error.message
    assert took < 4.0


async def test_first_token_timeout_before_the_headers(engine: httpx.AsyncClient) -> None:
    """Shorter than the header deadline: it names itself, kind timeout (nothing started)."""
    script = parts(b"HTTP/1.1 200 OK\r\n", hold=True)
    cfg = session("chat", first_token_timeout_s=0.4, idle_timeout_s=5.0)
    _, acc, took, _ = await bounded_run([script], cfg, engine)
    assert acc.error is not None and acc.error.kind == "timeout"
    assert "first_token_timeout_s = 0.4 s" in acc.error.message and took < 3.0


# -- headers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("api", APIS)
async def test_trickled_headers_hit_the_header_deadline(
    api: Api, client: httpx.AsyncClient
) -> None:
    raw = head() + b"".join(events_of(api))
    script = parts(*[item for byte in raw for item in (bytes([byte]), 0.1)])
    _events, acc, took, _ = await bounded_run([script], session(api), client)
    assert acc.status == "failed" and acc.error is not None and acc.error.kind == "timeout"
    assert "no complete response headers" in acc.error.message
    assert "within 1 s (connect_timeout_s + idle_timeout_s)" in acc.error.message
    assert took < 4.0


async def test_trickled_headers_are_retried(engine: httpx.AsyncClient) -> None:
    raw = head() + b"".join(events_of("chat"))
    slow = parts(*[item for byte in raw for item in (bytes([byte]), 0.1)])
    ok = parts(raw)
    cfg = session("chat", max_retries=1, backoff_initial_s=0.01)
    events, acc, _, _ = await bounded_run([slow, ok], cfg, engine)
    assert acc.status == "completed" and acc.output_text == "".join(WORDS)
    (retry,) = of_type(events, Retrying)
    assert retry.mode == "retry" and retry.cause.kind == "timeout"


async def test_trickled_error_body_keeps_its_status(engine: httpx.AsyncClient) -> None:
    """A 503 whose body trickles forever: the HTTP error is reported, in bounded time."""
    script = forever(head(503, reason="Busy", content_type="text/plain"), b"x", every=0.05)
    _, acc, took, _ = await bounded_run([script], session("chat"), engine)
    assert acc.error is not None and acc.error.http_status == 503 and took < 4.0


# -- the whole run ----------------------------------------------------------------------------
@pytest.mark.parametrize("api", APIS)
async def test_max_duration_cuts_a_stream_kept_alive(api: Api, engine: httpx.AsyncClient) -> None:
    """Content came, then keep-alives forever (no stall, no first-token limit left)."""
    first, second, *_ = events_of(api)
    script = forever(head() + first + second, b": ping\n\n", every=0.05)
    cfg = session(api, max_duration_s=1.0)
    _, acc, took, _ = await bounded_run([script], cfg, engine)
    assert acc.status == "failed" and acc.error is not None and acc.error.kind == "timeout"
    assert acc.error.message == "the run took longer than max_duration_s = 1 s"
    assert acc.finish_reason == "truncated" and acc.output_text
    assert 0.9 <= took < 4.0


async def test_max_duration_includes_retry_waits(engine: httpx.AsyncClient) -> None:
    busy = parts(
        head(503, reason="Busy", content_type="text/plain", headers=[("retry-after", "60")])
    )
    cfg = session("chat", max_retries=3, max_duration_s=1.0)
    events, acc, took, _ = await bounded_run([busy], cfg, engine)
    assert len(of_type(events, Retrying)) == 1
    assert acc.error is not None and "max_duration_s = 1 s" in acc.error.message
    assert acc.finish_reason == "error" and took < 4.0


async def test_max_duration_not_reached(engine: httpx.AsyncClient) -> None:
    script = parts(head(), *events_of("chat"))
    _, acc, _, _ = await bounded_run([script], session("chat", max_duration_s=30.0), engine)
    assert acc.status == "completed" and acc.output_text == "".join(WORDS)
