"""How the runner reads a response body (tui.stream.transport.body_reader), over real
sockets: straight from aiohttp's stream reader on the aiohttp transport (the one read of
httpx_aiohttp's private response attribute is checked here), through httpx otherwise, and
the same bytes either way."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest

from tests.stream.test_transport import BACKENDS, _clear_proxies
from tui.stream.transport import _RESPONSE_EXTENSION, HTTP_ENV, body_reader, make_client

BODY = {"model": "sim", "messages": [{"role": "user", "content": "Tell me about rivers."}]}


@pytest.fixture(params=BACKENDS)
async def client(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    _clear_proxies(monkeypatch)
    if request.param == "httpx":
        monkeypatch.setenv(HTTP_ENV, "httpx")
    else:
        monkeypatch.delenv(HTTP_ENV, raising=False)
    async with make_client() as http:
        yield http


async def _read_all(
    client: httpx.AsyncClient, sim_url: str, sim_key: str, *, direct: bool
) -> tuple[bytes, bool]:
    """The whole stream of one request: its bytes, and whether aiohttp's reader was used."""
    headers = {"X-Sim-Key": sim_key, "X-Sim-Timing": "ttft=0,tps=0,tokens=40"}
    async with client.stream(
        "POST", sim_url + "/chat/completions", json={**BODY, "stream": True}, headers=headers
    ) as response:
        assert response.status_code == 200
        used = isinstance(response.extensions.get(_RESPONSE_EXTENSION), aiohttp.ClientResponse)
        if not direct:
            return b"".join([chunk async for chunk in response.aiter_bytes()]), used
        read = body_reader(response, paced_by_caller=True)
        parts = []
        while chunk := await read():
            parts.append(chunk)
        return b"".join(parts), used


async def test_the_body_is_read_whole(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    direct, used = await _read_all(client, sim_url, sim_key + "-a", direct=True)
    through_httpx, _ = await _read_all(client, sim_url, sim_key + "-b", direct=False)
    # the same stream (ids and times aside): the same events, ending with [DONE]
    assert direct.count(b"\n\ndata: ") == through_httpx.count(b"\n\ndata: ") > 40
    assert direct.endswith(b"data: [DONE]\n\n")
    # on the aiohttp transport the reader is aiohttp's own (httpx_aiohttp's private
    # _aiohttp_response is still where transport.py reads it)
    assert used == (client._transport.__class__.__name__ == "_AiohttpTransport")


async def test_a_paced_body_has_no_per_read_timer(sim_url: str, sim_key: str) -> None:
    async with make_client() as http:
        # the body comes well after the headers: its connection is still held when the
        # reader is made (aiohttp releases it once the body is complete)
        headers = {"X-Sim-Key": sim_key, "X-Sim-Timing": "ttft=0.3,tps=20,tokens=5"}
        timeout = httpx.Timeout(5.0, read=30.0)
        async with http.stream(
            "POST",
            sim_url + "/chat/completions",
            json={**BODY, "stream": True},
            headers=headers,
            timeout=timeout,
        ) as response:
            upstream = response.extensions.get(_RESPONSE_EXTENSION)
            if not isinstance(upstream, aiohttp.ClientResponse):
                pytest.skip("the plain httpx transport is configured here")
            connection = upstream.connection
            assert connection is not None and connection.protocol is not None
            assert connection.protocol.read_timeout == 30.0  # until the headers
            read = body_reader(response, paced_by_caller=True)
            assert connection.protocol.read_timeout is None
            while await read():
                pass
