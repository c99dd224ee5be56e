"""Part 1, ingest: chunks per second through tokentop's engine, against the openai SDK and a
raw-byte read of the same stream.

One 100,000-token stream (``X-Sim-Timing: ttft=0,tps=0,tokens=100000``: as fast as the
simulator can write) per API, from the simulator in another process. Three clients read it:

- **engine**: ``StreamRun`` (httpx, WHATWG SSE decoder, the API's adapter) with every event
  folded into a ``RunAccumulator`` (which feeds the ``MetricsAccumulator``), then
  ``metrics()`` once at the end. No UI, no store.
- **openai SDK**: the sync client iterated the way TokenLab's guide does
  (``for chunk in stream:`` reading ``chunk.choices[0].delta.content``; for Responses
  ``client.responses.create(stream=True)`` reading ``event.delta`` of text deltas).
- **raw httpx**: ``AsyncClient.stream`` + ``aiter_bytes()`` discarding the bytes (the same
  transport the engine uses): the ceiling.

All three count *chunks* as the number of SSE events on the wire (counted once, untimed, from
the raw bytes), divided by the wall time from sending the request to the end of the stream.
Runs are interleaved (engine, SDK, raw, engine, ...) and the best of N is kept per client, so
a burst of load from another process hurts one sample, not one client.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx
import msgspec

from bench.common import Figure, PartResult, fmt_ratio, part_main, simulator
from tui.config import SessionConfig
from tui.stream.accumulate import RunAccumulator
from tui.stream.chat import build_chat_body
from tui.stream.events import Api
from tui.stream.responses import build_responses_body
from tui.stream.runner import StreamRun

TOKENS = 100_000
PROMPT = "Benchmark: write a long answer."
TIMING = f"ttft=0,tps=0,tokens={TOKENS}"
SDK_BAR = 8.0
CEILING_BAR = 0.5


@dataclass(slots=True)
class Sample:
    """One timed read of the stream."""

    seconds: float
    text_chars: int


def session_for(base_url: str, api: Api, timing: str = TIMING) -> SessionConfig:
    """A session on the simulator at ``base_url`` with the given timing header."""
    return SessionConfig(
        name=f"bench-{api}",
        model="sim",
        prompt=PROMPT,
        base_url=base_url,
        api=api,
        headers={"X-Sim-Timing": timing},
    )


def _body(session: SessionConfig) -> bytes:
    build = build_chat_body if session.api == "chat" else build_responses_body
    return msgspec.json.encode(build(session, PROMPT))


def _path(api: Api) -> str:
    return "/chat/completions" if api == "chat" else "/responses"


async def count_events(client: httpx.AsyncClient, session: SessionConfig) -> tuple[int, int, bytes]:
    """Untimed: the number of SSE events (``data:`` lines; the simulator sends one per
    event in this configuration), bytes of the stream, and the bytes themselves."""
    body = bytearray()
    async with client.stream(
        "POST",
        session.base_url + _path(session.api),
        content=_body(session),
        headers={"Content-Type": "application/json", **session.headers},
    ) as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            body += chunk
    events = body.count(b"\ndata:") + (1 if body.startswith(b"data:") else 0)
    return events, len(body), bytes(body)


def stage_costs(api: Api, body: bytes, events: int, repeat: int) -> dict[str, float]:
    """Microseconds per SSE event of each engine stage, run in memory over the recorded
    stream cut in 64 KiB pieces (what the socket hands over at full speed): the SSE
    decoder; + the API adapter; + the RunAccumulator; and a floor (``bytes.split`` on
    blank lines + ``msgspec`` decoding of each event) that any Python reader pays."""
    from tui.stream.chat import ChatAdapter
    from tui.stream.events import RunEvent
    from tui.stream.responses import ResponsesAdapter
    from tui.stream.sse import SSEDecoder

    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    decode = msgspec.json.decode

    def floor() -> None:
        for block in body.split(b"\n\n"):
            start = block.find(b"data: ")
            if start >= 0 and not block.endswith(b"[DONE]"):
                decode(block[start + 6 :])

    def decoder() -> None:
        feed = SSEDecoder().feed
        for chunk in chunks:
            feed(chunk)

    def adapter(accumulate: bool) -> None:
        feed = SSEDecoder().feed
        adapter = ChatAdapter() if api == "chat" else ResponsesAdapter()
        adapter.begin_attempt(1, restart=True)
        handle = adapter.handle
        acc = RunAccumulator("bench", "bench", api, "sim", PROMPT)
        apply = acc.apply
        for chunk in chunks:
            out: list[RunEvent] = []
            for event in feed(chunk):
                handle(event, 0.0, out)
            if accumulate:
                for run_event in out:
                    apply(run_event)

    stages = {
        "floor (split + msgspec)": floor,
        "SSE decoder": decoder,
        "+ adapter": lambda: adapter(False),
        "+ accumulator": lambda: adapter(True),
    }
    costs: dict[str, float] = {}
    for name, fn in stages.items():
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - started)
        costs[name] = best / events * 1e6
    return costs


async def engine_read(client: httpx.AsyncClient, session: SessionConfig) -> Sample:
    """The engine: StreamRun + RunAccumulator (+ its MetricsAccumulator)."""
    started = time.perf_counter()
    run = StreamRun(session, client=client, base_url=session.base_url)
    acc = RunAccumulator("bench", session.name, session.api, session.model, PROMPT)
    apply = acc.apply
    async for event in run:
        apply(event)
    acc.metrics()
    seconds = time.perf_counter() - started
    if acc.status != "completed":
        raise RuntimeError(f"engine run ended {acc.status}: {acc.error}")
    return Sample(seconds, len(acc.output_text))


async def raw_read(client: httpx.AsyncClient, session: SessionConfig) -> Sample:
    """The ceiling: the same request through httpx, bytes read and dropped."""
    body = _body(session)
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    headers.update(session.headers)
    started = time.perf_counter()
    size = 0
    async with client.stream(
        "POST", session.base_url + _path(session.api), content=body, headers=headers
    ) as response:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
    return Sample(time.perf_counter() - started, size)


async def lines_read(client: httpx.AsyncClient, session: SessionConfig) -> Sample:
    """Informational: the simplest httpx SSE reader, ``aiter_lines()`` with nothing done
    per line (a line-oriented ceiling; the bar is against :func:`raw_read`)."""
    body = _body(session)
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    headers.update(session.headers)
    started = time.perf_counter()
    count = 0
    async with client.stream(
        "POST", session.base_url + _path(session.api), content=body, headers=headers
    ) as response:
        async for _line in response.aiter_lines():
            count += 1
    return Sample(time.perf_counter() - started, count)


def sdk_read(sdk: object, session: SessionConfig) -> Sample:
    """The openai SDK, sync client, ``for chunk in stream`` (TokenLab's guide)."""
    from openai import OpenAI

    assert isinstance(sdk, OpenAI)
    extra = dict(session.headers)
    parts: list[str] = []
    started = time.perf_counter()
    if session.api == "chat":
        stream = sdk.chat.completions.create(
            model=session.model,
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=extra,
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
    else:
        events = sdk.responses.create(
            model=session.model, input=PROMPT, stream=True, extra_headers=extra
        )
        for event in events:
            if event.type == "response.output_text.delta":
                parts.append(event.delta)
    seconds = time.perf_counter() - started
    return Sample(seconds, len("".join(parts)))


async def measure_api(
    base_url: str, api: Api, repeat: int, client: httpx.AsyncClient, sdk: object
) -> tuple[list[Figure], list[str]]:
    """Figures for one API: engine vs SDK and engine vs raw ceiling."""
    session = session_for(base_url, api)
    events, size, body = await count_events(client, session)
    stages = stage_costs(api, body, events, repeat)
    del body
    # warm-up (imports, connection pool, JIT-free but cache-warm): not timed
    await engine_read(client, session)
    # the SDK's warm-up is a short stream: a full one costs 10-20 s and warms nothing more
    await asyncio.to_thread(sdk_read, sdk, session_for(base_url, api, "ttft=0,tps=0,tokens=2000"))
    engine: list[Sample] = []
    sdk_samples: list[Sample] = []
    raw: list[Sample] = []
    lines: list[Sample] = []
    for _ in range(repeat):
        engine.append(await engine_read(client, session))
        # a thread only so the event loop stays free; nothing else runs meanwhile
        sdk_samples.append(await asyncio.to_thread(sdk_read, sdk, session))
        raw.append(await raw_read(client, session))
        lines.append(await lines_read(client, session))
    best_engine = min(s.seconds for s in engine)
    best_sdk = min(s.seconds for s in sdk_samples)
    best_raw = min(s.seconds for s in raw)
    rate_lines = events / min(s.seconds for s in lines)
    rate_engine, rate_sdk, rate_raw = events / best_engine, events / best_sdk, events / best_raw
    same_text = engine[0].text_chars == sdk_samples[0].text_chars
    vs_sdk = rate_engine / rate_sdk
    vs_raw = rate_engine / rate_raw
    detail = (
        f"engine {rate_engine:,.0f} chunks/s, SDK {rate_sdk:,.0f}, raw {rate_raw:,.0f} "
        f"({events:,} SSE events, {size / 1e6:.1f} MB, best of {repeat})"
    )
    figures = [
        Figure(
            "ingest",
            f"{api}: engine / openai SDK",
            f">= {SDK_BAR:g}x",
            fmt_ratio(vs_sdk),
            vs_sdk >= SDK_BAR,
            detail,
        ),
        Figure(
            "ingest",
            f"{api}: engine / httpx aiter_lines (info)",
            "-",
            fmt_ratio(rate_engine / rate_lines),
            None,
            f"aiter_lines {rate_lines:,.0f} chunks/s",
        ),
        Figure(
            "ingest",
            f"{api}: engine / raw httpx ceiling",
            f">= {CEILING_BAR:g}x",
            fmt_ratio(vs_raw),
            vs_raw >= CEILING_BAR,
            detail,
        ),
    ]
    per_event = ", ".join(f"{name} {us:.2f}" for name, us in stages.items())
    notes = [
        f"{api}: {detail}",
        f"{api}: httpx aiter_lines() (no work per line) {rate_lines:,.0f} chunks/s; the "
        f"engine is {rate_engine / rate_lines:.2f}x that",
        f"{api}: us per SSE event, in memory: {per_event}; over the socket: engine "
        f"{1e6 / rate_engine:.2f}, raw read {1e6 / rate_raw:.2f}, SDK {1e6 / rate_sdk:.2f}",
    ]
    if not same_text:
        notes.append(
            f"{api}: engine text {engine[0].text_chars:,} chars != SDK "
            f"{sdk_samples[0].text_chars:,} chars"
        )
    return figures, notes


async def _measure(repeat: int) -> PartResult:
    from openai import OpenAI

    result = PartResult("ingest")
    with simulator() as base_url:
        sdk = OpenAI(base_url=base_url, api_key="bench", max_retries=0)
        limits = httpx.Limits(max_connections=None)
        async with httpx.AsyncClient(timeout=None, limits=limits) as client:
            for api in ("chat", "responses"):
                figures, notes = await measure_api(base_url, api, repeat, client, sdk)
                result.figures += figures
                result.notes += notes
        sdk.close()
    return result


def measure(repeat: int = 3) -> PartResult:
    """Run the ingest part (starts a simulator process unless one is shared)."""
    return asyncio.run(_measure(repeat))


if __name__ == "__main__":
    part_main("ingest", measure)
