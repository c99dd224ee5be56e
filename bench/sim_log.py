"""``python -m bench.sim_log``: the simulator in this process, with a log of when each
session's POSTs reach it (the header :data:`bench.scale.SESSION_HEADER`), read back with
``GET /bench/arrivals`` (a JSON list of ``[session, wall time]``). Prints the base URL first.

The time is taken when uvicorn's parser meets the header, in the loop's read of the socket
(``data_received``), on the wall clock (``time.time()``) that tokentop's stored
``started_at`` uses too. Not later, when the request's task runs: 1,024 requests arriving
together are read in one pass of the loop, while their tasks (each plans a whole answer) run
one after another for seconds, which would make the later ones look late.
"""

from __future__ import annotations

import json
import time
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bench.scale import SESSION_HEADER
from tui.sim.app import SimApp

_HEADER = SESSION_HEADER.lower().encode()
ARRIVALS: list[tuple[str, float]] = []
"""(session, wall time) of every request with the header, in the order they were read."""


class StampingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that notes when a request's session header is parsed."""

    def on_header(self, name: bytes, value: bytes) -> None:
        """Note the session header's arrival, then parse as usual."""
        if name.lower() == _HEADER:
            ARRIVALS.append((value.decode(), time.time()))
        super().on_header(name, value)


class ArrivalLog:
    """ASGI middleware serving ``GET /bench/arrivals`` (everything else: the simulator)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/bench/arrivals":
            body = json.dumps(ARRIVALS).encode()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class _Server(uvicorn.Server):
    """uvicorn's server that prints the base URL once connections are accepted."""

    base_url = ""

    async def startup(self, sockets: Any = None) -> None:
        """Start as usual, then print the base URL."""
        await super().startup(sockets=sockets)
        print(self.base_url, flush=True)


def main() -> None:
    """Serve on a free loopback port until killed."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        ArrivalLog(SimApp(0).asgi()),
        loop="asyncio",
        http=StampingProtocol,
        ws="none",
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=120,
        backlog=4096,
    )
    server = _Server(config)
    server.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
