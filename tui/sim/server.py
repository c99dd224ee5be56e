"""Running the simulator: in a background thread of this process (:class:`Simulator`, the
tests' loopback server) or in the foreground (:func:`serve`: ``tokentop sim``, and the child
process of :mod:`tui.sim.process` that serves ``base_url = "sim"``)."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType

import uvicorn

from tui.sim.app import SimApp
from tui.sim.wire import install_drop_log_filter

__all__ = ["Simulator", "serve"]

_START_TIMEOUT_S = 20.0


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/v1"


class _SimServer(uvicorn.Server):
    """uvicorn's server that cuts the simulator's open streams first when it shuts down
    (otherwise a stalled or slow stream would hold the graceful shutdown)."""

    def __init__(
        self, app: SimApp, log_level: str, on_started: Callable[[], None] | None = None
    ) -> None:
        super().__init__(_config(app, log_level))
        self.sim_app = app
        self.on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as usual, then call ``on_started`` once connections are being accepted."""
        await super().startup(sockets=sockets)
        if self.started and self.on_started is not None:
            self.on_started()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Cut open streams, then shut down as usual."""
        self.sim_app.close_streams()
        await super().shutdown(sockets=sockets)


def _config(app: SimApp, log_level: str) -> uvicorn.Config:
    install_drop_log_filter()
    return uvicorn.Config(
        app.asgi(),
        loop="asyncio",
        http="httptools",
        ws="none",
        lifespan="off",
        log_config=None,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=1,
        timeout_keep_alive=30,
    )


def _finish(loop: asyncio.AbstractEventLoop) -> None:
    """Let cancelled leftovers run their cleanup, then close the loop."""
    try:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


class Simulator:
    """The simulator on a free loopback port, served by uvicorn in a daemon thread with its own
    event loop. Usable from sync and async code, and as a context manager."""

    def __init__(self, seed: int = 0, host: str = "127.0.0.1", port: int = 0) -> None:
        self.seed = seed
        self.host = host
        self.port = port
        self._server: _SimServer | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """The base URL, ending in ``/v1`` (RuntimeError before :meth:`start`)."""
        if self._base_url is None:
            raise RuntimeError("the simulator is not running")
        return self._base_url

    def start(self) -> str:
        """Start serving (idempotent); return the base URL once connections are accepted."""
        with self._lock:
            if self._base_url is not None:
                return self._base_url
            sock = _bind(self.host, self.port)
            server = _SimServer(SimApp(self.seed), "warning")
            failure: list[BaseException] = []
            loop = asyncio.new_event_loop()

            def run() -> None:
                try:
                    loop.run_until_complete(server.serve(sockets=[sock]))
                except BaseException as exc:  # reported to start() or ignored after stop
                    failure.append(exc)
                finally:
                    _finish(loop)
                    sock.close()

            thread = threading.Thread(target=run, name="tokentop-sim", daemon=True)
            thread.start()
            deadline = time.monotonic() + _START_TIMEOUT_S
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    server.should_exit = True
                    raise RuntimeError(f"the simulator did not start: {failure!r}")
                time.sleep(0.002)
            self._server, self._thread = server, thread
            self.port = sock.getsockname()[1]
            self._base_url = _base_url(sock)
            return self._base_url

    def stop(self) -> None:
        """Stop serving and wait for the thread (open streams are cut after about a second)."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            self._base_url = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=2.0)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5.0)

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _print_url(base_url: str) -> None:
    print(base_url, flush=True)


def serve(
    host: str,
    port: int,
    *,
    seed: int = 0,
    on_started: Callable[[str], None] = _print_url,
) -> None:
    """Run the simulator in the foreground (on this thread, with its own event loop).

    ``on_started`` gets the base URL once connections are accepted (by default it is printed
    as the first line of stdout). Raises OSError when ``host:port`` cannot be bound. Returns
    after Ctrl-C (SIGINT) once open streams are cut; SIGTERM ends the process the usual way
    (uvicorn re-raises it after a graceful shutdown).
    """
    sock = _bind(host, port)
    base_url = _base_url(sock)
    server = _SimServer(SimApp(seed), "warning", lambda: on_started(base_url))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the captured SIGINT after shutting down
        pass
    finally:
        sock.close()


if __name__ == "__main__":  # pragma: no cover - handy for manual runs
    serve(
        sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1",
        int(sys.argv[2]) if len(sys.argv) > 2 else 8700,
    )
