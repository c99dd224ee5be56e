"""Helpers for the stream tests: feeding recorded byte streams through the decoder and an
adapter, and collecting a run's events."""

from __future__ import annotations

from collections.abc import Iterable

from tui.stream.accumulate import RunAccumulator
from tui.stream.adapter import Adapter, Outcome
from tui.stream.events import Api, ReasoningDelta, RunEvent, TextDelta
from tui.stream.sse import SSEDecoder


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
