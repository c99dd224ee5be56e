"""GET /v1/models over real loopback HTTP: the simulator's list, and every way a server can
fail to give one, each as one sentence (bounded in time and size, secrets redacted)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from tui.config import SessionConfig
from tui.sim.faults import PRESETS
from tui.stream import models
from tui.stream.models import ModelList, list_models, parse_models
from tui.stream.redaction import Redactor
from tui.stream.transport import make_client

from .hostile import HostileServer, head, parts

KEY = "sk-test-Zq8vW2xR5tY7uI9oP1aS3dF6"
ENV = "TOKENTOP_TEST_MODELS_KEY"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The client runs use (aiohttp transport unless the environment says otherwise)."""
    async with make_client() as http:
        yield http


def session(**changes: Any) -> SessionConfig:
    base = SessionConfig(name="models", model="-", prompt="-", base_url="http://127.0.0.1:1/v1")
    return replace(base, **changes)


def answer(status: int, body: bytes, content_type: str = "application/json") -> HostileServer:
    reason = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 500: "Internal Server Error"}
    return HostileServer(
        [parts(head(status, reason=reason[status], content_type=content_type) + body)]
    )


async def test_the_simulators_models(client: httpx.AsyncClient, sim_url: str) -> None:
    listed = await list_models(client, session(base_url="sim"), sim_url)
    assert listed.error is None and not listed.truncated
    assert set(listed.ids) == set(PRESETS)
    assert list(listed.ids) == sorted(listed.ids, key=lambda m: (m.lower(), m))


async def test_no_models_route_says_so_with_the_v1_hint(
    client: httpx.AsyncClient, sim_url: str
) -> None:
    bare = sim_url.removesuffix("/v1")
    listed = await list_models(client, session(), bare)
    assert listed.ids == ()
    assert listed.error == (
        f"this server has no /models (HTTP 404): type the model name "
        f'(base_url {bare} has no /v1: try "{bare}/v1")'
    )


async def test_a_key_is_needed_rejected_or_sent(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = json.dumps({"error": {"message": f"bad key {KEY}"}}).encode()
    async with answer(401, body) as server:
        listed = await list_models(client, session(), server.base_url)
        assert listed.error == (
            "the server needs a key (HTTP 401): name its variable in api_key_env"
        )
        monkeypatch.delenv(ENV, raising=False)
        listed = await list_models(client, session(api_key_env=ENV), server.base_url)
        assert listed.error == f"the server needs a key (HTTP 401): the variable {ENV} is not set"
        monkeypatch.setenv(ENV, KEY)
        listed = await list_models(client, session(api_key_env=ENV), server.base_url)
        assert listed.error == f"the server rejected the key from {ENV} (HTTP 401)"
        sent = server.requests[-1]
        assert (sent.method, sent.path) == ("GET", "/v1/models")
        assert sent.headers["authorization"] == f"Bearer {KEY}"
        assert sent.headers["accept"] == "application/json"


async def test_a_server_error_is_its_message_redacted(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, KEY)
    body = json.dumps({"error": {"message": f"upstream saw {KEY} and fell over"}}).encode()
    async with answer(500, body) as server:
        listed = await list_models(client, session(api_key_env=ENV), server.base_url)
    assert listed.error is not None
    assert listed.error.startswith("HTTP 500 Internal Server Error: upstream saw [redacted]")
    assert KEY[:8] not in listed.error and KEY[-8:] not in listed.error


async def test_a_silent_server_is_cut_in_time(client: httpx.AsyncClient) -> None:
    script = parts(head(200, content_type="application/json"), b'{"data": [', hold=True)
    async with HostileServer([script]) as server:
        started = time.monotonic()
        listed = await list_models(client, session(), server.base_url, timeout_s=0.5)
        took = time.monotonic() - started
    assert listed.error == "no model list within 0.5 s: type the model name"
    assert took < 5


async def test_sizes_are_bounded(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "MAX_BODY_BYTES", 1024)
    big = json.dumps({"data": [{"id": f"model-{i}"} for i in range(200)]}).encode()
    async with answer(200, big) as server:
        listed = await list_models(client, session(), server.base_url)
    assert listed.error == "the model list is over 1 KiB: type the model name"
    monkeypatch.setattr(models, "MAX_BODY_BYTES", 1 << 20)
    monkeypatch.setattr(models, "MAX_IDS", 3)
    odd = [{"id": "x" * 500}, {"id": "bell\x07"}, {"id": 7}, {"object": "model"}]
    body = json.dumps({"data": [*odd, *({"id": f"m{i}"} for i in range(5))]}).encode()
    async with answer(200, body) as server:
        listed = await list_models(client, session(), server.base_url)
    assert listed == ModelList(("m0", "m1", "m2"), truncated=True)


async def test_not_a_model_list(client: httpx.AsyncClient) -> None:
    async with answer(200, b"<html><body>login</body></html>", "text/html") as server:
        listed = await list_models(client, session(), server.base_url)
    assert listed.error == "the answer is not a model list (text/html): type the model name"
    async with answer(200, b'{"data": []}') as server:
        listed = await list_models(client, session(), server.base_url)
    assert listed.error == "the server lists no models: type the model name"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_an_unreachable_server_never_raises(client: httpx.AsyncClient) -> None:
    port = free_port()
    listed = await list_models(client, session(), f"http://127.0.0.1:{port}/v1")
    assert listed.error is not None
    assert listed.error.startswith(f"cannot reach http://127.0.0.1:{port}: ")
    listed = await list_models(client, session(), f"http://user:hunter2pass@127.0.0.1:{port}/v1")
    assert listed.error is not None and "hunter2" not in listed.error
    listed = await list_models(client, session(), "sim")  # an unresolved base_url
    assert listed.error == "base_url is not an http(s) URL"


def test_the_shapes_servers_use() -> None:
    quiet = Redactor([])
    assert parse_models(b'{"models": [{"name": "llama3:8b"}, {"model": "qwen"}]}', "", quiet) == (
        ModelList(("llama3:8b", "qwen"))
    )
    assert parse_models(b'["b", "A", "b", " c "]', "", quiet) == ModelList(("A", "b", "c"))
    assert parse_models(b'{"data": "nope"}', "", quiet).error == (
        "the answer is not a model list: type the model name"
    )
    secret = Redactor([KEY])
    listed = parse_models(json.dumps([f"m-{KEY}"]).encode(), "", secret)
    assert listed.ids == ("m-[redacted]",)
