"""No value a server sends reaches "tokentop internal error": ``retry:`` with hundreds or
thousands of digits, SSE ids a header cannot carry as they are, absurd ``Retry-After`` /
``retry-after-ms``, ``Content-Length`` and ``Content-Type`` values, odd status lines, an
event past the size limit. Real loopback sockets (tests/stream/hostile.py), both APIs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.stream.helpers import FakeSleep, make_session, of_type, run_session
from tests.stream.hostile import (
    HostileServer,
    Script,
    chat_events,
    head,
    parts,
    responses_events,
)
from tui.config import SessionConfig
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import Api, Notice, Resumed, Retrying, RunEvent
from tui.stream.transport import make_client

APIS: list[Api] = ["chat", "responses"]
WORDS = ["Hello", " there", ", river", "."]
TEXT = "".join(WORDS)
LIMIT_S = 10.0


@pytest.fixture(params=["aiohttp", "httpx"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """The engine's client (aiohttp transport) and plain httpx."""
    http = make_client() if request.param == "aiohttp" else httpx.AsyncClient()
    async with http:
        yield http


@pytest.fixture
async def engine() -> AsyncIterator[httpx.AsyncClient]:
    """The engine's client only."""
    async with make_client() as http:
        yield http


def events_of(api: Api, *, ids: list[str] | None = None, done: bool = True) -> list[bytes]:
    """A stream of ``api`` carrying :data:`WORDS` (chat events may carry ``ids``)."""
    if api == "chat":
        return chat_events(WORDS, ids=ids, done=done)
    return responses_events(WORDS, ids=ids is not None, done=done)


def session(api: Api, **policy: object) -> SessionConfig:
    """Small limits, quick backoff."""
    settings: dict[str, object] = {
        "idle_timeout_s": 2.0,
        "connect_timeout_s": 2.0,
        "max_retries": 2,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.02,
        **policy,
    }
    return make_session(api, timing=None, **settings)  # type: ignore[arg-type]


async def run(
    scripts: list[Script], cfg: SessionConfig, client: httpx.AsyncClient, **kwargs: object
) -> tuple[list[RunEvent], RunAccumulator, HostileServer]:
    """Run ``cfg`` against the scripts, bounded by :data:`LIMIT_S`."""
    async with HostileServer(scripts) as server:
        events, acc = await asyncio.wait_for(
            run_session(cfg, server.base_url, client=client, **kwargs),  # type: ignore[arg-type]
            LIMIT_S,
        )
    no_internal_error(acc)
    return events, acc, server


def no_internal_error(acc: RunAccumulator) -> None:
    """The run ended for a reason a user can read, never an engine crash."""
    assert acc.error is None or "internal error" not in acc.error.message, acc.error


# -- retry: ----------------------------------------------------------------------------------
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("digits", [400, 5000])
async def test_huge_retry_after_a_complete_stream(
    api: Api, digits: int, engine: httpx.AsyncClient
) -> None:
    body = b"retry: " + b"9" * digits + b"\n\n" + b"".join(events_of(api))
    _, acc, _ = await run([parts(head() + body)], session(api), engine)
    assert acc.status == "completed" and acc.output_text == TEXT


async def test_huge_retry_before_a_resume_waits_the_cap(engine: httpx.AsyncClient) -> None:
    """A resume after ``retry:`` of 400 digits waits at most MAX_RETRY_AFTER_S (120 s)."""
    ids = ["1", "2", "3", "4"]
    first = (
        b"retry: " + b"9" * 400 + b"\n" + b"".join(chat_events(WORDS[:2], ids=ids[:2], done=False))
    )
    rest = b"".join(chat_events(WORDS[2:], ids=ids[2:]))
    sleep = FakeSleep()
    events, acc, _ = await run(
        [parts(head() + first), parts(head() + rest)], session("chat"), engine, sleep=sleep
    )
    assert acc.status == "completed" and acc.output_text == TEXT
    assert sleep.delays == [120.0] and of_type(events, Resumed)


# -- ids and Last-Event-ID ---------------------------------------------------------------------
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("last_id", ["é-1", "日本-2", "emoji 🙂", "tab\tinside"])
async def test_non_ascii_id_is_sent_as_utf8(
    api: Api, last_id: str, client: httpx.AsyncClient
) -> None:
    if api == "chat":
        first = chat_events(WORDS[:2], ids=["0", last_id], done=False)
        rest = chat_events(WORDS[2:], ids=["x2", "x3"])
    else:
        events = responses_events(WORDS, ids=True)
        # the id of the third event (seq 2) is the non-ASCII one
        first = [events[0], events[1], events[2].replace(b"id: 2\n", f"id: {last_id}\n".encode())]
        rest = events[3:]
    scripts = [parts(head() + b"".join(first)), parts(head() + b"".join(rest))]
    events_, acc, server = await run(scripts, session(api), client)
    assert acc.status == "completed" and acc.output_text == TEXT
    (resumed,) = of_type(events_, Resumed)
    assert resumed.last_event_id == last_id
    assert server.requests[1].header_bytes("last-event-id") == last_id.encode("utf-8")


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("last_id", ["a\x01b", "bell\x07", "del\x7f", "  spaced", "trail "])
async def test_id_no_header_can_carry_restarts(
    api: Api, last_id: str, client: httpx.AsyncClient
) -> None:
    if api == "chat":
        first = chat_events(WORDS[:2], ids=["0", last_id], done=False)
    else:
        events = responses_events(WORDS, ids=True)
        first = [events[0], events[1], events[2].replace(b"id: 2\n", f"id:{last_id}\n".encode())]
    scripts = [parts(head() + b"".join(first)), parts(head() + b"".join(events_of(api)))]
    events_, acc, server = await run(scripts, session(api), client)
    assert acc.status == "completed" and acc.output_text == TEXT
    (notice,) = [n for n in of_type(events_, Notice) if n.code == "resume"]
    assert "cannot be sent in a Last-Event-ID header" in notice.message
    assert [r.mode for r in of_type(events_, Retrying)] == ["restart"]
    assert "last-event-id" not in server.requests[1].headers


# -- Retry-After --------------------------------------------------------------------------------
RETRY_AFTER = [
    ("retry-after", "9" * 400),
    ("retry-after", "1" * 5000),
    ("retry-after", "1e400"),
    ("retry-after", "-3"),
    ("retry-after", "nan"),
    ("retry-after", "inf"),
    ("retry-after", "\u0661\u0662"),  # Arabic-Indic digits: float() would read 12
    ("retry-after", "1_0"),
    ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"),
    ("retry-after", "Mon, 01 Jan 0001 00:00:00 GMT"),
    ("retry-after", "Mon, 99 Foo 99999 99:99:99 GMT"),
    ("retry-after", ""),
    ("retry-after-ms", "9" * 400),
    ("retry-after-ms", "-1e308"),
    ("retry-after-ms", "0x10"),
]


@pytest.mark.parametrize(("name", "value"), RETRY_AFTER, ids=lambda v: repr(v)[:24])
async def test_absurd_retry_after(name: str, value: str, engine: httpx.AsyncClient) -> None:
    busy = parts(
        head(503, reason="Busy", content_type="text/plain", headers=[(name, value)]) + b"busy"
    )
    ok = parts(head() + b"".join(events_of("chat")))
    sleep = FakeSleep()
    events, acc, _ = await run([busy, ok], session("chat"), engine, sleep=sleep)
    if acc.status == "completed":
        assert acc.output_text == TEXT
        assert all(0 <= d <= 120 for d in sleep.delays)
    else:  # a delay past 120 s: not retried, and said so
        assert acc.error is not None and "not retried" in acc.error.message
        assert len(acc.error.message) < 400 and not of_type(events, Retrying)


# -- Content-Length, Content-Type, status lines ---------------------------------------------
@pytest.mark.parametrize(
    "length", ["-1", "99999999999999999999999999", "10, 20", "abc", "1e3", "0x10", "3"]
)
@pytest.mark.parametrize("api", APIS)
async def test_odd_content_length(api: Api, length: str, client: httpx.AsyncClient) -> None:
    raw = head(headers=[("content-length", length)]) + b"".join(events_of(api))
    await run([parts(raw)], session(api, max_retries=1), client)


@pytest.mark.parametrize(
    "ctype",
    [
        "text/event-stream;charset=utf-8;;foo",
        'TEXT/EVENT-STREAM ; q="a;b"',
        "text/event-stream; charset=latin-1",
        "text/event-stream;" + "x=" * 2000,
    ],
)
async def test_event_stream_with_odd_params(ctype: str, client: httpx.AsyncClient) -> None:
    raw = head(content_type=ctype) + b"".join(events_of("chat"))
    _, acc, _ = await run([parts(raw)], session("chat"), client)
    assert acc.status == "completed" and acc.output_text == TEXT


@pytest.mark.parametrize(
    "ctype", ["text/event-streamx", "", "é/ü", "text/plain; x=text/event-stream"]
)
async def test_not_an_event_stream_content_types(ctype: str, client: httpx.AsyncClient) -> None:
    raw = head(content_type=ctype) + b"".join(events_of("chat"))
    _, acc, _ = await run([parts(raw)], session("chat"), client)
    assert acc.status == "failed" and acc.error is not None and acc.error.kind == "protocol"


@pytest.mark.parametrize(
    "status_line",
    [
        b"HTTP/1.1 200",
        b"HTTP/1.1 99999 Odd",
        b"HTTP/1.0 200 OK",
        b"HTTP/1.1 200 \xff\xfe",
        b"ICY 200 OK",
    ],
)
async def test_odd_status_lines(status_line: bytes, client: httpx.AsyncClient) -> None:
    raw = status_line + b"\r\ncontent-type: text/event-stream\r\n\r\n" + b"".join(events_of("chat"))
    await run([parts(raw)], session("chat", max_retries=1), client)


# -- one event past the size limit -------------------------------------------------------------
@pytest.mark.parametrize("api", APIS)
async def test_an_event_past_8_mib_fails_clearly_and_is_not_retried(
    api: Api, engine: httpx.AsyncClient
) -> None:
    big = "x" * (9 * 1024 * 1024)
    if api == "chat":
        chunk_ = {"id": "c1", "choices": [{"index": 0, "delta": {"content": big}}]}
        raw = b"data: " + json.dumps(chunk_).encode() + b"\n\n"
    else:
        payload = {"type": "response.output_text.delta", "sequence_number": 1, "delta": big}
        raw = b"event: response.output_text.delta\ndata: " + json.dumps(payload).encode() + b"\n\n"
    pieces = [raw[i : i + 65536] for i in range(0, len(raw), 65536)]
    script = parts(head(), *pieces, *events_of(api))
    _, acc, server = await run([script], session(api), engine)
    assert acc.status == "failed" and acc.error is not None and acc.error.kind == "protocol"
    assert "8 MiB limit" in acc.error.message
    assert len(server.requests) == 1  # the same stream again would fail the same way


async def test_a_large_event_under_the_limit_is_read_in_linear_time(
    engine: httpx.AsyncClient,
) -> None:
    big = "y" * (6 * 1024 * 1024)
    payload = {"id": "c1", "choices": [{"index": 0, "delta": {"content": big}}]}
    raw = b"data: " + json.dumps(payload).encode() + b"\n\n"
    pieces = [raw[i : i + 4096] for i in range(0, len(raw), 4096)]
    script = parts(head(), *pieces, *chat_events(["!"]))
    loop = asyncio.get_running_loop()
    start = loop.time()
    _, acc, _ = await run([script], session("chat"), engine)
    assert acc.status == "completed" and acc.output_text == big + "!"
    assert loop.time() - start < 6.0


@pytest.mark.parametrize(
    "body", [b"[" * 20_000, b'{"error": ' * 5000, b'{"error": {"code": ' + b"9" * 5000 + b"}}"]
)
async def test_error_body_json_that_cannot_be_read(body: bytes, engine: httpx.AsyncClient) -> None:
    """Nesting deeper than msgspec's guard, a 5000-digit code: the HTTP error is reported."""
    script = parts(head(500, reason="Oops", content_type="application/json") + body)
    _, acc, _ = await run([script], session("chat", max_retries=0), engine)
    assert acc.error is not None and acc.error.http_status == 500
    assert acc.error.message.startswith("HTTP 500 Oops")


@pytest.mark.parametrize("response_id", ["r/../../models?x=1#y", "résp 1", "a\u2028b"])
async def test_a_server_chosen_response_id_stays_one_path_segment(
    response_id: str, engine: httpx.AsyncClient
) -> None:
    """The resume GET of a background response escapes the id the server chose."""
    from urllib.parse import unquote

    events = responses_events(WORDS, response_id=response_id, background=True)
    scripts = [parts(head() + b"".join(events[:3])), parts(head() + b"".join(events[3:]))]
    _, acc, server = await run(scripts, session("responses", background=True), engine)
    assert acc.status == "completed" and acc.output_text == TEXT
    second = server.requests[1]
    path, _, query = second.path.partition("?")
    assert second.method == "GET" and query == "stream=true&starting_after=2"
    root, v1, responses, segment = path.split("/")
    assert (root, v1, responses, unquote(segment)) == ("", "v1", "responses", response_id)
