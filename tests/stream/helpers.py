"""Helpers for the stream tests: feeding recorded byte streams through the decoder and an
adapter, and collecting a run's events."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import httpx

from tui.config import ReconnectPolicy, SessionConfig
from tui.stream.accumulate import RunAccumulator
from tui.stream.adapter import Adapter, Outcome
from tui.stream.events import Api, Finished, ReasoningDelta, RunEvent, TextDelta
from tui.stream.runner import StreamRun
from tui.stream.sse import SSEDecoder

T = TypeVar("T")


def sse(*datas: str, event: Iterable[str | None] | None = None, eol: str = "\n") -> bytes:
    """Frame JSON/text payloads as SSE events (``data: ...`` + blank line)."""
    names = list(event) if event is not None else [None] * len(datas)
    out = []
    for name, data in zip(names, datas, strict=True):
        head = f"event: {name}{eol}" if name else ""
        out.append(f"{head}data: {data}{eol}{eol}")
    return "".join(out).encode()


def feed(adapter: Adapter, chunks: Iterable[bytes]) -> tuple[list[RunEvent], Outcome | None, bool]:
    """Run chunks through a fresh decoder and ``adapter`` the way the runner does.

    Returns the events, the outcome (in-stream or at EOF) and whether it was reached before
    EOF.
    """
    decoder = SSEDecoder()
    out: list[RunEvent] = []
    for chunk in chunks:
        for event in decoder.feed(chunk):
            adapter.handle(event, 0.0, out)
            if adapter.outcome is not None:
                return out, adapter.outcome, True
    return out, adapter.eof_outcome(decoder.pending_data()), False


def splits(stream: bytes, step: int = 1) -> list[list[bytes]]:
    """The stream whole and cut in two at every ``step``-th position."""
    return [[stream]] + [[stream[:i], stream[i:]] for i in range(0, len(stream) + 1, step)]


def fold(events: Iterable[RunEvent], api: Api = "chat") -> RunAccumulator:
    """Fold events into a fresh accumulator."""
    acc = RunAccumulator("run", "session", api, "model", "prompt", clock=lambda: 0.0)
    for event in events:
        acc.apply(event)
    return acc


def texts(events: Iterable[RunEvent], cls: type[TextDelta | ReasoningDelta] = TextDelta) -> str:
    """The concatenated text of the ``cls`` deltas among ``events``."""
    return "".join(
        e.text for e in events if isinstance(e, (TextDelta, ReasoningDelta)) and type(e) is cls
    )


class FakeSleep:
    """Records requested delays and only yields to the loop (retries without waiting)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        """Record ``delay`` and yield once."""
        self.delays.append(delay)
        await asyncio.sleep(0)


def make_session(
    api: Api = "chat",
    *,
    fault: str | None = None,
    key: str | None = None,
    timing: str | None = "ttft=0.01,tps=0,tokens=60",
    model: str = "sim-fast",
    prompt: str = "Tell me about rivers.",
    background: bool = False,
    api_key_env: str | None = None,
    **policy: Any,
) -> SessionConfig:
    """A session for the simulator with small test-friendly reconnect settings."""
    headers: dict[str, str] = {}
    if fault:
        headers["X-Sim-Fault"] = fault
    if key:
        headers["X-Sim-Key"] = key
    if timing:
        headers["X-Sim-Timing"] = timing
    reconnect = ReconnectPolicy(
        **{
            "max_retries": 3,
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.05,
            "idle_timeout_s": 10.0,
            "connect_timeout_s": 5.0,
            **policy,
        }
    )
    return SessionConfig(
        name="test",
        model=model,
        prompt=prompt,
        api=api,
        background=background,
        headers=headers,
        api_key_env=api_key_env,
        reconnect=reconnect,
    )


async def run_session(
    session: SessionConfig,
    base_url: str,
    *,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    client: httpx.AsyncClient | None = None,
) -> tuple[list[RunEvent], RunAccumulator]:
    """Run ``session`` to its end; return every event and the folded accumulator."""
    own = client is None
    http = client or httpx.AsyncClient()
    try:
        kwargs: dict[str, Any] = {"rng": random.Random(7)}
        if sleep is not None:
            kwargs["sleep"] = sleep
        run = StreamRun(session, client=http, base_url=base_url, **kwargs)
        acc = RunAccumulator("run", session.name, session.api, session.model, session.prompt)
        events: list[RunEvent] = []
        async for event in run:
            events.append(event)
            acc.apply(event)
    finally:
        if own:
            await http.aclose()
    check_well_formed(events)
    return events, acc


def check_well_formed(events: list[RunEvent]) -> None:
    """Exactly one Finished, last; times never go backwards."""
    assert events and isinstance(events[-1], Finished)
    assert sum(isinstance(e, Finished) for e in events) == 1
    times = [e.t for e in events]
    assert times == sorted(times)


def of_type(events: Iterable[RunEvent], cls: type[T]) -> list[T]:
    """The events of one type."""
    return [e for e in events if isinstance(e, cls)]
