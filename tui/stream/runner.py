"""StreamRun: one run = one request and its stream, with retries before the first byte,
resume / restart after a drop or a stall, and cancel.

A producer task does all the I/O and makes *batches* of events (one per network chunk). A
consumer either iterates the run (events one by one, or :meth:`StreamRun.batches`), which
puts the batches on a queue between the two tasks, or hands the run a sink
(:meth:`StreamRun.stream_to`), which the producer calls with each batch as it is made: no
queue and no second task woken per read. Either way the per-event overhead stays low and
:meth:`StreamRun.cancel` interrupts any await.
This module is the run's lifecycle: the producer, the attempt loop, how the run finishes,
cancel and the cancel of a background response on the server. One attempt (its request,
deadlines, read loop and replay check) is :mod:`tui.stream.attempt`'s; what each attempt
sends and how a failed one continues is :mod:`tui.stream.request`'s.

Policy (``session.reconnect``):

- Before a stream started: connect errors, timeouts, 408/409/429/5xx are retried with
  exponential backoff and jitter, or after the server's ``retry-after-ms`` / ``Retry-After``
  (> 120 s: no retry); ``x-should-retry`` is obeyed; 400/401/403/404/422 never are.
- Deadlines of tokentop's own (one ``asyncio.timeout`` per attempt, re-armed as bytes
  arrive, so a transport that never returns is still cut): the complete response headers
  within ``connect_timeout_s + idle_timeout_s`` of the request (kind ``timeout``); then no
  byte for ``idle_timeout_s`` is a stall (keep-alive comments count; the watchdog re-arms at
  most every quarter of it, so it cuts between 1 and 1.25 times the limit; the transport's
  read timeout holds until the headers, and is switched off for the body where it would
  re-arm a timer on every network read); no content (text, reasoning, tool call) within
  ``first_token_timeout_s`` of the request is a stall too (``timeout`` before the headers);
  ``max_duration_s`` bounds the whole run, retries and waits included (kind ``timeout``,
  never retried). An SSE event past ``tui.stream.sse.MAX_EVENT_BYTES`` fails the run.
- After a drop (the connection broke), a stall or a truncation (clean EOF without
  ``[DONE]`` / terminal event), ``on_drop`` decides. ``resume``: a background Responses run
  continues with ``GET /responses/{id}?stream=true&starting_after=<seq>`` (duplicates dropped
  by sequence number); a stream that carried SSE ``id:`` is re-sent with ``Last-Event-ID``
  (after the stream's ``retry:`` time, if it gave one; a server that replays the stream
  instead is caught by ``tui.stream.request.ReplayCheck`` and the run restarts); anything
  else falls back to
  ``restart``: a new request whose output replaces the partial one
  (``Retrying(mode="restart")``). ``fail`` ends the run.
- Every retry counts against ``max_retries``; then the run fails with
  ``gave up after N retries: <cause>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx

from tui.config import SessionConfig
from tui.stream.adapter import Outcome
from tui.stream.attempt import IDLE_SLACK, run_attempt
from tui.stream.events import Finished, FinishReason, Notice, Retrying, RunError, RunEvent
from tui.stream.history import Conversation
from tui.stream.request import HISTORY_FALLBACK, Continuation, RequestPlan

__all__ = ["CANCEL_TIMEOUT_S", "HISTORY_FALLBACK", "IDLE_SLACK", "StreamRun"]

CANCEL_TIMEOUT_S = 2.0
"""Time allowed for ``POST /responses/{id}/cancel`` when a background run is cancelled."""

"""The code of the :class:`Notice` that says a refused ``previous_response_id`` was replaced
by the turns as input items: the session sends items from then on."""


class StreamRun:
    """One run of ``session``: ``async for event in run`` yields :data:`RunEvent` objects and
    ends with exactly one :class:`Finished`. :meth:`cancel` may be called from any task."""

    def __init__(
        self,
        session: SessionConfig,
        *,
        client: httpx.AsyncClient,
        base_url: str,
        prompt: str | None = None,
        history: Conversation | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.session = session
        self._client = client
        self.prompt = session.prompt if prompt is None else prompt
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._plan = RequestPlan(session, base_url, self.prompt, history)
        self._adapter = self._plan.adapter
        self._queue: asyncio.Queue[list[RunEvent]] = asyncio.Queue()
        self._emit: Callable[[list[RunEvent]], None] = self._queue.put_nowait
        """Where the producer's batches go: the queue, or the sink of :meth:`stream_to`."""
        self._task: asyncio.Task[None] | None = None
        self._batch: list[RunEvent] = []
        self._pos = 0
        self._ended = False
        self._cancelled = False
        self._finished_put = False
        self._t0 = 0.0

    # -- public API --------------------------------------------------------------------
    def __aiter__(self) -> StreamRun:
        return self

    async def __anext__(self) -> RunEvent:
        pos = self._pos
        batch = self._batch
        if pos >= len(batch):
            if self._ended:
                raise StopAsyncIteration
            batch = self._batch = await self._next_batch()
            pos = 0
        event = batch[pos]
        self._pos = pos + 1
        if type(event) is Finished:
            self._ended = True
        return event

    async def batches(self) -> AsyncIterator[list[RunEvent]]:
        """The events in the batches they arrived in (one per network chunk); the last
        batch ends with the :class:`Finished`. Do not mix with plain iteration."""
        while not self._ended:
            batch = await self._next_batch()
            if type(batch[-1]) is Finished:
                self._ended = True
            yield batch

    async def stream_to(self, sink: Callable[[list[RunEvent]], None]) -> None:
        """Run to the end, calling ``sink`` with each batch as it is made (in the producer's
        task, in order; the last batch ends with the :class:`Finished`), and return when the
        run has ended. Cancelling the caller cancels the run, whose ``Finished(cancelled)``
        still reaches ``sink`` before the cancellation reaches the caller. Use one way of
        consuming a run: this, or iteration."""
        if self._task is not None:
            raise RuntimeError("the run is already being consumed")
        self._emit = sink
        task = self._start()
        try:
            # shielded: a cancelled caller stops the run below (gracefully) and waits for
            # its end, instead of a cancellation the producer absorbs reaching nobody
            await asyncio.shield(task)
        except asyncio.CancelledError:
            self.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise

    def cancel(self) -> None:
        """End the run with ``Finished(status="cancelled")`` (a background Responses run is
        also cancelled on the server). Safe to call at any time, more than once."""
        if self._cancelled:
            return
        self._cancelled = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()

    async def aclose(self) -> None:
        """Stop the run without waiting to consume its events (for consumers that leave
        early); the producer task is cancelled and awaited."""
        self.cancel()
        task = self._task
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- producer ----------------------------------------------------------------------
    def _start(self) -> asyncio.Task[None]:
        self._t0 = self._clock()
        task = self._task = asyncio.get_running_loop().create_task(self._produce())
        task.add_done_callback(self._produced)
        return task

    async def _next_batch(self) -> list[RunEvent]:
        if self._task is None:
            self._start()
        try:
            return await self._queue.get()
        except asyncio.CancelledError:
            self.cancel()  # nobody is listening any more: stop the stream too
            raise

    def _now(self) -> float:
        return self._clock() - self._t0

    def _put(self, batch: list[RunEvent]) -> None:
        self._emit(batch)

    def _produced(self, task: asyncio.Task[None]) -> None:
        """The producer ended: if it never put its Finished (a task cancelled before its
        first step never runs its body, so none of its handlers does), end the run here, so
        that the consumer is never left waiting for a batch that cannot come."""
        if not self._finished_put:
            self._put([Finished(self._now(), "cancelled", "cancelled", None, None)])

    async def _produce(self) -> None:
        try:
            if self._cancelled:
                raise asyncio.CancelledError
            limit = self.session.reconnect.max_duration_s
            if limit is None:
                finished = await self._run()
            else:
                try:
                    async with asyncio.timeout(limit):
                        finished = await self._run()
                except TimeoutError:
                    finished = await self._over_time(limit)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            finished = await self._cancelled_finish()
        except Exception as exc:  # an engine bug must still end the run with Finished
            error = RunError("protocol", f"tokentop internal error: {exc!r}")
            finished = Finished(self._now(), "failed", "error", None, error)
        self._put([finished])
        self._finished_put = True

    async def _cancel_on_server(self) -> None:
        url = self._plan.cancel_url()
        if url is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self._client.post(url, headers=self._plan.headers(json=False)),
                    CANCEL_TIMEOUT_S,
                )

    async def _cancelled_finish(self) -> Finished:
        await self._cancel_on_server()
        return Finished(self._now(), "cancelled", "cancelled", None, None)

    async def _over_time(self, limit: float) -> Finished:
        """The run passed ``max_duration_s``: it fails (a background response is cancelled
        on the server, as nobody will read it)."""
        await self._cancel_on_server()
        error = RunError("timeout", f"the run took longer than max_duration_s = {limit:g} s")
        reason: FinishReason = "truncated" if self._adapter.content_seen else "error"
        return Finished(self._now(), "failed", reason, None, error)

    async def _run(self) -> Finished:
        policy = self.session.reconnect
        plan, adapter = self._plan, self._adapter
        attempt = retries = 0
        how: Continuation = "create"
        restart = True
        while True:
            attempt += 1
            adapter.begin_attempt(attempt, restart=restart)
            result = await run_attempt(
                plan,
                self._client,
                attempt,
                how,
                clock=self._clock,
                t0=self._t0,
                put=self._emit,
            )
            if isinstance(result, Outcome):
                return self._finish(result)
            fallback = plan.history_fallback(result)
            if fallback is not None:  # sent again at once, as items: not a retry
                self._put([Notice(self._now(), HISTORY_FALLBACK, fallback)])
                continue
            step = plan.after_failure(result, how)
            if step is None:
                return self._fail(result.error)
            how, restart = step.how, step.restart
            if plan.notice is not None:
                self._put([Notice(self._now(), "resume", plan.notice)])
            if retries >= policy.max_retries:
                return self._fail(result.error, gave_up=retries)
            retries += 1
            delay = plan.retry_delay(result, how, retries, self._rng)
            self._put(
                [Retrying(self._now(), retries, policy.max_retries, delay, step.mode, result.error)]
            )
            await self._sleep(delay)

    def _finish(self, outcome: Outcome) -> Finished:
        t = self._now()
        if outcome.reason == "stop" and not self._adapter.content_seen:
            self._put(
                [
                    Notice(
                        t,
                        "empty_stop",
                        "the server said stop but sent no content (a masked error?)",
                    )
                ]
            )
        return Finished(t, outcome.status, outcome.reason, outcome.raw_reason, outcome.error)

    def _fail(self, error: RunError, *, gave_up: int = 0) -> Finished:
        if gave_up:
            retries = "retry" if gave_up == 1 else "retries"
            error = RunError(
                error.kind,
                f"gave up after {gave_up} {retries}: {error.message}",
                error.http_status,
                error.request_id,
                error.code,
            )
        reason: FinishReason = (
            "truncated" if error.kind in ("dropped", "stalled", "truncated") else "error"
        )
        return Finished(self._now(), "failed", reason, None, error)
