"""A tiny loopback HTTP/1.1 server answering each request with the next canned byte
response, for the server behaviours the simulator does not produce (HTTP-date Retry-After,
``x-should-retry``, a missing blank line after ``[DONE]``, a resume that 404s, a server that
never answers). It is real TCP: httpx parses every byte."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from types import TracebackType

Part = bytes | float
"""Bytes to write, or seconds to wait."""
Canned = list[Part] | None
"""A response as parts (the connection closes after the last), or None: never answer."""


@dataclass
class Request:
    """A request as received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def response(
    status: int = 200,
    body: bytes = b"",
    *,
    reason: str = "OK",
    content_type: str = "text/event-stream",
    headers: dict[str, str] | None = None,
    length: bool = False,
) -> bytes:
    """Raw response bytes; without ``length`` the body ends when the connection closes."""
    lines = [f"HTTP/1.1 {status} {reason}", f"content-type: {content_type}", "connection: close"]
    if length:
        lines.append(f"content-length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class CannedServer:
    """Answers request i with ``answers[i]`` (the last one repeats)."""

    answers: list[Canned]
    requests: list[Request] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def __aenter__(self) -> CannedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers: dict[str, str] = {}
            for line in header_lines:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            index = len(self.requests)
            self.requests.append(Request(method, path, headers, body))
            answer = self.answers[min(index, len(self.answers) - 1)]
            if answer is None:
                await reader.read()  # hold the connection until the client gives up
                return
            for part in answer:
                if isinstance(part, float):
                    await asyncio.sleep(part)
                else:
                    writer.write(part)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
