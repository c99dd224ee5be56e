"""Load: one standalone simulator (``serve`` in a subprocess) feeds 16 streams at 1,000
tokens/s each on a small budget, and a ``tps=0`` stream is never the bottleneck.

The bounds are far from what an idle machine measures (the suite must pass on a loaded one);
the figures themselves belong to ``python -m bench``. Run with ``-s`` to see them.
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
                async for piece in resp.aiter_raw():
                    received += piece.count(b"event: response.output_text.delta\n")
            return received, time.perf_counter() - start

        cpu0, wall0 = _cpu_seconds(pid), time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(STREAMS)))
        wall = time.perf_counter() - wall0
        cpu = _cpu_seconds(pid) - cpu0
    share = cpu / wall
    print(
        f"\n16 x {TPS} tok/s for {wall:.2f} s: simulator used {cpu:.2f} CPU s"
        f" = {100 * share:.0f}% of one core"
    )
    assert all(n == tokens for n, _ in results)
    # Each stream kept the schedule (never faster; late only by what a loaded box adds), with
    # the client in the same box, and the simulator used well under a core for it.
    assert all(SECONDS * 0.9 <= took <= SECONDS * 4.0 for _, took in results), results
    assert share < 0.9


def test_as_fast_as_possible_stream_is_not_the_bottleneck(standalone: tuple[str, int]) -> None:
    url, _ = standalone
    body = {"model": "sim", "messages": [{"role": "user", "content": "bench"}], "stream": True}
    headers = {"X-Sim-Timing": "ttft=0,tps=0,tokens=50000"}
    best = 0.0
    for _ in range(3):  # best of three: other tests may share the two cores
        start = time.perf_counter()
        with httpx.stream(
            "POST", url + "/chat/completions", json=body, headers=headers, timeout=60
        ) as resp:
            raw = b"".join(resp.iter_raw())  # the simulator's speed, not a parser's
        rate = raw.count(b"data: ") / (time.perf_counter() - start)
        assert raw.count(b"data: ") == 50_003  # role chunk, 50,000 tokens, finish, [DONE]
        best = max(best, rate)
        if best > 150_000:
            break
    print(f"\ntps=0: {best:,.0f} chunks/s delivered (50,000-token chat stream)")
    # several times what tokentop's own parser takes in (bench/ingest.py), even when loaded
    assert best > 60_000
