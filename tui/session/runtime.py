"""SessionRuntime: what a process needs once to run sessions, and one controller per session.

Both faces make one: ``tokentop run`` adds a progress printer, the dashboard adds its views.
The runtime opens the transcript store, starts the built-in simulator (a child process, shared
by every ``base_url = "sim"`` session) when a session needs it, builds the HTTP client, and
hands them to its :class:`~tui.session.controller.SessionController` objects, which exist
from the start (views can follow them before anything is open) and wait for :meth:`start`
before their first request. :attr:`alerts` (an :class:`~tui.session.alerts.AlertMonitor`)
follows every controller; its alerts go to the store and to each session's ``on_alert``
command, and a face adds its own sinks. :meth:`close` ends every run (gracefully first),
delivers the last alerts, waits a little for ``on_alert`` commands, and then closes the
store and the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tui.config import SessionConfig, StoreConfig
from tui.session.alert_command import AlertCommands
from tui.session.alerts import Alert, AlertMonitor
from tui.session.controller import SessionController
from tui.session.engine import Engine
from tui.session.recorder import AlertRecorder
from tui.session.run import StoreErrorHandler

if TYPE_CHECKING:
    import httpx

    from tui.session.prometheus_http import MetricsServer
    from tui.session.recorder import RunRecorder
    from tui.store import Store

log = logging.getLogger(__name__)

SimulatorStarter = Callable[[], str]
"""Starts (or finds) the shared simulator and gives its base URL; blocking, raises on failure."""

ALERT_COMMAND_WAIT_S = 2.0
"""How long :meth:`SessionRuntime.close` waits for running ``on_alert`` commands (then they
are killed)."""


def _default_simulator() -> str:
    from tui.sim.process import shared_simulator

    return shared_simulator()


class SessionRuntime:
    """The store, the simulator, the HTTP client and the controllers of one process."""

    def __init__(
        self,
        sessions: Sequence[SessionConfig],
        *,
        clock: Callable[[], float] = time.monotonic,
        on_store_error: StoreErrorHandler | None = None,
        simulator: SimulatorStarter | None = None,
        client: httpx.AsyncClient | None = None,
        threaded: bool | None = None,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.sessions = tuple(sessions)
        self.store: RunRecorder | None = None
        self.client: httpx.AsyncClient | None = client
        self.sim_url: str | None = None
        self.sim_error: str | None = None
        """Why the simulator did not start (its sessions' runs fail with this)."""
        self.on_store_error = on_store_error
        self.on_warning = on_warning
        """Told a problem the user should see that is no run's (an ``on_alert`` command
        that cannot start, ...); None: logged as a warning."""
        self._simulator = simulator or _default_simulator
        self._own_client = client is None
        # the runs' network side gets a thread of its own (see engine.py), unless the caller
        # brings a client, which belongs to the caller's loop
        self.engine = Engine() if (client is None if threaded is None else threaded) else None
        self._ready = asyncio.Event()
        self.controllers = [
            SessionController(
                session,
                ready=self._ready.wait,
                resolve_base_url=self._base_url,
                clock=clock,
                on_store_error=self._store_error,
                engine=self.engine,
            )
            for session in self.sessions
        ]
        rules = {s.name: s.alerts for s in self.sessions}
        self.metrics_server: MetricsServer | None = None
        """The ``/metrics`` endpoint (:meth:`serve_metrics`), when asked for."""
        self.alerts = AlertMonitor()
        """Every session's alerts (see :mod:`tui.session.alerts`): views read it, faces add
        sinks."""
        self.alert_commands = AlertCommands(rules.get, self._warn)
        """Runs each session's ``on_alert`` command (see :mod:`tui.session.alert_command`)."""
        self.alerts.add_sink(self._record_alert)
        self.alerts.add_sink(self.alert_commands)
        for controller in self.controllers:
            controller.subscribe(self.alerts)

    @property
    def started(self) -> bool:
        """True once :meth:`start` ran (the sessions may send requests)."""
        return self._ready.is_set()

    def controller(self, name: str) -> SessionController:
        """The controller of the session called ``name`` (KeyError when there is none)."""
        for controller in self.controllers:
            if controller.name == name:
                return controller
        raise KeyError(name)

    async def open_store(self, path: Path, retention: StoreConfig | None = None) -> Store:
        """Open the transcript database as a writer, keeping what ``retention`` (the
        ``[store]`` settings; None: the defaults) says (StoreError, fit to show, when it
        cannot be opened: the face decides whether the sessions go on without it)."""
        from tui.store import Store

        store = await Store.open(path, retention=retention)
        store.on_error = lambda message: self._store_error("store", message)
        self.use_store(store)
        return store

    def serve_metrics(self, addr: str) -> MetricsServer:
        """Serve ``/metrics`` for Prometheus on ``addr`` (``host:port``) until :meth:`close`:
        every finished run and alert of every session (see :mod:`tui.session.prometheus`).
        Call before :meth:`start`; ValueError for a bad address, MetricsServerError (a
        sentence) when it cannot listen."""
        from tui.session.prometheus import MetricsExporter
        from tui.session.prometheus_http import serve_metrics

        exporter = MetricsExporter()
        server = serve_metrics(addr, exporter.registry)
        exporter.follow(self)
        self.alerts.add_sink(exporter.observe_alert)
        self.metrics_server = server
        return server

    def use_store(self, store: RunRecorder | None) -> None:
        """Record every run into ``store`` (tests pass their own recorder)."""
        self.store = store
        for controller in self.controllers:
            controller.store = store

    async def start(self) -> None:
        """Start the simulator if a session needs it, build the HTTP client, then let the
        sessions run. Never raises: a simulator that cannot start fails only its sessions
        (with :attr:`sim_error` as the reason)."""
        try:
            if any(s.is_simulated for s in self.sessions):
                try:
                    # the start waits for the child to listen: keep that off the loop
                    self.sim_url = await asyncio.to_thread(self._simulator)
                except Exception as exc:
                    self.sim_error = f"the built-in simulator did not start: {exc}"
                    log.warning("%s", self.sim_error)
            if self.client is None:
                from tui.stream.transport import make_client

                # the simulator listens on loopback: never reached through an env proxy
                origins = [] if self.sim_url is None else [self.sim_url.split("/v1", 1)[0]]
                self.client = make_client(direct_origins=origins)
            if self.engine is not None:
                await self.engine.warm_up()
            for controller in self.controllers:
                controller.client = self.client
        finally:  # never leave the sessions waiting for a start that will not come
            self._ready.set()

    async def _base_url(self, session: SessionConfig) -> str:
        if not session.is_simulated:
            return session.base_url
        if self.sim_url is None:
            raise RuntimeError(self.sim_error or "the built-in simulator is not running")
        return self.sim_url

    def _warn(self, message: str) -> None:
        if self.on_warning is None:
            log.warning("%s", message)
            return
        try:
            self.on_warning(message)
        except Exception:
            log.exception("the warning handler failed on: %s", message)

    def _record_alert(self, alert: Alert) -> None:
        """The store's alert sink (a recorder that keeps no alerts is skipped)."""
        store = self.store
        if not isinstance(store, AlertRecorder):
            return
        try:
            store.record_alert(
                session=alert.session,
                run_id=alert.run_id,
                metric=alert.metric,
                value=alert.value,
                threshold=alert.threshold,
                message=alert.message,
                at=alert.at,
            )
        except Exception as exc:
            self._store_error(alert.session, exc)

    def _store_error(self, where: str, problem: BaseException | str) -> None:
        if self.on_store_error is not None:
            exc = problem if isinstance(problem, BaseException) else RuntimeError(problem)
            self.on_store_error(where, exc)
        else:
            log.warning("store error (%s): %s", where, problem)

    # -- ending ----

    @property
    def live(self) -> list[SessionController]:
        """The controllers with a run (or a repeat schedule) in progress."""
        return [c for c in self.controllers if c.running]

    def cancel_all(self) -> None:
        """Cancel every run gracefully and stop every repeat schedule."""
        for controller in self.controllers:
            controller.cancel()

    async def wait_idle(self, limit_s: float | None = None) -> bool:
        """Until no session is running (True), or ``limit_s`` seconds passed (False)."""
        waits = [asyncio.ensure_future(c.wait()) for c in self.controllers if c.running]
        if not waits:
            return True
        _, pending = await asyncio.wait(waits, timeout=limit_s)
        for task in pending:
            task.cancel()
        return not pending

    async def abort_all(self) -> None:
        """Stop every run at once (each still records ``Finished(cancelled)``)."""
        await asyncio.gather(*(c.abort() for c in self.controllers))

    async def close(self, grace_s: float = 2.0, alert_wait_s: float = ALERT_COMMAND_WAIT_S) -> None:
        """End every run (gracefully, then at once after ``grace_s``), deliver the queued
        alerts (the store and every sink get them), wait up to ``alert_wait_s`` for running
        ``on_alert`` commands and kill the rest, then write and close the store and close the
        HTTP client. Store errors are reported, never raised."""
        self.cancel_all()
        if not await self.wait_idle(grace_s):
            await self.abort_all()
        await self.alerts.drain()
        await self.alert_commands.close(alert_wait_s)
        store, self.store = self.store, None
        if store is not None:
            try:
                await store.flush()
                await store.close()
            except Exception as exc:
                self._store_error("close", exc)
        server, self.metrics_server = self.metrics_server, None
        if server is not None:  # after the last run and alert: a last scrape sees them all
            await server.aclose()
        client, self.client = self.client, None
        if client is not None and self._own_client:
            with contextlib.suppress(Exception):
                if self.engine is not None and self.engine.running:
                    await self.engine.call(client.aclose())  # its connections live there
                else:
                    await client.aclose()
        if self.engine is not None:
            self.engine.close()
