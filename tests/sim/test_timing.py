"""Events leave when the schedule says (ttft, tokens/s), and due events share one write.

A schedule is judged on what load cannot break: no event comes before it is due, and one
comes late only by what this process's own wake-ups were late by (a :class:`LagProbe`
watches them during the request), so the bounds hold on a loaded two-core machine.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.sim.wire_helpers import WAIT_S, Api, Capture, LagProbe, capture, parse_sse


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
    with LagProbe() as probe:
        cap = capture(sim_url, api, headers=headers)
    times, first_any = _delta_times(api, cap)
    assert len(times) == 26
    dues = [0.2 + k / 50 for k in range(26)]  # ttft 0.2 s, then a token every 20 ms
    # Never early: the schedule counts from when the simulator took the request, after it
    # was sent (no load can make a token come sooner).
    assert all(t >= due for t, due in zip(times, dues, strict=True)), (times, dues)
    # Never late by more than this process's own wake-ups explain, counted from the headers
    # (they leave when the request is taken: connecting is not part of the schedule).
    late = [t - cap.headers_at - due for t, due in zip(times, dues, strict=True)]
    assert max(late) <= probe.slack(), (late, probe.worst)
    if api == "responses":
        # response.created / in_progress leave at once, not with the first token.
        assert first_any - cap.headers_at <= probe.slack(), (first_any, cap.headers_at)


def test_jitter_keeps_the_mean_rate(sim_url: str, sim_key: str) -> None:
    headers = {"X-Sim-Key": sim_key, "X-Sim-Timing": "ttft=0,tps=100,jitter=0.8,tokens=51"}
    with LagProbe() as probe:
        cap = capture(sim_url, "chat", headers=headers)
    times, _ = _delta_times("chat", cap)
    # 50 gaps of 10 ms on average, each scaled by 0.2-1.8: 0.5 s give or take 0.1 s (the
    # schedule is seeded, so these bounds are met by the same draw every time).
    assert times[-1] >= 0.4, times
    assert times[-1] - cap.headers_at <= 0.6 + probe.slack(), (times, probe.worst)


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
    with httpx.Client(timeout=WAIT_S) as client, LagProbe() as probe:
        client.get(sim_url + "/models")  # connected first: what is timed below is the answer
        start = time.perf_counter()
        resp = client.post(sim_url + "/responses", json=body, headers=headers)
        took = time.perf_counter() - start
    assert resp.status_code == 200 and resp.json()["status"] == "completed"
    # ttft 0.2 s + 10 gaps of 20 ms: never sooner, and late only by what the probe saw.
    assert 0.4 <= took <= 0.4 + probe.slack(), (took, probe.worst)
