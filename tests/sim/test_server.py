"""Simulator lifecycle: thread + own loop, sync and async callers, serve() (the shared
instance in a child process: test_process.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.sim.wire_helpers import WAIT_S, LagProbe
from tui.sim.server import Simulator


def test_context_manager_start_stop_frees_port() -> None:
    with Simulator(seed=3) as sim:
        url = sim.base_url
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        assert sim.start() == url  # idempotent
        assert httpx.get(url + "/models").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/models")
    with pytest.raises(RuntimeError):
        _ = sim.base_url


def test_two_simulators_and_seeds_differ() -> None:
    body = {"model": "sim", "input": "same prompt"}
    headers = {"X-Sim-Timing": "ttft=0,tps=0,tokens=30"}
    with Simulator(seed=1) as a, Simulator(seed=2) as b:
        assert a.base_url != b.base_url
        ra = httpx.post(a.base_url + "/responses", json=body, headers=headers).json()
        rb = httpx.post(b.base_url + "/responses", json=body, headers=headers).json()
        ra2 = httpx.post(a.base_url + "/responses", json=body, headers=headers).json()
    text = [r["output"][0]["content"][0]["text"] for r in (ra, rb, ra2)]
    assert text[0] == text[2] != text[1]


async def test_usable_from_async_code() -> None:
    sim = Simulator()
    url = sim.start()
    try:
        async with (
            httpx.AsyncClient(timeout=10) as client,
            client.stream(
                "POST",
                url + "/chat/completions",
                json={
                    "model": "sim",
                    "messages": [{"role": "user", "content": "a"}],
                    "stream": True,
                },
                headers={"X-Sim-Timing": "ttft=0.05,tps=500,tokens=20"},
            ) as resp,
        ):
            body = b"".join([piece async for piece in resp.aiter_raw()])
        assert body.endswith(b"data: [DONE]\n\n")
    finally:
        sim.stop()


def test_stop_cuts_a_stalled_stream_quickly() -> None:
    sim = Simulator()
    url = sim.start()
    done = threading.Event()
    streaming = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            with httpx.stream(
                "POST",
                url + "/responses",
                json={"model": "sim", "input": "x", "stream": True},
                headers={"X-Sim-Fault": "stall=2", "X-Sim-Timing": "ttft=0,tps=0"},
                timeout=30,
            ) as resp:
                for _ in resp.iter_raw():
                    streaming.set()
        except httpx.HTTPError as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert streaming.wait(WAIT_S)  # the stall has begun: its two events arrived
    with LagProbe() as probe:
        started = time.monotonic()
        sim.stop()
        took = time.monotonic() - started
    # The cut takes a tenth of a second or so (uvicorn's graceful timeout of 1 s and stop()'s
    # joins of 2 s and 5 s are only fallbacks); the probe says how much later load made it.
    assert took < 3 + probe.slack(), (took, probe.worst)
    assert done.wait(WAIT_S)
    assert [type(e) for e in errors] == [httpx.RemoteProtocolError]  # cut, not hanging


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 0), (signal.SIGTERM, -signal.SIGTERM)])
def test_serve_prints_base_url_first_and_stops_on_signals(sig: int, code: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from tui.sim.server import serve; serve('127.0.0.1', 0)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        models = httpx.get(url + "/models", timeout=10).json()
        assert models["object"] == "list" and models["data"]
        # A signal ends it promptly even with a stalled stream open.
        with httpx.stream(
            "POST",
            url + "/chat/completions",
            json={"model": "sim", "messages": [{"role": "user", "content": "x"}], "stream": True},
            headers={"X-Sim-Fault": "stall=1", "X-Sim-Timing": "ttft=0,tps=0"},
            timeout=30,
        ) as resp:
            assert next(resp.iter_raw()).startswith(b"data: ")
            with LagProbe() as probe:
                started = time.monotonic()
                proc.send_signal(sig)
                assert proc.wait(WAIT_S) == code
                took = time.monotonic() - started
            # uvicorn's graceful shutdown gives up on open streams after 1 s; a stall held
            # open without it would never end.
            assert took < 3 + probe.slack(), (took, probe.worst)
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_headless_imports() -> None:
    code = (
        "import sys, json, tui.sim.server, tui.sim.app;"
        "print(json.dumps(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('textual', 'rich') or m.startswith('tui.ui'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert json.loads(out.stdout) == []
