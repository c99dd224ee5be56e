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

Sessions may come and go while it runs (:meth:`add_session`, :meth:`remove_session`: the
dashboard's own sessions): a new controller is wired as the first ones are (store, client,
alerts, ``/metrics``), and a ``sim`` session starts the simulator on its first request when
no session needed it before. :meth:`list_models` asks a session's server for its models
with the runs' client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tui.config import AlertRules, SessionConfig, StoreConfig
from tui.session.alert_command import AlertCommands
from tui.session.alerts import Alert, AlertMonitor
from tui.session.controller import SessionController
from tui.session.engine import Engine
from tui.session.recorder import AlertRecorder
from tui.session.run import StoreErrorHandler

if TYPE_CHECKING:
    import httpx

    from tui.session.prometheus import MetricsExporter
    from tui.session.prometheus_http import MetricsServer
    from tui.session.recorder import RunRecorder
    from tui.store import Store
    from tui.stream.models import ModelList

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
        self._sim_started = asyncio.Lock()
        self._sim_client: httpx.AsyncClient | None = None
        """The simulator's own client, when it started after a proxied client was built."""
        self._own_client = client is None
        self._clock = clock
        # the runs' network side gets a thread of its own (see engine.py), unless the caller
        # brings a client, which belongs to the caller's loop
        self.engine = Engine() if (client is None if threaded is None else threaded) else None
        self._ready = asyncio.Event()
        self._rules: dict[str, AlertRules] = {}
        self._followers: dict[str, list[Callable[[], None]]] = {}
        """Per session, what unsubscribes the runtime's own listeners (alerts, /metrics)."""
        self._leaving: list[SessionController] = []
        """Removed controllers whose last run is still ending (``close`` waits for them)."""
        self._exporter: MetricsExporter | None = None
        self.metrics_server: MetricsServer | None = None
        """The ``/metrics`` endpoint (:meth:`serve_metrics`), when asked for."""
        self.alerts = AlertMonitor()
        """Every session's alerts (see :mod:`tui.session.alerts`): views read it, faces add
        sinks."""
        self.alert_commands = AlertCommands(self._rules.get, self._warn)
        """Runs each session's ``on_alert`` command (see :mod:`tui.session.alert_command`)."""
        self.alerts.add_sink(self._record_alert)
        self.alerts.add_sink(self.alert_commands)
        self.controllers: list[SessionController] = []
        """One controller per session, in order (changed in place: views may hold the list)."""
        for session in self.sessions:
            self._make(session)

    def _make(self, session: SessionConfig) -> SessionController:
        """The controller of ``session``, wired as every controller is, appended."""
        controller = SessionController(
            session,
            store=self.store,
            ready=self._ready.wait,
            resolve_base_url=self._base_url,
            clock=self._clock,
            on_store_error=self._store_error,
            engine=self.engine,
        )
        if self.started:
            controller.client = self._client_for(session)
        self._rules[session.name] = session.alerts
        follow = [controller.subscribe(self.alerts)]
        if self._exporter is not None:
            follow.append(self._exporter.subscribe(controller))
        self._followers[session.name] = follow
        self.controllers.append(controller)
        return controller

    @property
    def started(self) -> bool:
        """True once :meth:`start` ran (the sessions may send requests)."""
        return self._ready.is_set()

    def add_session(self, session: SessionConfig) -> SessionController:
        """Add a session (before or while the runtime runs) and return its controller, which
        records into the store, is followed by :attr:`alerts` and ``/metrics`` and waits
        for :meth:`start` as the first ones do; the caller starts its runs. ValueError (a
        sentence) when a session has that name already."""
        if any(c.name == session.name for c in self.controllers):
            raise ValueError(f"there is a session called {session.name!r} already")
        self.sessions = (*self.sessions, session)
        return self._make(session)

    async def remove_session(self, name: str, grace_s: float = 2.0) -> SessionController:
        """Remove the session called ``name`` (KeyError when there is none) and return its
        controller: its run is cancelled (gracefully, then at once after ``grace_s``; it is
        recorded as cancelled), the runtime stops following it and forgets its alerts. Its
        stored runs stay in the store."""
        controller = self.controller(name)
        self.controllers.remove(controller)
        self.sessions = tuple(s for s in self.sessions if s.name != name)
        self._leaving.append(controller)
        try:
            controller.cancel()
            if controller.running:
                done, _ = await asyncio.wait(
                    [asyncio.ensure_future(controller.wait())], timeout=grace_s
                )
                if not done:
                    await controller.abort()
        finally:
            self._leaving.remove(controller)
            for stop in self._followers.pop(name, []):
                stop()
            self._rules.pop(name, None)
            self.alerts.acknowledge(name)
        return controller

    async def list_models(
        self, session: SessionConfig, timeout_s: float | None = None
    ) -> ModelList:
        """The models ``session``'s server lists (``GET /models``; the simulator's, started
        if need be, for ``sim``), asked with the runs' client, key and redaction (see
        :func:`tui.stream.models.list_models`). Never raises: a failure is its ``error``."""
        from tui.stream.models import MODELS_TIMEOUT_S, ModelList, list_models

        limit = MODELS_TIMEOUT_S if timeout_s is None else timeout_s
        try:
            base_url = await self._base_url(session)
        except Exception as exc:
            return ModelList(error=str(exc))
        client = self._client_for(session) if self.started else None
        if client is None:  # not started yet: a client for this one request
            from tui.stream.transport import make_client

            origins = [] if self.sim_url is None else [_origin(self.sim_url)]
            async with make_client(direct_origins=origins) as own:
                return await list_models(own, session, base_url, timeout_s=limit)
        asked = list_models(client, session, base_url, timeout_s=limit)
        if self.engine is not None and self.engine.running:
            return await self.engine.call(asked)  # the client's connections live there
        return await asked

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
        # follows the controllers there are now; later ones are subscribed as they come (a
        # removed first one stays subscribed, but has no runs any more)
        exporter.follow(self)
        self._exporter = exporter
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
                await self._start_simulator()
            if self.client is None:
                from tui.stream.transport import make_client

                # the simulator listens on loopback: never reached through an env proxy
                origins = [] if self.sim_url is None else [_origin(self.sim_url)]
                self.client = make_client(direct_origins=origins)
            if self.engine is not None:
                await self.engine.warm_up()
            for controller in self.controllers:
                controller.client = self._client_for(controller.session)
        finally:  # never leave the sessions waiting for a start that will not come
            self._ready.set()

    async def _start_simulator(self) -> None:
        """Start the shared simulator once (a failure is kept in :attr:`sim_error`)."""
        async with self._sim_started:
            if self.sim_url is not None or self.sim_error is not None:
                return
            try:
                # the start waits for the child to listen: keep that off the loop
                self.sim_url = await asyncio.to_thread(self._simulator)
            except Exception as exc:
                self.sim_error = f"the built-in simulator did not start: {exc}"
                log.warning("%s", self.sim_error)
                return
            if self.client is not None and self._own_client:
                from tui.stream.transport import http_backend, make_client

                # a client built before the simulator was needed may use an env proxy: the
                # simulator gets a client that never does
                if http_backend() == "httpx":
                    self._sim_client = make_client(direct_origins=[_origin(self.sim_url)])
                    for controller in self.controllers:
                        controller.client = self._client_for(controller.session)

    def _client_for(self, session: SessionConfig) -> httpx.AsyncClient | None:
        if session.is_simulated and self._sim_client is not None:
            return self._sim_client
        return self.client

    async def _base_url(self, session: SessionConfig) -> str:
        if not session.is_simulated:
            return session.base_url
        if self.sim_url is None:  # a session added later may be the first to need it
            await self._start_simulator()
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
        every = [*self.controllers, *self._leaving]
        waits = [asyncio.ensure_future(c.wait()) for c in every if c.running]
        if not waits:
            return True
        _, pending = await asyncio.wait(waits, timeout=limit_s)
        for task in pending:
            task.cancel()
        return not pending

    async def abort_all(self) -> None:
        """Stop every run at once (each still records ``Finished(cancelled)``)."""
        await asyncio.gather(*(c.abort() for c in (*self.controllers, *self._leaving)))

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
        owned = [client] if client is not None and self._own_client else []
        sim_client, self._sim_client = self._sim_client, None
        for each in (*owned, *([sim_client] if sim_client is not None else [])):
            with contextlib.suppress(Exception):
                if self.engine is not None and self.engine.running:
                    await self.engine.call(each.aclose())  # its connections live there
                else:
                    await each.aclose()
        if self.engine is not None:
            self.engine.close()


def _origin(base_url: str) -> str:
    """``http://127.0.0.1:PORT`` of the simulator's base URL."""
    return base_url.split("/v1", 1)[0]
