"""StreamRun against canned byte responses over loopback: request headers and body, the
headers kept from a response, and server behaviours the simulator does not produce."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from email.utils import formatdate

import httpx
import pytest

from tests.stream.canned import Canned, CannedServer, response
from tests.stream.helpers import FakeSleep, make_session, of_type, run_session, sse
from tui.stream.chat import build_chat_body
from tui.stream.events import Connecting, RawEvent, Resumed, Retrying, Started
from tui.stream.runner import StreamRun
from tui.vocab import Api

CHUNK = '{"id":"c1","choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":%s}]}'
CHAT_OK = sse(CHUNK % ("Hi", "null"), CHUNK % (" there", '"stop"'), "[DONE]")


def created(seq: int) -> str:
    """A ``response.created`` event of a background response."""
    return json.dumps(
        {
            "type": "response.created",
            "sequence_number": seq,
            "response": {"id": "resp_1", "status": "queued", "background": True},
        }
    )


def delta(seq: int, text: str) -> str:
    """A ``response.output_text.delta`` event."""
    return json.dumps({"type": "response.output_text.delta", "sequence_number": seq, "delta": text})


def completed(seq: int) -> str:
    """A ``response.completed`` event."""
    return json.dumps(
        {
            "type": "response.completed",
            "sequence_number": seq,
            "response": {"id": "resp_1", "status": "completed", "output": []},
        }
    )


async def test_request_headers_and_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENTOP_WIRE_KEY", "sk-wire")
    async with CannedServer([[response(body=CHAT_OK)]]) as server:
        session = make_session("chat", timing=None, api_key_env="TOKENTOP_WIRE_KEY")
        session = dataclasses.replace(session, headers={"X-Team": "eval"})
        _, acc = await run_session(session, server.base_url)
        (request,) = server.requests
    assert acc.status == "completed" and acc.output_text == "Hi there"
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-wire"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-team"] == "eval"
    assert json.loads(request.body) == build_chat_body(session)


async def test_no_authorization_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKENTOP_WIRE_KEY", raising=False)
    async with CannedServer([[response(body=CHAT_OK)]]) as server:
        session = make_session("chat", timing=None, api_key_env="TOKENTOP_WIRE_KEY")
        await run_session(session, server.base_url)
        assert "authorization" not in server.requests[0].headers
        await run_session(make_session("chat", timing=None), server.base_url)
        assert "authorization" not in server.requests[1].headers


async def test_started_keeps_ids_and_rate_limit_headers() -> None:
    headers = {
        "x-request-id": "req_abc",
        "x-ratelimit-remaining-tokens": "999",
        "x-ratelimit-reset-requests": "1s",
        "openai-processing-ms": "12",
        "set-cookie": "session=secret",
    }
    async with CannedServer([[response(body=CHAT_OK, headers=headers)]]) as server:
        events, acc = await run_session(make_session("chat", timing=None), server.base_url)
    (started,) = of_type(events, Started)
    kept = dict(started.headers)
    assert started.request_id == "req_abc" == acc.request_id
    assert kept["x-ratelimit-remaining-tokens"] == "999" and kept["openai-processing-ms"] == "12"
    assert "set-cookie" not in kept


async def test_request_id_header_variant() -> None:
    async with CannedServer([[response(body=CHAT_OK, headers={"request-id": "r-9"})]]) as server:
        events, _ = await run_session(make_session("chat", timing=None), server.base_url)
    assert of_type(events, Started)[0].request_id == "r-9"


async def test_done_without_blank_line_at_eof() -> None:
    body = sse(CHUNK % ("a", "null")) + b"data: [DONE]"
    async with CannedServer([[response(body=body)]]) as server:
        events, acc = await run_session(make_session("chat", timing=None), server.base_url)
    assert acc.status == "completed" and acc.output_text == "a"
    assert not of_type(events, Retrying)


async def test_chat_eof_without_finish_or_done_is_truncated() -> None:
    body = sse(CHUNK % ("a", "null"), CHUNK % ("b", "null"))
    async with CannedServer([[response(body=body)]]) as server:
        session = make_session("chat", timing=None, on_drop="fail")
        _, acc = await run_session(session, server.base_url)
    assert (acc.status, acc.finish_reason) == ("failed", "truncated")
    assert acc.error is not None and acc.error.kind == "truncated"
    assert "[DONE]" in acc.error.message and acc.output_text == "ab"


async def test_flat_error_chunk_over_the_wire() -> None:
    flat = '{"object":"error","message":"context too long","type":"BadRequestError","code":400}'
    body = sse(CHUNK % ("partial", "null"), flat, "[DONE]")
    async with CannedServer([[response(body=body)]]) as server:
        _, acc = await run_session(make_session("chat", timing=None), server.base_url)
    assert acc.status == "failed" and acc.output_text == "partial"
    assert acc.error is not None and acc.error.message == "context too long"


async def test_retry_after_http_date() -> None:
    when = formatdate(time.time() + 30, usegmt=True)
    busy = response(
        503,
        b'{"error":{"message":"busy"}}',
        reason="Service Unavailable",
        content_type="application/json",
        headers={"retry-after": when},
        length=True,
    )
    async with CannedServer([[busy], [response(body=CHAT_OK)]]) as server:
        sleep = FakeSleep()
        _, acc = await run_session(make_session("chat", timing=None), server.base_url, sleep=sleep)
    assert acc.status == "completed"
    (delay,) = sleep.delays
    assert 25.0 <= delay <= 31.0  # the date has a one-second resolution


@pytest.mark.parametrize(
    ("status", "hint", "retried"),
    [(503, "false", False), (418, "true", True), (400, "true", False), (418, None, False)],
)
async def test_x_should_retry(status: int, hint: str | None, retried: bool) -> None:
    headers = {"x-should-retry": hint} if hint else {}
    failing = response(
        status,
        b'{"error":{"message":"no"}}',
        reason="Nope",
        content_type="application/json",
        headers=headers,
        length=True,
    )
    async with CannedServer([[failing], [response(body=CHAT_OK)]]) as server:
        events, acc = await run_session(
            make_session("chat", timing=None), server.base_url, sleep=FakeSleep()
        )
    assert (acc.status == "completed") is retried
    assert len(of_type(events, Retrying)) == int(retried)
    if not retried:
        assert acc.error is not None and acc.error.message == f"HTTP {status} Nope: no"


async def test_timeout_waiting_for_headers_is_retried() -> None:
    async with CannedServer([None, [response(body=CHAT_OK)]]) as server:
        session = make_session("chat", timing=None, idle_timeout_s=0.3)
        events, acc = await run_session(session, server.base_url, sleep=FakeSleep())
    assert acc.status == "completed"
    (retry,) = of_type(events, Retrying)
    assert retry.cause.kind == "timeout" and retry.mode == "retry"


async def test_resume_that_404s_falls_back_to_restart() -> None:
    dropped = sse(
        created(0), delta(1, "Hel"), event=["response.created", "response.output_text.delta"]
    )
    full = sse(
        created(0),
        delta(1, "Hello"),
        completed(2),
        event=["response.created", "response.output_text.delta", "response.completed"],
    )
    gone = response(
        404,
        b'{"error":{"message":"No response found"}}',
        reason="Not Found",
        content_type="application/json",
        length=True,
    )
    async with CannedServer([[response(body=dropped)], [gone], [response(body=full)]]) as server:
        session = make_session("responses", timing=None, background=True)
        events, acc = await run_session(session, server.base_url, sleep=FakeSleep())
        paths = [(r.method, r.path) for r in server.requests]
    assert paths == [
        ("POST", "/v1/responses"),
        ("GET", "/v1/responses/resp_1?stream=true&starting_after=1"),
        ("POST", "/v1/responses"),
    ]
    assert [r.mode for r in of_type(events, Retrying)] == ["resume", "restart"]
    assert acc.status == "completed" and acc.output_text == "Hello"
    assert acc.attempts[1].output_text == "Hel"  # the restart kept the partial output
    assert not of_type(events, Resumed)
    assert [c.method for c in of_type(events, Connecting)] == ["POST", "GET", "POST"]


async def test_resume_sends_last_event_id_header() -> None:
    first = b"id: 0\ndata: " + (CHUNK % ("a", "null")).encode() + b"\n\n"
    rest = b"id: 1\ndata: " + (CHUNK % ("b", '"stop"')).encode() + b"\n\nid: 2\ndata: [DONE]\n\n"
    async with CannedServer([[response(body=first)], [response(body=rest)]]) as server:
        _, acc = await run_session(
            make_session("chat", timing=None), server.base_url, sleep=FakeSleep()
        )
        assert "last-event-id" not in server.requests[0].headers
        assert server.requests[1].headers["last-event-id"] == "0"
    assert acc.output_text == "ab" and acc.status == "completed" and acc.resumes == 1


async def test_stall_after_finish_reason_is_complete() -> None:
    """finish_reason arrived, then silence without [DONE]: the answer is whole, not stalled."""
    body = sse(CHUNK % ("a", "null"), CHUNK % ("b", '"length"'))
    async with CannedServer([[response(body=body), 3.0]]) as server:
        session = make_session("chat", timing=None, idle_timeout_s=0.3)
        events, acc = await run_session(session, server.base_url, sleep=FakeSleep())
    assert (acc.status, acc.finish_reason) == ("incomplete", "length")
    assert not of_type(events, Retrying) and len(server.requests) == 1


async def test_consumer_cancelled_stops_the_stream() -> None:
    body = sse(CHUNK % ("a", "null"))
    server = CannedServer([[response(body=body), 30.0]])
    async with server, httpx.AsyncClient() as client:
        session = make_session("chat", timing=None)
        run = StreamRun(session, client=client, base_url=server.base_url)

        async def consume() -> None:
            async for _ in run:
                pass

        task = asyncio.get_running_loop().create_task(consume())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        producer = run._task
        assert producer is not None
        await asyncio.wait_for(asyncio.shield(producer), 5.0)
        assert producer.done()


async def test_on_drop_restart_does_not_send_last_event_id() -> None:
    first = b"id: 0\ndata: " + (CHUNK % ("a", "null")).encode() + b"\n\n"
    async with CannedServer([[response(body=first)], [response(body=CHAT_OK)]]) as server:
        session = make_session("chat", timing=None, on_drop="restart")
        events, acc = await run_session(session, server.base_url, sleep=FakeSleep())
        assert "last-event-id" not in server.requests[1].headers
    assert [r.mode for r in of_type(events, Retrying)] == ["restart"]
    assert acc.output_text == "Hi there" and acc.attempts[0].output_text == "a"
    assert all(e.id is None for e in of_type(events, RawEvent) if e.attempt == 2)


async def test_injected_clock_drives_every_timestamp() -> None:
    """Every ``t`` comes from the injected clock (minus its reading at the start)."""
    ticks: list[float] = []

    def clock() -> float:
        ticks.append(1000.0 + 0.25 * len(ticks))
        return ticks[-1]

    async with CannedServer([[response(body=CHAT_OK)]]) as server, httpx.AsyncClient() as client:
        run = StreamRun(
            make_session("chat", timing=None), client=client, base_url=server.base_url, clock=clock
        )
        events = [e async for e in run]
    assert ticks[0] == 1000.0 and isinstance(events[0], Connecting) and events[0].t == 0.25
    assert all((e.t / 0.25).is_integer() for e in events)
    assert events[-1].t == ticks[-1] - 1000.0


async def test_last_event_id_reconnect_waits_the_streams_retry_time() -> None:
    first = b"retry: 1500\nid: 0\ndata: " + (CHUNK % ("a", "null")).encode() + b"\n\n"
    rest = b"id: 1\ndata: " + (CHUNK % ("b", '"stop"')).encode() + b"\n\ndata: [DONE]\n\n"
    async with CannedServer([[response(body=first)], [response(body=rest)]]) as server:
        sleep = FakeSleep()
        _, acc = await run_session(make_session("chat", timing=None), server.base_url, sleep=sleep)
    assert acc.output_text == "ab" and sleep.delays == [1.5]


async def test_unusable_url_fails_at_once() -> None:
    sleep = FakeSleep()
    events, acc = await run_session(make_session("chat"), "ftp://example.invalid/v1", sleep=sleep)
    assert acc.status == "failed" and acc.error is not None and acc.error.kind == "connect"
    assert "cannot use the URL" in acc.error.message and sleep.delays == []
    assert not of_type(events, Retrying)


async def test_empty_200_body_is_truncated_never_a_stop() -> None:
    """LiteLLM turned an upstream reset into a 200 with an empty body (PR #33222)."""
    async with CannedServer([[response(body=b"")]]) as server:
        session = make_session("chat", timing=None, on_drop="fail")
        _, acc = await run_session(session, server.base_url)
    assert (acc.status, acc.finish_reason) == ("failed", "truncated")


async def test_resumed_stream_ending_without_terminal_resumes_again() -> None:
    """openai-node #2600: a resumed stream can end cleanly while the response is still in
    progress; it is resumed again from the new cursor, not reported complete."""
    names = ["response.created", "response.output_text.delta"]
    first = sse(created(0), delta(1, "a"), event=names)
    middle = sse(delta(2, "b"), event=names[1:])
    last = sse(delta(3, "c"), completed(4), event=[names[1], "response.completed"])
    answers: list[Canned] = [[response(body=first)], [response(body=middle)], [response(body=last)]]
    async with CannedServer(answers) as server:
        session = make_session("responses", timing=None, background=True)
        events, acc = await run_session(session, server.base_url, sleep=FakeSleep())
        paths = [r.path for r in server.requests]
    assert paths[1:] == [
        "/v1/responses/resp_1?stream=true&starting_after=1",
        "/v1/responses/resp_1?stream=true&starting_after=2",
    ]
    assert acc.status == "completed" and acc.output_text == "abc" and acc.resumes == 2
    assert [r.cause.kind for r in of_type(events, Retrying)] == ["truncated", "truncated"]


@pytest.mark.parametrize("api", ["responses", "chat"])
async def test_a_404_without_v1_in_the_url_says_to_add_it(api: Api) -> None:
    missing = response(
        404,
        b'{"detail":"Not Found"}',
        reason="Not Found",
        content_type="application/json",
        length=True,
    )
    async with CannedServer([[missing]]) as server:
        bare = server.base_url.removesuffix("/v1")
        session = make_session(api, timing=None)
        _, acc = await run_session(session, bare, sleep=FakeSleep())
    assert acc.status == "failed" and acc.error is not None
    assert f'try base_url = "{bare}/v1"' in acc.error.message
    assert len(acc.attempts) == 1  # a 404 is not retried


async def test_the_v1_hint_never_shows_credentials_of_the_url() -> None:
    missing = response(404, b"{}", reason="Not Found", content_type="application/json")
    async with CannedServer([[missing]]) as server:
        bare = server.base_url.removesuffix("/v1")
        with_user = bare.replace("http://", "http://probe:s3cret-pass@")
        _, acc = await run_session(make_session("chat", timing=None), with_user)
    assert acc.error is not None and f'try base_url = "{bare}/v1"' in acc.error.message
    assert "s3cret" not in acc.error.message and "probe" not in acc.error.message


async def test_a_404_under_v1_gets_no_such_hint() -> None:
    missing = response(
        404, b'{"error":{"message":"no such model"}}', reason="Not Found", length=True
    )
    async with CannedServer([[missing]]) as server:
        _, acc = await run_session(make_session("chat", timing=None), server.base_url)
    assert acc.error is not None and "/v1" not in acc.error.message


async def test_501_is_not_retried() -> None:
    unimplemented = response(
        501, b"streaming is not implemented", reason="Not Implemented", length=True
    )
    async with CannedServer([[unimplemented], [response(body=CHAT_OK)]]) as server:
        _, acc = await run_session(make_session("chat", timing=None), server.base_url)
        requests = len(server.requests)
    assert acc.status == "failed" and requests == 1
