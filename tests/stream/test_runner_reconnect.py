"""StreamRun against the simulator: retries before the first byte, resume and restart after
drops and stalls, giving up, and cancel (also of a background response on the server)."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from tests.stream.helpers import FakeSleep, make_session, of_type, run_session
from tests.stream.test_runner_sim import reference_text
from tui.stream.events import (
    Api,
    Connecting,
    Finished,
    Resumed,
    Retrying,
    RunEvent,
    Started,
    TextDelta,
)
from tui.stream.runner import StreamRun

APIS: list[Api] = ["chat", "responses"]


# -- drops -------------------------------------------------------------------------------
async def test_background_responses_resume_equals_uninterrupted(sim_url: str, sim_key: str) -> None:
    session = make_session("responses", fault="drop=15", key=sim_key, background=True)
    events, acc = await run_session(session, sim_url)
    assert acc.status == "completed" and acc.finish_reason == "stop"
    assert acc.output_text == reference_text()  # exactly: nothing lost, nothing doubled
    (retry,) = of_type(events, Retrying)
    assert retry.mode == "resume" and retry.cause.kind == "dropped" and retry.attempt == 1
    (resumed,) = of_type(events, Resumed)
    assert resumed.attempt == 2 and resumed.after_sequence == 14  # 15 events: seq 0..14
    second = of_type(events, Connecting)[1]
    assert second.method == "GET"
    assert second.url == (f"{sim_url}/responses/{acc.response_id}?stream=true&starting_after=14")
    assert acc.resumes == 1 and [a.number for a in acc.attempts] == [1, 2]
    assert acc.attempts[1].resumed_after == 14 and acc.attempts[0].cause is not None
    assert acc.metrics().output_tokens == 60 and not acc.metrics().tokens_estimated


async def test_background_resume_twice(sim_url: str, sim_key: str) -> None:
    session = make_session("responses", fault="drop=12*2", key=sim_key, background=True)
    events, acc = await run_session(session, sim_url)
    assert acc.status == "completed" and acc.output_text == reference_text()
    assert [r.after_sequence for r in of_type(events, Resumed)] == [11, 23]
    assert acc.resumes == 2


async def test_background_stall_resumes(sim_url: str, sim_key: str) -> None:
    session = make_session(
        "responses", fault="stall=20", key=sim_key, background=True, idle_timeout_s=0.5
    )
    events, acc = await run_session(session, sim_url)
    assert acc.status == "completed" and acc.output_text == reference_text()
    (retry,) = of_type(events, Retrying)
    assert retry.mode == "resume" and retry.cause.kind == "stalled"
    assert "0.5 s" in retry.cause.message


@pytest.mark.parametrize("api", APIS)
async def test_drop_without_resume_restarts(api: Api, sim_url: str, sim_key: str) -> None:
    events, acc = await run_session(make_session(api, fault="drop=20", key=sim_key), sim_url)
    assert acc.status == "completed" and acc.output_text == reference_text()
    (retry,) = of_type(events, Retrying)
    assert retry.mode == "restart" and retry.cause.kind == "dropped"
    assert not of_type(events, Resumed) and acc.resumes == 0
    first, second = acc.attempts
    assert first.output_text and reference_text().startswith(first.output_text)
    assert first.output_text != reference_text() and second.output_text is None
    assert [c.method for c in of_type(events, Connecting)] == ["POST", "POST"]
    # the metrics describe the kept output only
    assert acc.metrics().chunks == 60


async def test_last_event_id_reconnect(sim_url: str, sim_key: str) -> None:
    events, acc = await run_session(make_session("chat", fault="ids,drop=25", key=sim_key), sim_url)
    assert acc.status == "completed" and acc.output_text == reference_text()
    (retry,) = of_type(events, Retrying)
    assert retry.mode == "resume"
    (resumed,) = of_type(events, Resumed)
    assert resumed.last_event_id == "24" and resumed.after_sequence is None
    assert acc.attempts[1].resumed_after == "24"


@pytest.mark.parametrize("api", APIS)
async def test_stall_restarts(api: Api, sim_url: str, sim_key: str) -> None:
    session = make_session(api, fault="stall=10", key=sim_key, idle_timeout_s=0.5)
    events, acc = await run_session(session, sim_url)
    assert acc.status == "completed" and acc.output_text == reference_text()
    (retry,) = of_type(events, Retrying)
    assert retry.cause.kind == "stalled" and retry.mode == "restart"


async def test_keepalives_prevent_a_false_stall(sim_url: str, sim_key: str) -> None:
    """1.5 s to the first token, idle timeout 0.6 s: the keep-alive comments are bytes."""
    timing = "ttft=1.5,tps=0,tokens=20"
    session = make_session(
        "chat", fault="keepalive=0.1", key=sim_key, timing=timing, idle_timeout_s=0.6
    )
    events, acc = await run_session(session, sim_url)
    assert acc.status == "completed" and not of_type(events, Retrying)
    ttft = acc.metrics().ttft_s
    assert ttft is not None and ttft >= 1.4
    # the same silence without keep-alives is a stall
    session = make_session(
        "chat", key=sim_key + "-b", timing=timing, idle_timeout_s=0.6, max_retries=0
    )
    events, acc = await run_session(session, sim_url)
    assert (acc.status, acc.finish_reason) == ("failed", "truncated")
    assert acc.error is not None and acc.error.kind == "stalled"


@pytest.mark.parametrize("api", APIS)
async def test_on_drop_fail(api: Api, sim_url: str, sim_key: str) -> None:
    session = make_session(api, fault="drop=9", key=sim_key, on_drop="fail", background=True)
    events, acc = await run_session(session, sim_url)
    assert (acc.status, acc.finish_reason) == ("failed", "truncated")
    assert acc.error is not None and acc.error.kind == "dropped"
    assert not of_type(events, Retrying) and acc.output_text


async def test_truncated_responses_stream(sim_url: str, sim_key: str) -> None:
    """EOF without a terminal event: never completed; restarted, then given up."""
    session = make_session("responses", fault="no_done", key=sim_key, max_retries=2)
    events, acc = await run_session(session, sim_url)
    assert (acc.status, acc.finish_reason) == ("failed", "truncated")
    assert acc.error is not None and acc.error.kind == "truncated"
    assert acc.error.message == "gave up after 2 retries: the stream ended without a terminal event"
    assert [r.mode for r in of_type(events, Retrying)] == ["restart", "restart"]
    assert acc.output_text == reference_text()  # the last attempt's text is kept


async def test_gives_up_after_max_retries(sim_url: str, sim_key: str) -> None:
    session = make_session("chat", fault="drop=5*100", key=sim_key, max_retries=2)
    sleep = FakeSleep()
    events, acc = await run_session(session, sim_url, sleep=sleep)
    assert acc.status == "failed" and acc.error is not None
    assert acc.error.message.startswith("gave up after 2 retries: connection dropped mid-stream")
    retries = of_type(events, Retrying)
    assert [(r.attempt, r.max_retries) for r in retries] == [(1, 2), (2, 2)]
    assert len(acc.attempts) == 3 and sleep.delays == [r.delay_s for r in retries]


# -- before the first byte ------------------------------------------------------------------
async def test_429_retry_after_honoured(sim_url: str, sim_key: str) -> None:
    sleep = FakeSleep()
    session = make_session("chat", fault="status=429,retry_after=1.5", key=sim_key)
    events, acc = await run_session(session, sim_url, sleep=sleep)
    assert acc.status == "completed" and acc.output_text == reference_text()
    (retry,) = of_type(events, Retrying)
    assert retry.delay_s == 1.5 and sleep.delays == [1.5] and retry.mode == "retry"
    assert retry.cause.kind == "http" and retry.cause.http_status == 429
    assert retry.cause.code == "rate_limit_exceeded" and "Simulated HTTP 429" in retry.cause.message
    assert acc.attempts[0].http_status == 429 and acc.attempts[1].http_status == 200


async def test_retry_after_ms_wins(sim_url: str, sim_key: str) -> None:
    sleep = FakeSleep()
    fault = "status=503,retry_after=9,retry_after_ms=250"
    _, acc = await run_session(
        make_session("responses", fault=fault, key=sim_key), sim_url, sleep=sleep
    )
    assert acc.status == "completed" and sleep.delays == [0.25]


async def test_real_wait_on_retry_after(sim_url: str, sim_key: str) -> None:
    """Without a fake sleep the runner really waits (generous bounds for a loaded machine)."""
    session = make_session("chat", fault="status=503,retry_after_ms=300", key=sim_key)
    loop = asyncio.get_running_loop()
    start = loop.time()
    _, acc = await run_session(session, sim_url)
    assert acc.status == "completed" and loop.time() - start >= 0.29


async def test_long_retry_after_is_not_retried(sim_url: str, sim_key: str) -> None:
    session = make_session("chat", fault="status=429,retry_after=300", key=sim_key)
    events, acc = await run_session(session, sim_url, sleep=FakeSleep())
    assert acc.status == "failed" and not of_type(events, Retrying)
    assert acc.error is not None and "longer than 120 s" in acc.error.message


async def test_5xx_backoff_with_jitter(sim_url: str, sim_key: str) -> None:
    sleep = FakeSleep()
    session = make_session(
        "chat", fault="status=500*3", key=sim_key, backoff_initial_s=0.4, backoff_max_s=1.0
    )
    _, acc = await run_session(session, sim_url, sleep=sleep)
    assert acc.status == "completed" and len(sleep.delays) == 3
    for delay, base in zip(sleep.delays, [0.4, 0.8, 1.0], strict=True):
        assert base * 0.75 <= delay <= base


@pytest.mark.parametrize("status", [400, 403, 404, 422])
async def test_never_retried(status: int, sim_url: str, sim_key: str) -> None:
    session = make_session("chat", fault=f"status={status}", key=sim_key)
    events, acc = await run_session(session, sim_url, sleep=FakeSleep())
    assert acc.status == "failed" and not of_type(events, Retrying) and len(acc.attempts) == 1
    assert acc.error is not None and acc.error.http_status == status
    assert acc.error.kind == ("auth" if status == 403 else "http")


async def test_401_names_the_env_var_never_the_key(
    sim_url: str, sim_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENTOP_TEST_KEY", "sk-secret-value-123")
    session = make_session("chat", fault="status=401", key=sim_key, api_key_env="TOKENTOP_TEST_KEY")
    events, acc = await run_session(session, sim_url, sleep=FakeSleep())
    assert acc.status == "failed" and acc.error is not None and acc.error.kind == "auth"
    assert "TOKENTOP_TEST_KEY" in acc.error.message and "sk-secret" not in acc.error.message
    assert not of_type(events, Retrying)
    assert all("sk-secret" not in repr(e) for e in events)


async def test_401_without_key_says_the_env_var_is_not_set(
    sim_url: str, sim_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOKENTOP_TEST_KEY", raising=False)
    session = make_session("chat", fault="status=401", key=sim_key, api_key_env="TOKENTOP_TEST_KEY")
    _, acc = await run_session(session, sim_url, sleep=FakeSleep())
    assert acc.error is not None
    assert "environment variable TOKENTOP_TEST_KEY is not set" in acc.error.message


async def test_html_error_page(sim_url: str, sim_key: str) -> None:
    session = make_session("chat", fault="html*5", key=sim_key, max_retries=1)
    events, acc = await run_session(session, sim_url, sleep=FakeSleep())
    assert acc.status == "failed" and acc.error is not None and acc.error.http_status == 502
    message = acc.error.message
    assert message.startswith("gave up after 1 retry: HTTP 502")
    assert "text/html" in message and "502 Bad Gateway" in message and "<" not in message
    assert len(of_type(events, Retrying)) == 1


@pytest.mark.parametrize("api", APIS)
async def test_not_an_event_stream(api: Api, sim_url: str, sim_key: str) -> None:
    events, acc = await run_session(make_session(api, fault="not_sse", key=sim_key), sim_url)
    assert acc.status == "failed" and acc.error is not None and acc.error.kind == "protocol"
    assert "application/json" in acc.error.message and acc.error.http_status == 200
    assert not of_type(events, Retrying) and not of_type(events, Started)


async def test_connect_error_retried_then_given_up() -> None:
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleep = FakeSleep()
    session = make_session("chat", max_retries=2)
    events, acc = await run_session(session, f"http://127.0.0.1:{port}/v1", sleep=sleep)
    assert acc.status == "failed" and acc.error is not None and acc.error.kind == "connect"
    assert acc.error.message.startswith("gave up after 2 retries: cannot connect")
    assert [r.mode for r in of_type(events, Retrying)] == ["retry", "retry"]
    assert len(sleep.delays) == 2


# -- cancel -----------------------------------------------------------------------------------
async def _cancel_after_first_text(run: StreamRun) -> list[object]:
    events: list[object] = []
    async for event in run:
        events.append(event)
        if isinstance(event, TextDelta) and len(events) < 10_000:
            run.cancel()
    return events


@pytest.mark.parametrize("api", APIS)
async def test_cancel_mid_stream(api: Api, sim_url: str, sim_key: str) -> None:
    session = make_session(api, key=sim_key, timing="ttft=0.01,tps=20,tokens=200")
    async with httpx.AsyncClient() as client:
        run = StreamRun(session, client=client, base_url=sim_url)
        loop = asyncio.get_running_loop()
        start = loop.time()
        events = await _cancel_after_first_text(run)
    assert loop.time() - start < 5.0  # far less than the 10 s the stream would take
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert (finished.status, finished.reason) == ("cancelled", "cancelled")
    assert sum(isinstance(e, Finished) for e in events) == 1


async def test_cancel_background_run_cancels_on_server(sim_url: str, sim_key: str) -> None:
    session = make_session(
        "responses", key=sim_key, background=True, timing="ttft=0.01,tps=20,tokens=200"
    )
    async with httpx.AsyncClient() as client:
        run = StreamRun(session, client=client, base_url=sim_url)
        response_id = None
        async for event in run:
            if isinstance(event, TextDelta):
                run.cancel()
            last = event
            if hasattr(event, "response_id") and event.response_id:
                response_id = event.response_id
        assert isinstance(last, Finished) and last.status == "cancelled"
        assert response_id is not None
        r = await client.get(f"{sim_url}/responses/{response_id}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


async def test_cancel_from_another_task_during_backoff(sim_url: str, sim_key: str) -> None:
    session = make_session(
        "chat", fault="status=503*9", key=sim_key, backoff_initial_s=30.0, backoff_max_s=30.0
    )
    async with httpx.AsyncClient() as client:
        run = StreamRun(session, client=client, base_url=sim_url)
        events: list[object] = []

        async def consume() -> None:
            async for event in run:
                events.append(event)
                if isinstance(event, Retrying):
                    asyncio.get_running_loop().call_later(0.05, run.cancel)

        await asyncio.wait_for(consume(), 10.0)
    assert isinstance(events[-1], Finished) and events[-1].status == "cancelled"


async def test_cancel_before_start(sim_url: str) -> None:
    async with httpx.AsyncClient() as client:
        run = StreamRun(make_session("chat"), client=client, base_url=sim_url)
        run.cancel()
        run.cancel()  # idempotent
        events = [e async for e in run]
    assert len(events) == 1 and isinstance(events[0], Finished)
    assert events[0].status == "cancelled"


async def test_cancel_between_the_producers_creation_and_its_first_step(sim_url: str) -> None:
    async with httpx.AsyncClient() as client:
        run = StreamRun(make_session("chat"), client=client, base_url=sim_url)

        async def collect() -> list[RunEvent]:
            return [e async for e in run]

        consumer = asyncio.create_task(collect())
        # one loop turn: the consumer creates the producer task, which has not run yet
        await asyncio.sleep(0)
        run.cancel()  # cancels a task before its first step: none of its body runs
        events = await asyncio.wait_for(consumer, 5)
    assert [type(e) for e in events] == [Finished]
    assert isinstance(events[0], Finished) and events[0].status == "cancelled"


async def test_aclose_stops_the_producer(sim_url: str, sim_key: str) -> None:
    session = make_session("chat", key=sim_key, timing="ttft=0.01,tps=20,tokens=200")
    async with httpx.AsyncClient() as client:
        run = StreamRun(session, client=client, base_url=sim_url)
        async for event in run:
            if isinstance(event, TextDelta):
                break
        await asyncio.wait_for(run.aclose(), 5.0)
        await run.aclose()  # again: a no-op
