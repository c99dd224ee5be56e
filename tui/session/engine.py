"""Engine: the network side of every run on an event loop of its own, in its own thread.

A run's events carry ``t``, read from the clock when their bytes were read. On the loop of
a busy face (the dashboard lays out and paints between reads) a read waits for the face's
work, so times would measure the face, not the server: chunks would seem to arrive late and
in bursts. On the engine's loop the reads run as soon as their bytes are there, so TTFT and
inter-token times are the server's. The thread still waits for the GIL at each wake-up, up
to one interpreter switch interval: the engine lowers that to :data:`SWITCH_INTERVAL_S` for
the process, so the wait stays far below the times measured.

Batches go to the face's loop through one :class:`_Relay` per face loop, shared by every
run streaming to it: whatever arrived since the face last looked, of all the runs, is handed
over in one wake-up of the face (each run's events in one call, in order), however busy the
face is, and the face is woken at most once per :data:`RELAY_INTERVAL_S`: with many runs,
chunks arrive far more often than that, and waking a thread per chunk (a write to the
face's self-pipe, a GIL hand-over, a turn of its loop) cost more than reading the chunk.
The events' times are taken on the engine when the bytes are read, so the hand-over's
pace changes no measured time; the producer calls the relay directly (no queue, no task
woken per read: :meth:`~tui.stream.runner.StreamRun.stream_to`).

The engine's loop can be saturated too (too many runs for one core): one
:class:`~tui.session.loop_lag.LagProbe` on it measures its own lateness while any run is
streaming (an idle engine never wakes for it), and
:meth:`Engine.stream` hands each run its lag (``on_lag``) just before the run's last batch,
so a run whose times may be tokentop's own says so (``client_bound``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from tui.session.loop_lag import ClientLag, LagProbe
from tui.stream.events import Finished

if TYPE_CHECKING:
    from tui.stream.events import RunEvent
    from tui.stream.runner import StreamRun

T = TypeVar("T")

log = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.001
"""The interpreter's switch interval while an engine runs (Python's default is 5 ms)."""

RELAY_INTERVAL_S = 0.005
"""The face's loop is woken for the runs' events at most this often (200 Hz): far below
what a view shows (a frame is 16-50 ms), far above the rate of wake-ups that cost."""

PUMP_END_WAIT_S = 2.0
"""How long a cancelled :meth:`Engine.stream` waits for the run's last events from the engine."""

Deliver = Callable[[Sequence["RunEvent"]], None]


class _Channel:
    """One run's events on their way to the face (see :class:`_Relay`)."""

    __slots__ = ("deliver", "pending")

    def __init__(self, deliver: Deliver) -> None:
        self.deliver = deliver
        self.pending: list[RunEvent] = []


class _Relay:
    """Events from the engine thread to one face's loop, for every run streaming to it: at
    most one wake-up of the face pending, and at most one every ``interval`` seconds."""

    __slots__ = ("_dirty", "_engine", "_face", "_interval", "_lock", "_next_wake", "_scheduled")

    def __init__(
        self, engine: asyncio.AbstractEventLoop, face: asyncio.AbstractEventLoop, interval: float
    ) -> None:
        self._engine = engine
        self._face = face
        self._interval = interval
        self._lock = threading.Lock()
        self._dirty: list[_Channel] = []
        """Channels with pending events, in the order their first pending batch came."""
        self._scheduled = False
        self._next_wake = 0.0
        """Engine loop time before which the face is not woken again."""

    def push(self, channel: _Channel, batch: Sequence[RunEvent]) -> None:
        """Engine thread: queue ``batch`` of ``channel``'s run; wake the face's loop unless a
        wake-up is pending (now, or once ``interval`` has passed since the last one)."""
        with self._lock:
            if not channel.pending:
                self._dirty.append(channel)
            channel.pending.extend(batch)
            if self._scheduled:
                return
            self._scheduled = True
        engine = self._engine
        if engine.time() >= self._next_wake:
            self._wake()
        else:
            engine.call_at(self._next_wake, self._wake)

    def _wake(self) -> None:
        """Engine thread: tell the face's loop to drain."""
        self._next_wake = self._engine.time() + self._interval
        with contextlib.suppress(RuntimeError):  # the face's loop is gone: nobody to tell
            self._face.call_soon_threadsafe(self.drain)

    def drain(self) -> None:
        """Face's loop: hand over everything queued so far, run by run."""
        with self._lock:
            dirty, self._dirty = self._dirty, []
            self._scheduled = False
            taken = [(c.deliver, c.pending) for c in dirty if c.pending]
            for channel in dirty:
                channel.pending = []
        for deliver, events in taken:
            try:
                deliver(events)
            except Exception:  # one run's failure must not keep the others' events back
                log.exception("delivering a run's events failed")

    def drain_channel(self, channel: _Channel) -> None:
        """Face's loop: hand over everything of ``channel``'s run queued so far."""
        with self._lock:
            events, channel.pending = channel.pending, []
        if events:
            channel.deliver(events)


class Engine:
    """One thread with its own event loop, where every run's requests and reads happen."""

    def __init__(
        self, name: str = "tokentop-engine", *, relay_interval: float = RELAY_INTERVAL_S
    ) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._probe: LagProbe | None = None
        self._streams = 0  # runs being pumped (on the engine's loop): the probe runs meanwhile
        self._relay_interval = relay_interval
        self._relays: dict[asyncio.AbstractEventLoop, _Relay] = {}
        """One relay per face loop (in practice one), made on its first stream."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The engine's event loop (started on first use)."""
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            self._probe = LagProbe(loop)

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            if sys.getswitchinterval() > SWITCH_INTERVAL_S:
                sys.setswitchinterval(SWITCH_INTERVAL_S)
            self._thread = threading.Thread(target=serve, name=self._name, daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop
        return self._loop

    @property
    def probe(self) -> LagProbe | None:
        """The engine loop's lag probe (None before the loop started)."""
        return self._probe

    @property
    def running(self) -> bool:
        """True while the engine's thread runs."""
        return self._thread is not None and self._thread.is_alive()

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the engine's loop and wait for it here; cancelling the caller
        cancels it there."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wrap_future(future)

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` on the engine's loop (from any thread)."""
        with contextlib.suppress(RuntimeError):  # the engine is closed: nothing to reach
            self.loop.call_soon_threadsafe(callback)

    async def warm_up(self) -> None:
        """Do once, before the first request, what a first request would otherwise do on
        the clock: start the loop's resolver thread and load the codecs and modules the
        reads use, so the first run's TTFT measures the server, not tokentop's start."""
        import tui.stream.runner  # noqa: F401 - the adapters and the SSE decoder with it

        async def resolver() -> None:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(OSError):
                await loop.getaddrinfo("127.0.0.1", 0)
            "localhost".encode("idna")

        await self.call(resolver())

    async def stream(
        self, run: StreamRun, deliver: Deliver, on_lag: Callable[[ClientLag], None] | None = None
    ) -> None:
        """Consume ``run`` on the engine's loop; ``deliver`` gets its events on this loop,
        in order, every one of them before this returns (also when it is cancelled).
        ``on_lag`` gets the engine loop's lag over the run, on the engine's thread, just
        before the batch that ends with the run's :class:`Finished` is handed over."""
        face = asyncio.get_running_loop()
        relay = self._relays.get(face)
        if relay is None:
            relay = self._relays[face] = _Relay(self.loop, face, self._relay_interval)
        channel = _Channel(deliver)
        push = relay.push
        ended = asyncio.Event()

        async def pump() -> None:
            probe = self._probe
            mark = probe.mark() if probe is not None else 0
            self._streams += 1
            if probe is not None:
                probe.start()  # a no-op while another run keeps it going

            def sink(batch: list[RunEvent]) -> None:
                if (
                    on_lag is not None
                    and probe is not None
                    and batch
                    and type(batch[-1]) is Finished
                ):
                    on_lag(probe.since(mark))
                push(channel, batch)

            try:
                await run.stream_to(sink)
            finally:
                self._streams -= 1
                if probe is not None and not self._streams:
                    probe.stop()  # an idle engine does not wake up for the probe
                try:
                    await run.aclose()  # a no-op after Finished; stops the producer otherwise
                finally:
                    with contextlib.suppress(RuntimeError):  # the face's loop is gone
                        face.call_soon_threadsafe(ended.set)

        try:
            await self.call(pump())
        except asyncio.CancelledError:
            # cancelling the caller cancels the pump over there, but it ends a moment later,
            # and its last batch (the run's own Finished) is still on its way: wait for it, so
            # that it is delivered here and not after the caller has moved on
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(ended.wait(), PUMP_END_WAIT_S)
            raise
        finally:
            relay.drain_channel(channel)

    def close(self) -> None:
        """Stop the loop and its thread (what still runs there is abandoned)."""
        loop, thread, probe = self._loop, self._thread, self._probe
        self._loop = self._thread = self._probe = None
        self._relays.clear()
        if loop is None or thread is None:
            return
        if probe is not None:
            loop.call_soon_threadsafe(probe.stop)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()
