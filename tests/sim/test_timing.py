"""Events leave when the schedule says (ttft, tokens/s), and due events share one write."""

from __future__ import annotations

import itertools
import json
import statistics
import time

import httpx
import pytest

from tests.sim.wire_helpers import Api, Capture, capture, parse_sse


def _delta_times(api: Api, cap: Capture) -> tuple[list[float], float]:
    """Arrival time of every text delta, and of the first event of any kind."""
    times: list[float] = []
    buf = b""
    seen = 0
    first_any = -1.0
    for piece, t in zip(cap.pieces, cap.times, strict=True):
        buf += piece
        events = parse_sse(buf)
        if events and first_any < 0:
            first_any = t
        for e in events[seen:]:
            if e.data == "[DONE]":
                continue
            obj = json.loads(e.data)
            if api == "chat":
                if obj["choices"] and obj["choices"][0]["delta"].get("content"):
                    times.append(t)
            elif obj["type"] == "response.output_text.delta":
                times.append(t)
        seen = len(events)
    return times, first_any


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_ttft_and_rate_follow_schedule(sim_url: str, sim_key: str, api: Api) -> None:
    headers = {"X-Sim-Key": sim_key, "X-Sim-Timing": "ttft=0.2,tps=50,jitter=0,tokens=26"}
    cap = capture(sim_url, api, headers=headers)
    times, first_any = _delta_times(api, cap)
    assert len(times) == 26
    ttft = times[0]
    assert 0.18 <= ttft <= 0.6, ttft
    # 25 gaps of 20 ms after the first token: 0.5 s, with generous room for a busy machine.
    span = times[-1] - times[0]
    assert 0.42 <= span <= 1.2, span
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert 0.012 <= statistics.median(gaps) <= 0.04
    if api == "responses":
        # response.created / in_progress leave at once, before the first token.
        assert first_any < times[0] - 0.05


def test_jitter_keeps_the_mean_rate(sim_url: str, sim_key: str) -> None:
    headers = {"X-Sim-Key": sim_key, "X-Sim-Timing": "ttft=0,tps=100,jitter=0.8,tokens=51"}
    cap = capture(sim_url, "chat", headers=headers)
    times, _ = _delta_times("chat", cap)
    span = times[-1] - times[0]
    assert 0.4 <= span <= 1.2, span  # 50 gaps of 10 ms on average


def test_due_events_leave_in_one_write(sim_url: str, sim_key: str) -> None:
    headers = {"X-Sim-Key": sim_key, "X-Sim-Timing": "ttft=0,tps=0,tokens=2000"}
    cap = capture(sim_url, "responses", headers=headers)
    events = cap.events()
    assert len(events) > 2000
    # Everything is due at once: a handful of large writes, not one write per event.
    assert len(cap.pieces) < 60
    fast = {"X-Sim-Key": sim_key, "X-Sim-Timing": "ttft=0,tps=4000,tokens=400"}
    cap = capture(sim_url, "chat", headers=fast)
    assert len(cap.events()) == 404
    assert len(cap.pieces) < 300  # several tokens per wake-up at 0.25 ms per token


def test_non_streaming_answer_takes_the_whole_schedule(sim_url: str, sim_key: str) -> None:
    headers = {"X-Sim-Key": sim_key, "X-Sim-Timing": "ttft=0.2,tps=50,jitter=0,tokens=11"}
    body = {"model": "sim", "input": "whole"}
    start = time.perf_counter()
    resp = httpx.post(sim_url + "/responses", json=body, headers=headers, timeout=10)
    took = time.perf_counter() - start
    assert resp.status_code == 200 and resp.json()["status"] == "completed"
    assert 0.38 <= took <= 1.5, took  # ttft 0.2 s + 10 gaps of 20 ms
