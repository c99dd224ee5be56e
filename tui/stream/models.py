"""``GET /v1/models``: the model ids a server offers (the dashboard's add-session form).

The request goes out as a run's do: the caller's client (see :mod:`tui.stream.transport`),
the session's headers and its API key as ``Authorization: Bearer``
(:meth:`tui.stream.request.RequestPlan.headers`), and every text from the server is
redacted with the session's secrets (:mod:`tui.stream.redaction`) before it is kept.

Bounded whatever the server does: the whole exchange within ``timeout_s`` (connect, headers
and body), a body of at most :data:`MAX_BODY_BYTES`, at most :data:`MAX_IDS` ids of at most
:data:`MAX_ID_CHARS` characters. :func:`list_models` never raises (a cancellation of the
caller excepted): every failure is one sentence in :attr:`ModelList.error`.

Headless: no Textual, no Rich.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from tui.config import SessionConfig
from tui.stream.redaction import Redactor, session_secrets
from tui.stream.request import RequestPlan
from tui.stream.retry import describe_http_error, request_id_of

__all__ = ["MAX_BODY_BYTES", "MAX_IDS", "MODELS_TIMEOUT_S", "ModelList", "list_models"]

MODELS_TIMEOUT_S = 5.0
"""The longest :func:`list_models` waits by default, from the request to the last byte."""
MAX_BODY_BYTES = 4 * 1024 * 1024
"""A model list's body is read up to this size (OpenRouter's ~350 models with descriptions
and prices take about 1 MiB); past it, the list is refused."""
MAX_IDS = 1000
"""At most this many ids are kept (the rest is left out: :attr:`ModelList.truncated`)."""
MAX_ID_CHARS = 200
"""Longer ids are left out (no model is called that: it is not a model list)."""
_ERROR_BODY_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class ModelList:
    """The answer of ``GET /models``: ids, or why there are none."""

    ids: tuple[str, ...] = ()
    """Model ids, sorted (case-insensitively), each once."""
    error: str | None = None
    """Why no list came, one sentence (None: the list came)."""
    truncated: bool = False
    """The server listed more than :data:`MAX_IDS` ids (or longer ones): some are left out."""


def _origin(url: httpx.URL) -> str:
    # netloc is host[:port]: credentials in the URL are never shown
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"


def _size(n: int) -> str:
    return f"{n / (1 << 20):g} MiB" if n >= 1 << 20 else f"{n / 1024:g} KiB"


async def _read(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """The body up to ``limit`` bytes, and whether there was more."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), True
    return bytes(body), False


def _status_error(
    response: httpx.Response, body: bytes, session: SessionConfig, redactor: Redactor
) -> str:
    status = response.status_code
    url = response.request.url
    if status in (404, 405):
        hint = ""
        if "/v1/" not in url.path:
            base = _origin(url) + url.path.removesuffix("/models")
            hint = f' (base_url {base} has no /v1: try "{base}/v1")'
        return f"this server has no /models (HTTP {status}): type the model name{hint}"
    env = session.api_key_env
    if status in (401, 403):
        if env is None:
            return f"the server needs a key (HTTP {status}): name its variable in api_key_env"
        if not session.api_key():
            return f"the server needs a key (HTTP {status}): the variable {env} is not set"
        if status == 401:
            return f"the server rejected the key from {env} (HTTP 401)"
        return f"the key from {env} may not list the models (HTTP 403)"
    error = describe_http_error(
        status,
        response.reason_phrase,
        response.headers.get("content-type", ""),
        body,
        api_key_env=env,
        api_key=session.api_key(),
        request_id=request_id_of(response.headers),
        redactor=redactor,
    )
    return error.message


def _id_of(item: Any) -> Any:
    if isinstance(item, dict):
        return next((item[k] for k in ("id", "name", "model") if k in item), None)
    return item


def _clean(raw: Any, redactor: Redactor) -> str | None:
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if not text or len(text) > MAX_ID_CHARS or not text.isprintable():
        return None
    return redactor.redact(text)


def parse_models(body: bytes, content_type: str, redactor: Redactor) -> ModelList:
    """The ids of a model list in the shapes servers use: OpenAI's ``{"data": [{"id": ...}]}``,
    ``{"models": [...]}`` (items with ``id``, ``name`` or ``model``, or plain strings), or a
    bare array."""
    shown = content_type.split(";")[0].strip() or "no content type"
    try:
        value: Any = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return ModelList(error=f"the answer is not a model list ({shown}): type the model name")
    items = value
    if isinstance(value, dict):
        items = value.get("data", value.get("models"))
    if not isinstance(items, list):
        return ModelList(error="the answer is not a model list: type the model name")
    found: dict[str, None] = {}
    skipped = False
    for item in items:
        model = _clean(_id_of(item), redactor)
        if model is None:
            skipped = skipped or isinstance(_id_of(item), str)
            continue
        found[model] = None
    ids = sorted(found, key=lambda m: (m.lower(), m))
    if not ids:
        return ModelList(error="the server lists no models: type the model name")
    return ModelList(tuple(ids[:MAX_IDS]), truncated=skipped or len(ids) > MAX_IDS)


async def list_models(
    client: httpx.AsyncClient,
    session: SessionConfig,
    base_url: str,
    *,
    timeout_s: float = MODELS_TIMEOUT_S,
) -> ModelList:
    """``GET {base_url}/models`` with ``session``'s headers and key (``base_url`` resolved:
    the simulator's real URL for ``sim``). Never raises but ``CancelledError``."""
    redactor = Redactor(session_secrets(session))
    url: httpx.URL | None = None
    try:
        url = httpx.URL(base_url.rstrip("/") + "/models")
        headers = RequestPlan(session, base_url, session.prompt).headers(json=False)
        headers["Accept"] = "application/json"
        async with (
            asyncio.timeout(timeout_s),
            client.stream("GET", url, headers=headers, timeout=timeout_s) as response,
        ):
            if response.status_code != 200:
                body, _ = await _read(response, _ERROR_BODY_BYTES)
                return ModelList(error=_status_error(response, body, session, redactor))
            body, cut = await _read(response, MAX_BODY_BYTES)
            if cut:
                size = _size(MAX_BODY_BYTES)
                return ModelList(error=f"the model list is over {size}: type the model name")
        return parse_models(body, response.headers.get("content-type", ""), redactor)
    except (TimeoutError, httpx.TimeoutException):
        return ModelList(error=f"no model list within {timeout_s:g} s: type the model name")
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        return ModelList(error="base_url is not an http(s) URL")
    except httpx.TransportError as exc:
        where = _origin(url) if url is not None else "the server"
        reason = redactor.redact(str(exc))[:200] or type(exc).__name__
        return ModelList(error=f"cannot reach {where}: {reason}")
    except Exception as exc:  # a bug or an odd server must not end the form
        reason = redactor.redact(str(exc))[:200]
        return ModelList(error=f"listing the models failed: {type(exc).__name__}: {reason}")
