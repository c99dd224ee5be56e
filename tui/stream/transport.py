"""The engine's HTTP client: httpx's API over aiohttp's C HTTP parser when it can be used.

:func:`make_client` returns an ``httpx.AsyncClient`` for :class:`tui.stream.runner.StreamRun`
(no overall timeout: the runner sets connect and idle timeouts per request, no connection
cap, keep-alive connections kept for :data:`KEEPALIVE_S`). Its transport is, in this order:

- plain httpx (httpcore + h11) when ``TOKENTOP_HTTP=httpx`` is set (the escape hatch) or when
  the environment configures a proxy for any target (``HTTP_PROXY`` / ``HTTPS_PROXY`` /
  ``ALL_PROXY``, as :func:`urllib.request.getproxies` reads them, the source httpx documents
  for its ``trust_env``; ``NO_PROXY=*`` turns them all off): httpx then applies the proxies
  and ``NO_PROXY`` itself. ``direct_origins`` (the simulator) are mounted on a plain
  transport that never uses a proxy;
- otherwise ``httpx_aiohttp.AiohttpTransport`` (less CPU per token for many fast streams:
  ``bench/RESULTS.md``), subclassed here so that aiohttp's errors become the httpx exception
  types that describe them (the library's own map turns a refused connection or a server
  that hung up into ``ConnectTimeout``): a refused / unresolvable host is ``ConnectError``,
  a connect timeout ``ConnectTimeout``, no byte for the read timeout ``ReadTimeout``, a
  connection closed before or in the middle of a response ``RemoteProtocolError`` /
  ``ReadError``.
  The aiohttp session never reads proxies from the environment (there are none configured
  when it is used). Bodies are passed through undecoded: httpx decodes ``Content-Encoding``.

:func:`body_reader` is how the runner reads a response's body: on this transport, a body
without ``Content-Encoding`` is read straight from aiohttp's stream reader (whatever has
arrived, in one call per read), not through httpx's and httpx_aiohttp's chain of async
iterators (four generators resumed per network read); errors are mapped the same way.

Headless: no Textual, no Rich.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Literal, cast

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import AiohttpResponseStream

__all__ = ["HTTP_ENV", "KEEPALIVE_S", "BodyRead", "body_reader", "http_backend", "make_client"]

BodyRead = Callable[[], Awaitable[bytes]]
"""Reads the next bytes of a response body: whatever arrived (never empty), ``b""`` at its
end; errors are httpx's types."""

HTTP_ENV = "TOKENTOP_HTTP"
"""``TOKENTOP_HTTP=httpx`` forces the plain httpx transport."""
KEEPALIVE_S = 4.0
"""How long an idle keep-alive connection is kept for reuse: below the 5 s of uvicorn-based
servers (vLLM, the simulator's default), so a connection the server is closing is not reused."""
_MAX_HEADER_LINE = 64 * 1024
"""aiohttp's default limit for one header line is 8 KiB; h11 accepts more (large cookies)."""

Backend = Literal["aiohttp", "httpx"]

_RESPONSE_EXTENSION = "tokentop.aiohttp_response"
"""The response extension (httpx's place for what a transport adds to a response) that holds
the aiohttp response, for :func:`body_reader`."""


PROXY_SCHEMES = ("http", "https", "all")
"""The ``<scheme>_PROXY`` variables httpx honours (others, e.g. ``FTP_PROXY``, it ignores)."""


def env_proxies() -> dict[str, str]:
    """The proxies the environment configures for httpx: scheme -> proxy URL (none when
    ``NO_PROXY`` lists ``*``, which httpx reads as "never use a proxy")."""
    found = urllib.request.getproxies()
    if "*" in (host.strip() for host in found.get("no", "").split(",")):
        return {}
    return {scheme: found[scheme] for scheme in PROXY_SCHEMES if found.get(scheme)}


def http_backend() -> Backend:
    """Which transport :func:`make_client` uses now: ``aiohttp`` or ``httpx``."""
    if os.environ.get(HTTP_ENV, "").strip().lower() == "httpx" or env_proxies():
        return "httpx"
    return "aiohttp"


def make_client(*, direct_origins: Sequence[str] = ()) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for the engine (see the module docstring).

    ``direct_origins`` (``"http://127.0.0.1:8123"``) are never reached through a proxy from
    the environment. Close the client (``await client.aclose()`` or ``async with``): that
    also closes the aiohttp session.
    """
    if http_backend() == "aiohttp":
        return httpx.AsyncClient(timeout=None, transport=_AiohttpTransport())
    limits = httpx.Limits(
        max_connections=None, max_keepalive_connections=64, keepalive_expiry=KEEPALIVE_S
    )
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {
        origin.rstrip("/"): httpx.AsyncHTTPTransport(limits=limits) for origin in direct_origins
    }
    return httpx.AsyncClient(timeout=None, limits=limits, mounts=mounts)


# --- the aiohttp transport -------------------------------------------------------------------

Phase = Literal["request", "body"]
"""``request``: before the response headers arrived; ``body``: while reading the body."""


def httpx_error(exc: BaseException, phase: Phase) -> httpx.TransportError | None:
    """The httpx exception that describes ``exc`` (an aiohttp error, or an httpx error that
    ``httpx_aiohttp`` raised from one), or None to let ``exc`` through unchanged."""
    original = exc.__cause__ if isinstance(exc, httpx.TransportError) else exc
    if isinstance(exc, UnicodeError) and phase == "request":
        # httpx_aiohttp re-encodes aiohttp's reason phrase (decoded with surrogateescape)
        # as UTF-8: a reason that is not UTF-8 raises there, after the response was read
        protocol = httpx.RemoteProtocolError(
            "invalid HTTP response: a status line that is not UTF-8"
        )
        protocol.__cause__ = exc
        return protocol
    if not isinstance(original, aiohttp.ClientError | TimeoutError):
        return None
    message = str(original) or type(original).__name__
    cls: type[httpx.TransportError]
    if isinstance(original, aiohttp.ConnectionTimeoutError):
        cls = httpx.ConnectTimeout
    elif isinstance(original, TimeoutError):  # SocketTimeoutError: no byte for sock_read
        cls = httpx.ReadTimeout
    elif isinstance(original, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        cls = httpx.ProxyError
    elif isinstance(original, aiohttp.ClientConnectorError | aiohttp.ServerFingerprintMismatch):
        cls = httpx.ConnectError  # refused, unreachable, DNS, TLS
        if type(original) in (aiohttp.ClientConnectorError, aiohttp.ClientConnectorDNSError):
            # aiohttp words it "Cannot connect to host h:p ssl:default [Connect call failed
            # ('h', p)]"; the OS's reason is what a user needs (the runner names the URL)
            os_error = cast(aiohttp.ClientConnectorError, original).os_error
            if isinstance(os_error, socket.gaierror) or not os_error.errno:
                message = os_error.strerror or str(os_error) or message
            else:  # asyncio's "Connect call failed (...)" hides ECONNREFUSED and friends
                message = os.strerror(os_error.errno)
    elif isinstance(original, aiohttp.ServerDisconnectedError):
        cls = httpx.RemoteProtocolError
        message = "the server closed the connection" + (
            " without sending a response" if phase == "request" else " mid-body"
        )
    elif isinstance(original, aiohttp.ClientPayloadError):
        # the body ended early; aiohttp words it "... <TransferEncodingError: 400, message=...>"
        # (its parser's status, not an HTTP 400)
        cls = httpx.RemoteProtocolError
        message = "peer closed connection without sending complete message body"
        if connection_reset(original):
            message += " (connection reset by peer)"
    elif isinstance(original, aiohttp.ClientResponseError):
        # a response aiohttp's parser rejected; ``status`` is its parser's, not the server's
        cls = httpx.RemoteProtocolError
        message = "invalid HTTP response: " + " ".join(original.message.split())
    elif isinstance(original, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return None  # httpx_aiohttp maps these to UnsupportedProtocol
    elif isinstance(original, aiohttp.ClientOSError):
        cls = httpx.ReadError  # e.g. connection reset by peer
    elif phase == "body":
        cls = httpx.ReadError
    elif isinstance(original, aiohttp.ClientConnectionError):
        cls = httpx.ConnectError
    else:
        cls = httpx.TransportError
    if type(exc) is cls:
        return None
    mapped = cls(message)
    mapped.__cause__ = original
    return mapped


def connection_reset(exc: BaseException) -> bool:
    """Whether ``exc`` reports a connection reset by the peer: an ``ECONNRESET`` ``OSError``
    (aiohttp's ``ClientOSError`` is one) in its chain of causes.

    aiohttp raises a body cut short by a reset as a ``ClientPayloadError`` that keeps the
    ``ConnectionResetError`` only in its message (``... ConnectionResetError(104, ...)``),
    not as a cause: this is the one place that reads that message, and
    ``tests/stream/test_transport_errors.py`` fails when aiohttp words it otherwise.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ConnectionResetError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNRESET
        ):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return isinstance(exc, aiohttp.ClientPayloadError) and "ConnectionResetError" in str(exc)


@contextlib.contextmanager
def _mapped(phase: Phase) -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # never CancelledError (a BaseException)
        mapped = httpx_error(exc, phase)
        if mapped is None:
            raise
        raise mapped from mapped.__cause__


class _MappedStream(httpx.AsyncByteStream):
    """A response body whose errors are mapped by :func:`httpx_error`."""

    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped("body"):
            async for chunk in self._inner:
                yield chunk

    async def aclose(self) -> None:
        with _mapped("body"):
            await self._inner.aclose()


class _AiohttpTransport(AiohttpTransport):
    """``httpx_aiohttp.AiohttpTransport`` with no connection cap, a longer header line limit,
    no proxies from the environment, and truthful exception types."""

    def get_client(self) -> aiohttp.ClientSession:
        """A new aiohttp session (created on the first request, inside the running loop)."""
        connector = aiohttp.TCPConnector(
            limit=0,  # no cap: 16+ concurrent streams (httpx_aiohttp would default to 100)
            limit_per_host=0,
            keepalive_timeout=KEEPALIVE_S,
            ssl=self.ssl_context,
        )
        return aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            timeout=aiohttp.ClientTimeout(),  # every request passes its own
            max_line_size=_MAX_HEADER_LINE,
            max_field_size=_MAX_HEADER_LINE,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; the response body maps its errors too."""
        with _mapped("request"):
            response: httpx.Response = await super().handle_async_request(request)
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        response.stream = _MappedStream(stream)
        aiohttp_response = _aiohttp_response_of(stream)
        if aiohttp_response is not None:  # for body_reader: httpx wraps the stream once more
            response.extensions[_RESPONSE_EXTENSION] = aiohttp_response
        return response


# --- reading a body --------------------------------------------------------------------------


def body_reader(response: httpx.Response, *, paced_by_caller: bool = False) -> BodyRead:
    """How to read ``response``'s body (see the module): aiohttp's stream reader directly
    when the response came from this module's aiohttp transport without a
    ``Content-Encoding``, else httpx's ``aiter_bytes`` (which decodes it).

    ``paced_by_caller``: the caller cuts a body that stops coming itself (the runner's idle
    deadline), so the aiohttp connection's read timeout, which re-arms a timer on every
    network read, is switched off for the rest of this response."""
    aiohttp_response = response.extensions.get(_RESPONSE_EXTENSION)
    if not isinstance(aiohttp_response, aiohttp.ClientResponse):
        return _HttpxBody(response).read
    if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
        return _HttpxBody(response).read
    if paced_by_caller:
        connection = aiohttp_response.connection
        protocol = connection.protocol if connection is not None else None
        if protocol is not None:
            protocol.read_timeout = None  # set again for the connection's next request
    return _AiohttpBody(aiohttp_response.content).read


def _aiohttp_response_of(stream: httpx.AsyncByteStream) -> aiohttp.ClientResponse | None:
    """The aiohttp response in httpx_aiohttp's response stream.

    The one read of httpx_aiohttp's private ``_aiohttp_response`` (the library keeps the
    aiohttp response in its stream and exposes it nowhere else);
    ``tests/stream/test_transport.py`` fails when the library changes it."""
    if type(stream) is not AiohttpResponseStream:
        return None
    aiohttp_response = getattr(stream, "_aiohttp_response", None)
    return aiohttp_response if isinstance(aiohttp_response, aiohttp.ClientResponse) else None


class _AiohttpBody:
    """A body read from aiohttp's stream reader, its errors mapped by :func:`httpx_error`."""

    __slots__ = ("_content",)

    def __init__(self, content: aiohttp.StreamReader) -> None:
        self._content = content

    async def read(self) -> bytes:
        """Whatever arrived (one network read or more), ``b""`` at the end."""
        try:
            return await self._content.readany()
        except Exception as exc:  # never CancelledError (a BaseException)
            mapped = httpx_error(exc, "body")
            if mapped is None:
                raise
            raise mapped from mapped.__cause__


class _HttpxBody:
    """A body read through httpx (decoded), one chunk per call."""

    __slots__ = ("_next",)

    def __init__(self, response: httpx.Response) -> None:
        self._next = response.aiter_bytes().__anext__

    async def read(self) -> bytes:
        """The next decoded chunk, ``b""`` at the end."""
        try:
            return await self._next()
        except StopAsyncIteration:
            return b""
