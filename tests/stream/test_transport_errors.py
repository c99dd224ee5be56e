"""What the aiohttp transport reads from aiohttp's errors that has no public form: these
tests fail when aiohttp changes under :func:`tui.stream.transport.connection_reset`."""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest

from tui.stream.transport import HTTP_ENV, connection_reset, env_proxies, make_client

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
CHUNK = b'data: {"x": 1}\n\n'


async def _reset_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer with the head and one chunk of a chunked body, then reset the connection."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(HEAD + f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n")
    await writer.drain()
    await asyncio.sleep(0.2)  # the client has read the chunk
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # SO_LINGER 0: an RST, not a FIN


@pytest.fixture
async def resetting_url() -> AsyncIterator[str]:
    server = await asyncio.start_server(_reset_mid_body, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1/chat/completions"
    finally:
        server.close()


async def test_a_reset_mid_body_is_named_on_aiohttp(
    resetting_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(HTTP_ENV, raising=False)
    received = b""
    async with make_client() as http:
        assert type(http._transport).__name__ == "_AiohttpTransport"
        with pytest.raises(httpx.RemoteProtocolError) as err:
            async with http.stream("POST", resetting_url, content=b"{}") as response:
                async for chunk in response.aiter_bytes():
                    received += chunk
    assert received == CHUNK
    assert str(err.value) == (
        "peer closed connection without sending complete message body (connection reset by peer)"
    )
    assert isinstance(err.value.__cause__, aiohttp.ClientPayloadError)


def test_connection_reset_reads_the_cause_chain() -> None:
    assert connection_reset(aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"))
    wrapped = aiohttp.ClientConnectionError("lost")
    wrapped.__cause__ = ConnectionResetError(errno.ECONNRESET, "reset")
    assert connection_reset(wrapped)
    assert not connection_reset(aiohttp.ClientOSError(errno.EPIPE, "Broken pipe"))
    assert not connection_reset(aiohttp.ServerDisconnectedError())


def test_env_proxies_reads_the_environment_as_httpx_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "FTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    assert env_proxies() == {}
    monkeypatch.setenv("FTP_PROXY", "http://ftp-proxy:21")  # httpx ignores it
    monkeypatch.setenv("NO_PROXY", "localhost")
    assert env_proxies() == {}
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    assert env_proxies() == {"https": "http://proxy.example:3128"}
    monkeypatch.setenv("NO_PROXY", "localhost, *")
    assert env_proxies() == {}
