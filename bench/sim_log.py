"""``python -m bench.sim_log``: the simulator in this process, with a log of when each
session's POSTs reach it (the header :data:`bench.scale.SESSION_HEADER`), read back with
``GET /bench/arrivals`` (a JSON list of ``[session, wall time]``). Prints the base URL first.

The time is taken when the request's headers have been parsed and the simulator is called,
on the wall clock (``time.time()``) that tokentop's stored ``started_at`` uses too.
"""

from __future__ import annotations

import json
import time
from typing import Any

import uvicorn

from bench.scale import SESSION_HEADER
from tui.sim.app import SimApp

_HEADER = SESSION_HEADER.lower().encode()


class ArrivalLog:
    """ASGI middleware: records ``(session, time.time())`` for every POST with the header."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.arrivals: list[tuple[str, float]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if scope["path"] == "/bench/arrivals":
                body = json.dumps(self.arrivals).encode()
                headers = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            if scope["method"] == "POST":
                at = time.time()
                for key, value in scope["headers"]:
                    if key == _HEADER:
                        self.arrivals.append((value.decode(), at))
                        break
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
        http="httptools",
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
