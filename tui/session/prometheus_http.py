"""serve_metrics: the ``/metrics`` endpoint of ``--metrics-addr``, on a thread of its own.

``prometheus_client.start_http_server`` runs a threading WSGI server in a daemon thread, so
a scrape never waits for the face's event loop and the loop never waits for a scrape (the
registry's metrics have their own locks). Any path answers with the metrics, as
prometheus-client does; ``/metrics`` is the one to configure.

Addresses (:func:`parse_metrics_addr`): ``HOST:PORT``, ``[IPV6]:PORT``, and ``:PORT`` or a
bare ``PORT``, which mean loopback (``127.0.0.1``): the endpoint is reachable from other
machines only when asked for by name (``0.0.0.0:9464``, ``[::]:9464`` or a host's
address). Port 0 picks a free port (:attr:`MetricsServer.port` says which).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import threading
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

__all__ = [
    "DEFAULT_HOST",
    "MetricsServer",
    "MetricsServerError",
    "parse_metrics_addr",
    "serve_metrics",
]

DEFAULT_HOST = "127.0.0.1"
"""The host of an address that names only a port."""

EXAMPLE = "127.0.0.1:9464"


class MetricsServerError(OSError):
    """The metrics endpoint could not listen (port in use, unknown host, no permission);
    the message names the address and the cause, fit to show as is."""


def parse_metrics_addr(addr: str) -> tuple[str, int]:
    """``(host, port)`` of a ``--metrics-addr`` value; ValueError naming the problem."""
    text = addr.strip()
    if not text:
        raise ValueError(f"the metrics address is empty: give HOST:PORT, like {EXAMPLE}")
    if "://" in text or "/" in text:
        raise ValueError(
            f"the metrics address {addr!r} is not HOST:PORT (no scheme or path), like {EXAMPLE}"
        )
    if text.isdigit():
        host, port_text = DEFAULT_HOST, text
    elif text.startswith("["):
        close = text.find("]")
        if close < 0 or not text[close + 1 :].startswith(":"):
            raise ValueError(f"the metrics address {addr!r} is not [IPV6]:PORT, like [::1]:9464")
        host, port_text = text[1:close], text[close + 2 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(
                f"the metrics address {addr!r}: {host!r} in brackets is not an IPv6 address"
            ) from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError(f"the metrics address {addr!r} has no port: give HOST:PORT")
        if ":" in host:
            raise ValueError(
                f"the metrics address {addr!r}: write an IPv6 address in brackets, like [::1]:9464"
            )
        host = host or DEFAULT_HOST
    if not port_text.isdigit() or not port_text.isascii() or int(port_text) > 65535:
        raise ValueError(
            f"the metrics address {addr!r} has no valid port: {port_text!r} is not a "
            "number from 0 to 65535"
        )
    if any(c.isspace() for c in host):
        raise ValueError(f"the metrics address {addr!r}: the host has spaces")
    return host, int(port_text)


def _describe(host: str, port: int, exc: OSError) -> str:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        cause = f"the host {host!r} is unknown"
    elif exc.errno == errno.EADDRINUSE:
        cause = f"port {port} is already in use"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        cause = f"no permission to listen on port {port}"
    elif exc.errno == errno.EADDRNOTAVAIL:
        cause = f"{host} is not an address of this machine"
    else:
        cause = exc.strerror or str(exc)
    return f"cannot serve metrics on {where}: {cause}"


@dataclass(slots=True)
class MetricsServer:
    """A running ``/metrics`` endpoint; :meth:`close` (or :meth:`aclose`) stops it."""

    host: str
    port: int
    """The port it listens on (the chosen one when asked for port 0)."""
    _server: WSGIServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _closed: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        """``http://HOST:PORT/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and free the port (blocks for up to the server's 0.5 s poll: call
        :meth:`aclose` from an event loop). Closing twice is a no-op."""
        if self._closed:
            return
        self._closed = True
        server = self._server
        server.shutdown()
        server.server_close()
        self._thread.join(timeout=5)

    async def aclose(self) -> None:
        """:meth:`close` in a worker thread, so the loop keeps running meanwhile."""
        await asyncio.to_thread(self.close)


def serve_metrics(addr: str, registry: CollectorRegistry) -> MetricsServer:
    """Serve ``registry`` at ``addr`` (see :func:`parse_metrics_addr`) from a daemon thread.

    Raises ValueError for an address that cannot be read and :class:`MetricsServerError`
    when it cannot listen there; both messages name the address and the cause.
    """
    host, port = parse_metrics_addr(addr)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        error = MetricsServerError(_describe(host, port, exc))
        error.errno = exc.errno
        raise error from None
    bound = server.server_address
    return MetricsServer(host, int(bound[1]), server, thread)
