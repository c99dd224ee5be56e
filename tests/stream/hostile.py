"""A hostile HTTP/1.1 server on raw asyncio sockets: each request gets a *script* that
writes whatever bytes it likes, as slowly as it likes, and may break HTTP itself (broken
chunk sizes, trickled headers, bodies that never end, odd header values).

A script is an async callable ``(request, writer) -> None``; the connection is closed when
it returns (or when the test's server closes). :func:`parts` makes one from bytes and pauses,
:func:`forever` one that repeats a piece until the client goes away. Every request is
recorded with its raw header bytes, so a test can check exactly what tokentop sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType

Script = Callable[["Received", asyncio.StreamWriter], Awaitable[None]]
"""Answers one request by writing to the connection."""


@dataclass
class Received:
    """A request as received: the head's raw bytes and its parsed parts."""

    method: str
    path: str
    headers: dict[str, str]
    """Lower-case names, values decoded as latin-1 (byte for byte)."""
    raw_head: bytes
    body: bytes

    def header_bytes(self, name: str) -> bytes | None:
        """A header's value exactly as sent (None when absent)."""
        value = self.headers.get(name.lower())
        return None if value is None else value.encode("latin-1")


def head(
    status: int = 200,
    *,
    reason: str = "OK",
    content_type: str | None = "text/event-stream",
    headers: Iterable[tuple[str, str]] = (),
    chunked: bool = False,
) -> bytes:
    """A response head (status line, headers, blank line); raw header values are written
    as UTF-8, so a test can send non-ASCII bytes a header line can hold."""
    lines = [f"HTTP/1.1 {status} {reason}".rstrip()]
    if content_type is not None:
        lines.append(f"content-type: {content_type}")
    lines.append("connection: close")
    if chunked:
        lines.append("transfer-encoding: chunked")
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def parts(*items: bytes | float, hold: bool = False) -> Script:
    """A script writing bytes and sleeping floats in order; ``hold`` keeps the connection
    open afterwards (silent) until the client closes it."""

    async def script(request: Received, writer: asyncio.StreamWriter) -> None:
        for item in items:
            if isinstance(item, float):
                await asyncio.sleep(item)
            else:
                writer.write(item)
                await writer.drain()
        if hold:
            await asyncio.sleep(3600)

    return script


def forever(first: bytes, piece: bytes, every: float) -> Script:
    """Write ``first``, then ``piece`` every ``every`` seconds until the client hangs up."""

    async def script(request: Received, writer: asyncio.StreamWriter) -> None:
        writer.write(first)
        await writer.drain()
        while True:
            await asyncio.sleep(every)
            writer.write(piece)
            await writer.drain()

    return script


@dataclass
class HostileServer:
    """Answers request ``i`` with ``scripts[i]`` (the last one repeats)."""

    scripts: list[Script]
    requests: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def __aenter__(self) -> HostileServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in list(self._tasks):
            task.cancel()
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = raw.decode("latin-1").split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers: dict[str, str] = {}
            for line in header_lines:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            received = Received(method, path, headers, raw, body)
            index = len(self.requests)
            self.requests.append(received)
            script = self.scripts[min(index, len(self.scripts) - 1)]
            await script(received, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()


# -- stream bodies ---------------------------------------------------------------------------
def chat_events(
    words: Iterable[str], *, ids: Iterable[str] | None = None, done: bool = True
) -> list[bytes]:
    """A chat stream's events (one per word, then ``finish_reason`` and ``[DONE]``), each
    with the matching ``id:`` line when ``ids`` is given (the closing events take none)."""
    words = list(words)
    id_list = list(ids) if ids is not None else [None] * len(words)
    out = []
    for word, event_id in zip(words, id_list, strict=True):
        data = json.dumps({"id": "c1", "choices": [{"index": 0, "delta": {"content": word}}]})
        line = f"id: {event_id}\n" if event_id is not None else ""
        out.append(f"{line}data: {data}\n\n".encode())
    if done:
        stop = {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        out.append(f"data: {json.dumps(stop)}\n\n".encode())
        out.append(b"data: [DONE]\n\n")
    return out


def responses_events(
    words: Iterable[str],
    *,
    response_id: str = "resp_1",
    ids: bool = False,
    background: bool = False,
    done: bool = True,
) -> list[bytes]:
    """A Responses stream's events: ``response.created``, one text delta per word, then
    ``response.completed``; with ``ids`` each event has ``id: <sequence_number>``."""
    payloads: list[dict[str, object]] = [
        {
            "type": "response.created",
            "response": {"id": response_id, "status": "in_progress", "background": background},
        }
    ]
    payloads += [{"type": "response.output_text.delta", "delta": w} for w in words]
    if done:
        payloads.append(
            {
                "type": "response.completed",
                "response": {"id": response_id, "status": "completed", "output": []},
            }
        )
    out = []
    for seq, payload in enumerate(payloads):
        payload["sequence_number"] = seq
        line = f"id: {seq}\n" if ids else ""
        out.append(f"{line}event: {payload['type']}\ndata: {json.dumps(payload)}\n\n".encode())
    return out
