"""Load: one standalone simulator (``serve`` in a subprocess) feeds 16 streams at 1,000
tokens/s each on a small budget, and a ``tps=0`` stream is never the bottleneck.

The bounds hold on a loaded machine: CPU costs are CPU seconds (which other processes do not
stretch), and wall-clock bounds allow what the processes involved spent waiting for a CPU
(their run-queue time in ``/proc/<pid>/task/*/schedstat``). The figures themselves belong to
``python -m bench``. Run with ``-s`` to see them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads CPU time from /proc"
)

STREAMS = 16
TPS = 1000
SECONDS = 1.5


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _runqueue_waits(*pids: int) -> dict[tuple[int, int], float]:
    """Seconds each thread of ``pids`` has spent runnable but waiting for a CPU."""
    waits: dict[tuple[int, int], float] = {}
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                waits[pid, int(stat.parent.name)] = int(stat.read_text().split()[1]) / 1e9
            except (OSError, IndexError, ValueError):  # a thread that just ended
                continue
    return waits


def _waited(before: dict[tuple[int, int], float], *pids: int) -> float:
    """The longest wait for a CPU of one thread of each process since ``before``, summed
    over the processes (a stream is late by its writer's waits plus its reader's)."""
    worst: dict[int, float] = dict.fromkeys(pids, 0.0)
    for (pid, tid), seconds in _runqueue_waits(*pids).items():
        worst[pid] = max(worst[pid], seconds - before.get((pid, tid), 0.0))
    return sum(worst.values())


@pytest.fixture
def standalone() -> Iterator[tuple[str, int]]:
    """A simulator run with ``serve`` in its own process: (base URL, pid)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from tui.sim.server import serve; serve('127.0.0.1', 0)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


async def test_sixteen_streams_at_1000_tokens_per_second(standalone: tuple[str, int]) -> None:
    url, pid = standalone
    tokens = int(TPS * SECONDS)
    timing = f"ttft=0.1,tps={TPS},jitter=0.2,tokens={tokens}"
    limits = httpx.Limits(max_connections=STREAMS * 2)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        await client.get(url + "/models")

        async def one(i: int) -> tuple[int, float]:
            body = {"model": "sim", "input": f"load {i}", "stream": True}
            received = 0
            start = time.perf_counter()
            async with client.stream(
                "POST", url + "/responses", json=body, headers={"X-Sim-Timing": timing}
            ) as resp:
                raw = b"".join([piece async for piece in resp.aiter_raw()])
            received = raw.count(b"event: response.output_text.delta\n")
            return received, time.perf_counter() - start

        pids = (pid, os.getpid())
        cpu0, wall0, wait0 = _cpu_seconds(pid), time.perf_counter(), _runqueue_waits(*pids)
        results = await asyncio.gather(*(one(i) for i in range(STREAMS)))
        wall = time.perf_counter() - wall0
        cpu = _cpu_seconds(pid) - cpu0
        waited = _waited(wait0, *pids)
    share = cpu / SECONDS
    print(
        f"\n16 x {TPS} tok/s: {wall:.2f} s for a {SECONDS} s schedule, simulator used {cpu:.2f}"
        f" CPU s = {100 * share:.0f}% of one core; its threads and ours waited {waited:.2f} s"
        " for a CPU"
    )
    assert all(n == tokens for n, _ in results)
    # Each stream kept the schedule: never faster, and late only by what waiting for a CPU
    # explains (the simulator's threads and the reader's), with half a second to spare.
    late = max(took for _, took in results) - SECONDS
    assert all(took >= SECONDS * 0.9 for _, took in results), results
    assert late <= 0.5 + waited, (late, waited)
    # The simulator needs well under a core for the schedule (CPU seconds: load does not
    # stretch them much, unlike wall time).
    assert share < 0.9


def test_as_fast_as_possible_stream_is_not_the_bottleneck(standalone: tuple[str, int]) -> None:
    url, pid = standalone
    body = {"model": "sim", "messages": [{"role": "user", "content": "bench"}], "stream": True}
    headers = {"X-Sim-Timing": "ttft=0,tps=0,tokens=50000"}
    with httpx.Client(timeout=60) as client:
        client.get(url + "/models")
        pids = (pid, os.getpid())
        cpu0, wait0, start = _cpu_seconds(pid), _runqueue_waits(*pids), time.perf_counter()
        mine0 = time.process_time()
        with client.stream("POST", url + "/chat/completions", json=body, headers=headers) as resp:
            raw = b"".join(resp.iter_raw())  # the simulator's speed, not a parser's
        wall = time.perf_counter() - start
        cpu = _cpu_seconds(pid) - cpu0
        busy = cpu + time.process_time() - mine0 + _waited(wait0, *pids)
    chunks = raw.count(b"data: ")
    assert chunks == 50_003  # role chunk, 50,000 tokens, finish, [DONE]
    print(
        f"\ntps=0: {chunks / wall:,.0f} chunks/s delivered, {chunks / cpu:,.0f} per CPU second"
        f" of the simulator (50,000-token chat stream, {wall:.2f} s)"
    )
    # Per CPU second, several times what tokentop's own parser takes in (bench/ingest.py).
    assert chunks / cpu > 150_000
    # Nothing sleeps: the time is the two processes' work and their waits for a CPU (the
    # clock ticks of /proc are 10 ms, hence the small allowance).
    assert wall <= 1.5 * busy + 0.2, (wall, busy)
