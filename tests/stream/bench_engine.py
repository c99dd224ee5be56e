"""Benchmark: chat chunks per second through the whole engine (SSE decode + adapter +
metrics/accumulator) versus a raw httpx byte read and the openai SDK, in one run.

Not a test (pytest does not collect it). Run it with::

    .venv/bin/python -m tests.stream.bench_engine [TOKENS]

The simulator runs in a separate process (so it does not share our GIL) and sends the
chunks as fast as it can (``tps=0``); every figure is chunks (SSE events) per second of
wall time and per second of the consumer process's CPU time, best of three.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import httpx

from tui.config import ReconnectPolicy, SessionConfig
from tui.stream.accumulate import RunAccumulator
from tui.stream.chat import ChatAdapter, build_chat_body
from tui.stream.runner import StreamRun
from tui.stream.sse import SSEDecoder

TOKENS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
HEADERS = {"X-Sim-Timing": f"ttft=0,tps=0,tokens={TOKENS}", "X-Sim-Key": "bench"}
SESSION = SessionConfig(
    name="bench",
    model="sim-fast",
    prompt="benchmark",
    api="chat",
    headers=HEADERS,
    reconnect=ReconnectPolicy(idle_timeout_s=30.0),
)


def start_simulator() -> tuple[subprocess.Popen[str], str]:
    """Start the simulator in its own process; return it and its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.sim.server", "127.0.0.1", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, url


async def raw_httpx(client: httpx.AsyncClient, url: str) -> int:
    """Read the stream with plain httpx and only count event separators."""
    body = build_chat_body(SESSION)
    events = 0
    async with client.stream("POST", url + "/chat/completions", json=body, headers=HEADERS) as r:
        async for chunk in r.aiter_raw():
            events += chunk.count(b"\n\n")
    return events


async def engine(client: httpx.AsyncClient, url: str) -> int:
    """The whole engine: StreamRun events one by one into a RunAccumulator."""
    acc = RunAccumulator("r", "bench", "chat", "sim-fast", "benchmark")
    run = StreamRun(SESSION, client=client, base_url=url)
    async for event in run:
        acc.apply(event)
    assert acc.status == "completed", acc.result()["error"]
    return acc.metrics().chunks + 3  # + role, finish and usage chunks


async def engine_batches(client: httpx.AsyncClient, url: str) -> int:
    """The whole engine, consumed batch by batch."""
    acc = RunAccumulator("r", "bench", "chat", "sim-fast", "benchmark")
    run = StreamRun(SESSION, client=client, base_url=url)
    apply = acc.apply
    async for batch in run.batches():
        for event in batch:
            apply(event)
    assert acc.status == "completed"
    return acc.metrics().chunks + 3


async def openai_sdk(client: httpx.AsyncClient, url: str) -> int:
    """The openai SDK reading the same stream (parsed chunk objects)."""
    from openai import AsyncOpenAI

    sdk = AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
    stream = await sdk.chat.completions.create(
        model="sim-fast",
        messages=[{"role": "user", "content": "benchmark"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=HEADERS,
    )
    n = 0
    async for _ in stream:
        n += 1
    await sdk.close()
    return n


def in_memory() -> float:
    """Decoder + adapter + accumulator on pre-recorded bytes (no network), per CPU second."""
    head = '"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m"'
    chunks = [
        (
            "data: {"
            + head
            + ',"choices":[{"index":0,"delta":{"content":'
            + json.dumps(f" tok{i % 50}")
            + '},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"abcd"}\n\n'
        ).encode()
        for i in range(TOKENS)
    ]
    start = time.process_time()
    decoder, adapter = SSEDecoder(), ChatAdapter()
    acc = RunAccumulator("r", "bench", "chat", "m", "p")
    for chunk in chunks:
        out: list = []  # type: ignore[type-arg]
        for event in decoder.feed(chunk):
            adapter.handle(event, 0.0, out)
        for ev in out:
            acc.apply(ev)
    return TOKENS / (time.process_time() - start)


async def measure(
    name: str, fn: Callable[[httpx.AsyncClient, str], Awaitable[int]], url: str
) -> float:
    """Best of three runs of ``fn`` in chunks per second (printed and returned).

    Two figures: per second of wall time, and per second of this process's CPU time (what
    one core sustains even when other processes share the machine)."""
    best = best_cpu = 0.0
    async with httpx.AsyncClient(timeout=60) as client:
        for _ in range(3):
            start, cpu = time.perf_counter(), time.process_time()
            n = await fn(client, url)
            best = max(best, n / (time.perf_counter() - start))
            best_cpu = max(best_cpu, n / max(time.process_time() - cpu, 1e-9))
    print(f"{name:<34} {best:>10,.0f} chunks/s wall {best_cpu:>10,.0f} chunks/s CPU")
    return best_cpu


async def main() -> None:
    """Run every measurement against one simulator process and print the ratios."""
    proc, url = start_simulator()
    try:
        print(f"{TOKENS:,} chat chunks, simulator in a separate process at {url}")
        raw = await measure("raw httpx byte read (aiter_raw)", raw_httpx, url)
        eng = await measure("engine: StreamRun + accumulator", engine, url)
        bat = await measure("engine: batches() + accumulator", engine_batches, url)
        try:
            sdk = await measure("openai SDK (AsyncOpenAI)", openai_sdk, url)
        except ImportError:
            sdk = 0.0
        mem = in_memory()
        print(f"{'engine in memory (no network)':<34} {'':>21} {mem:>10,.0f} chunks/s CPU")
        print(f"CPU-based: engine / raw = {eng / raw:.2f}, batches / raw = {bat / raw:.2f}", end="")
        print(f", engine / sdk = {eng / sdk:.1f}" if sdk else "")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
