"""SSE framing (with the framing quirks) and the scheduled streaming ASGI response."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from tui.sim.faults import FaultSet

BOM = b"\xef\xbb\xbf"
_CONTINUATION = re.compile(rb"[\x80-\xbf]")
KEEPALIVE = b": keep-alive\n\n"
IDLE_NAP = 0.1
"""Longest single sleep of a stream (how soon it notices a cancel, a disconnect or a stop)."""
BATCH_EVENTS = 2048
"""Events joined into one write when many are due at once (about 0.5 MB)."""


class SimulatedDrop(Exception):
    """Raised inside a streaming body so uvicorn aborts the chunked response (a real drop)."""


class _DropLogFilter(logging.Filter):
    """Keeps uvicorn from logging a traceback for every simulated drop."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, SimulatedDrop)


def install_drop_log_filter() -> None:
    """Silence uvicorn's "Exception in ASGI application" for simulated drops (idempotent)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropLogFilter) for f in logger.filters):
        logger.addFilter(_DropLogFilter())


def spread_data(data: bytes) -> bytes:
    """Spread JSON over several ``data:`` lines, breaking only after commas outside strings."""
    out = bytearray()
    in_str = esc = False
    commas = 0
    for b in data:
        out.append(b)
        if in_str:
            if esc:
                esc = False
            elif b == 0x5C:
                esc = True
            elif b == 0x22:
                in_str = False
        elif b == 0x22:
            in_str = True
        elif b == 0x2C:
            commas += 1
            if commas % 3 == 0:
                out += b"\ndata: "
    return bytes(out)


def corrupt(data: bytes) -> bytes:
    """Malformed JSON: cut off the end and leave a dangling key."""
    return data[: max(1, len(data) * 2 // 3)] + b',"'


def frame_events(
    names: Sequence[bytes | None], datas: Sequence[bytes], faults: FaultSet
) -> list[bytes]:
    """The wire bytes of every event (its lines plus the blank line), quirks applied.

    Event ids (``ids``) are the event's index in the stream, so they survive a resume.
    """
    bad = faults.int_of("bad_json")
    if bad is not None and 1 <= bad <= len(datas):
        datas = list(datas)
        datas[bad - 1] = corrupt(datas[bad - 1])
    if faults.has("multiline"):
        datas = [spread_data(data) for data in datas]
    join = b"".join
    frames = [
        join((b"data: ", data, b"\n\n"))
        if name is None
        else join((b"event: ", name, b"\ndata: ", data, b"\n\n"))
        for name, data in zip(names, datas, strict=True)
    ]
    if faults.has("ids"):
        frames = [(KEEPALIVE if i else b"") + b"id: %d\n" % i + f for i, f in enumerate(frames)]
    if faults.has("comments"):
        frames = [b": sim comment " + b"%d" % i + b"\n" + f for i, f in enumerate(frames)]
    if faults.has("crlf"):
        frames = [f.replace(b"\n", b"\r\n") for f in frames]
    elif faults.has("cr"):
        frames = [f.replace(b"\n", b"\r") for f in frames]
    return frames


QUIRKS = frozenset({"bad_json", "multiline", "ids", "comments", "crlf", "cr"})
"""Faults that change the bytes of the events themselves."""


class Frames:
    """The wire bytes of a run of events, rendered only when written.

    Without framing quirks a batch is built by one C-level join straight from the payloads
    (no per-event Python work, so a ``tps=0`` stream starts at once and stays cheap); with
    quirks every event is framed up front by :func:`frame_events`.
    """

    def __init__(
        self, names: Sequence[bytes | None], datas: Sequence[bytes], faults: FaultSet
    ) -> None:
        self._names = names
        self._datas = datas
        self._framed = frame_events(names, datas, faults) if faults.names & QUIRKS else None

    def __len__(self) -> int:
        return len(self._datas)

    def chunk(self, start: int, stop: int) -> bytes:
        """The bytes of events ``start`` to ``stop - 1``."""
        if self._framed is not None:
            return b"".join(self._framed[start:stop])
        datas = self._datas[start:stop]
        if not datas:
            return b""
        if self._names[start] is None:  # chat: data lines only
            return b"data: " + b"\n\ndata: ".join(datas) + b"\n\n"
        names = self._names[start:stop]
        return b"".join(
            chain.from_iterable(
                zip(
                    repeat(b"event: "),
                    names,  # type: ignore[arg-type]  # responses events always have a name
                    repeat(b"\ndata: "),
                    datas,
                    repeat(b"\n\n"),
                )
            )
        )


def line_ending(faults: FaultSet) -> Callable[[bytes], bytes]:
    """Applies the configured line ending to extra lines (keep-alive comments)."""
    if faults.has("crlf"):
        return lambda b: b.replace(b"\n", b"\r\n")
    if faults.has("cr"):
        return lambda b: b.replace(b"\n", b"\r")
    return lambda b: b


def split_points(body: bytes, rng: random.Random) -> list[int]:
    """Where to cut one write: inside a multi-byte character, inside a CRLF, and at random
    positions; at most 8 pieces per write."""
    n = len(body)
    if n < 2:
        return []
    cuts: set[int] = set()
    inside = _CONTINUATION.search(body, 1)
    if inside is not None:  # a UTF-8 continuation byte: cut inside the character
        cuts.add(inside.start())
    crlf = body.find(b"\r\n")
    if crlf >= 0:
        cuts.add(crlf + 1)
    while len(cuts) < min(7, n - 1):
        cuts.add(rng.randrange(1, n))
        if rng.random() < 0.3:
            break
    return sorted(cuts)


@dataclass(slots=True)
class StreamSpec:
    """Everything the streaming body needs: frames, their due times and the faults."""

    frames: Frames
    dues: list[float]
    t0: float
    """Loop time the schedule counts from (the original request for a resume)."""
    start: int = 0
    """Index of the first frame to send."""
    drop_after: int | None = None
    stall_after: int | None = None
    keepalive: float | None = None
    split: bool = False
    bom: bool = False
    limit: Callable[[], int] | None = None
    """For background responses: how many frames exist right now (a cancel lowers it)."""
    eol: Callable[[bytes], bytes] = bytes
    seed: int = 0
    closing: asyncio.Event | None = None
    """Set when the simulator stops: open streams are cut (a drop)."""


class ScheduledStream(Response):
    """An ASGI response that writes frames when the schedule says, batching due frames into
    one write, and that really misbehaves (abrupt close, stall, split writes)."""

    media_type = "text/event-stream; charset=utf-8"

    def __init__(self, spec: StreamSpec, headers: dict[str, str]) -> None:
        # Response.__init__ would render a body; this response writes its own.
        self.spec = spec
        self.extra_headers = headers
        self.status_code = 200
        self.background = None
        self.body = b""
        self.raw_headers = [(b"content-type", self.media_type.encode())]
        self.raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self._gone = asyncio.Event()

    async def _watch(self, receive: Receive) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                self._gone.set()
                return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the stream (ASGI)."""
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        watcher = asyncio.ensure_future(self._watch(receive))
        try:
            outcome = await self._run(send)
        finally:
            watcher.cancel()
        if outcome == "drop":
            raise SimulatedDrop("simulated drop")
        if outcome == "done":
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _write(self, send: Send, body: bytes, rng: random.Random) -> None:
        if not self.spec.split:
            await send({"type": "http.response.body", "body": body, "more_body": True})
            return
        last = 0
        for cut in [*split_points(body, rng), len(body)]:
            await send({"type": "http.response.body", "body": body[last:cut], "more_body": True})
            last = cut
            if cut < len(body):
                await asyncio.sleep(0.001)  # flush the piece on its own

    async def _run(self, send: Send) -> str:
        spec = self.spec
        loop = asyncio.get_running_loop()
        rng = random.Random(spec.seed)
        frames, dues, t0 = spec.frames, spec.dues, spec.t0
        i = spec.start
        end = len(frames)
        outcome = "done"
        for fault, after in (("drop", spec.drop_after), ("stall", spec.stall_after)):
            if after is not None and spec.start + after <= end:
                end, outcome = spec.start + after, fault
        keepalive = spec.keepalive
        if spec.bom:
            await self._write(send, BOM, rng)
        last_write = loop.time()
        while i < end:
            if self._gone.is_set():
                return "gone"
            if spec.closing is not None and spec.closing.is_set():
                return "drop"  # the simulator is stopping: cut the connection
            if spec.limit is not None and i >= spec.limit():
                return "done"  # a cancelled background response: end cleanly
            now = loop.time()
            due = t0 + dues[i]
            if due > now:
                wake = due
                if keepalive and last_write + keepalive < wake:
                    wake = max(last_write + keepalive, now)
                # Long waits are cut into short naps so a cancel, a disconnect or a stop is
                # noticed soon; short waits (the hot path at high token rates) are exact.
                await asyncio.sleep(min(wake - now, IDLE_NAP))
                now = loop.time()
                if now < due and keepalive and now >= last_write + keepalive:
                    await self._write(send, spec.eol(KEEPALIVE), rng)
                    last_write = now
                continue
            j = bisect_right(dues, now - t0, i, end)
            if spec.limit is not None:
                j = min(j, spec.limit())
            while i < j:
                k = min(j, i + BATCH_EVENTS)
                await self._write(send, frames.chunk(i, k), rng)
                i = k
            last_write = loop.time()
        if outcome != "stall":
            return outcome
        while not self._gone.is_set():
            if spec.closing is not None and spec.closing.is_set():
                return "drop"
            await asyncio.sleep(IDLE_NAP)
            now = loop.time()
            if keepalive and now >= last_write + keepalive:
                await self._write(send, spec.eol(KEEPALIVE), rng)
                last_write = now
        return "gone"
