"""SessionController: one session's conversations and runs, for every face (dashboard,
``tokentop run``). Every run is a turn of the session's current conversation
(:class:`~tui.session.conversation.ConversationState`): :meth:`SessionController.start`
begins a new conversation (a scripted session's turns one after another, a failed turn
stopping the script there; with ``repeat``, the whole conversation again, each time a new
one), :meth:`~SessionController.send` adds a follow-up turn,
:meth:`~SessionController.edit_last` sends the last turn again with a new prompt and
:meth:`~SessionController.restart` the current turn as it was (the old try stays in the
store as a branch of the same turn). Each turn carries the kept turns before it (the stream
layer builds the ``messages`` or the Responses input from them) and is one
:class:`~tui.stream.runner.StreamRun`, run in an asyncio task and folded by the
:class:`~tui.session.pipeline.RunPipeline` (one accumulator per run, the store's too).

Runs outlive and precede any view: a listener may subscribe mid-run and catch up from the
run's accumulator, and ``controller.conversation`` is a read-only view of the turns. Within a
session a new start first cancels the old run *gracefully* (``StreamRun.cancel()`` ends it
with ``Finished(cancelled)``, which reaches the store) and waits for it. A run's first batch
reaches the store and the listeners only after the store recorded the run's start (a compare
round records its membership then). Whatever fails below (an engine bug, a simulator that
cannot start, the store, a listener) ends at most the run concerned, as a failed run that
says why; it never escapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, TypeAlias

from tui.config import SessionConfig
from tui.session.conversation import ConversationState, check_prompt, new_conversation_id
from tui.session.conversation_view import (
    ConversationOutcome,
    ConversationView,
    TurnRefused,
    conversation_view,
    send_refusal,
    summarize,
)
from tui.session.pipeline import RunPipeline
from tui.session.recording import record_start
from tui.session.run import BaseUrlResolver, LoopControl, SessionRun, StoreErrorHandler
from tui.stream.events import Finished, RunError
from tui.vocab import FINAL_STATES, FinishReason, RunStatus

if TYPE_CHECKING:  # imported when a run starts: a dashboard's first frame does not wait
    import httpx

    from tui.session.engine import Engine
    from tui.session.recorder import RunRecorder

log = logging.getLogger(__name__)

ConversationCallback: TypeAlias = Callable[["SessionController", ConversationOutcome], None]
"""Told each series of turns that ended (see :meth:`SessionController.on_conversation`)."""

Series: TypeAlias = Callable[[LoopControl], Awaitable[object]]


class SessionController(RunPipeline):
    """One session's conversations and runs: :meth:`start`, :meth:`send`,
    :meth:`edit_last`, :meth:`restart`, :meth:`new_conversation`, :meth:`cancel`."""

    def __init__(
        self,
        session: SessionConfig,
        *,
        client: httpx.AsyncClient | None = None,
        store: RunRecorder | None = None,
        ready: Callable[[], Awaitable[object]] | None = None,
        resolve_base_url: BaseUrlResolver | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_store_error: StoreErrorHandler | None = None,
        engine: Engine | None = None,
    ) -> None:
        super().__init__(session, store=store, clock=clock, on_store_error=on_store_error)
        self.script: tuple[str, ...] = session.script
        """The prompts of a new conversation's turns (``start(prompt)`` makes it one)."""
        self.prompt = self.script[0]
        """The first prompt of a new conversation (``start(prompt)`` changes it)."""
        self.client = client
        """The HTTP client of the runs (a runtime sets it once it is built)."""
        self._ready = ready
        self._resolve_base_url = resolve_base_url
        self.engine = engine
        """Where the runs' network side runs (None: on this loop)."""
        self._task: asyncio.Task[None] | None = None
        self._control = LoopControl()
        self.conv = ConversationState(
            session.api,
            mode=session.history,
            messages=[m.as_chat() for m in session.messages],
            server_keeps=session.server_keeps,
            plan=self.script,
        )
        """The current conversation (the faces read :attr:`conversation`)."""
        self._on_conversation: tuple[ConversationCallback, ...] = ()
        self._view: ConversationView | None = None
        self._view_key: tuple[int, bool] = (-1, False)

    @property
    def running(self) -> bool:
        """True while a run (a script, a repeat schedule) is active."""
        return self._task is not None and not self._task.done()

    @property
    def conversation(self) -> ConversationView:
        """The current conversation, read-only (cached until the next batch or change)."""
        key = (self.version, self.running)
        if self._view is None or key != self._view_key:
            self._view = conversation_view(self.conv, running=key[1])
            self._view_key = key
        return self._view

    def on_conversation(self, callback: ConversationCallback) -> Callable[[], None]:
        """Call ``callback(controller, summary)`` whenever a series of turns ends (a started
        conversation, a follow-up, an edited or restarted turn, with what followed it of a
        script): the conversation as it stands then. Returns the function that stops it."""
        self._on_conversation = (*self._on_conversation, callback)

        def stop() -> None:
            self._on_conversation = tuple(c for c in self._on_conversation if c is not callback)

        return stop

    # -- lifecycle ----

    def start(
        self,
        prompt: str | None = None,
        *,
        once: bool = False,
        run_id: str | None = None,
        broadcast_id: str | None = None,
    ) -> asyncio.Task[None]:
        """Begin a new conversation: the session's turns (``turns``, else its prompt) one
        after another, or the one turn ``prompt`` (which then replaces them for the next
        conversations too); with ``repeat``, the whole conversation again on schedule, each
        time a new one. ``once``: one conversation of one turn (its first prompt), without
        repeat, as a compare round wants. ``run_id`` names the first run; ``broadcast_id``:
        the compare broadcast that started it (its runs are stored as sent in it, linking
        it to the other sessions' conversations). A running run is cancelled first."""
        if prompt is not None:
            self.prompt = prompt
            self.script = (prompt,)
        script = self.script[:1] if once else self.script
        bid = broadcast_id
        return self._launch(partial(self._schedule, script, once, run_id, broadcast_id=bid))

    def send_refused(self) -> str | None:
        """Why :meth:`send` would be refused now (a sentence), or None."""
        return send_refusal(self.name, self.running, self.current, self.state)

    def send(self, prompt: str, *, broadcast_id: str | None = None) -> asyncio.Task[None]:
        """Send ``prompt`` as the next turn of the current conversation (turn 1 of it when
        nothing was kept yet; after a failed turn, in its place); ``broadcast_id``: the
        compare broadcast it is part of (see :meth:`start`). TurnRefused (with the reason)
        while a turn runs, ValueError for an empty prompt."""
        check_prompt(prompt)
        refused = self.send_refused()
        if refused is not None:
            raise TurnRefused(refused)
        turn = self.conv.next_turn
        prompts = self.conv.plan_turn(turn, prompt, keep_rest=False)
        return self._launch(partial(self._series, turn, prompts, broadcast_id=broadcast_id))

    def edit_last(self, prompt: str) -> asyncio.Task[None]:
        """Send the last turn again with ``prompt`` (a running one is cancelled first; the
        old try stays in the store, a branch of the same turn), then the turns of a script
        that were not sent yet. In a conversation of one turn, ``prompt`` is the next ones'
        too (a repeat schedule goes on with it). ValueError for an empty prompt."""
        check_prompt(prompt)
        turn = max(self.conv.current_turn, 1)
        prompts = self.conv.plan_turn(turn, prompt, keep_rest=True)
        if turn == 1 and len(prompts) == 1:
            self.prompt, self.script = prompt, (prompt,)
            return self._launch(partial(self._schedule, self.script, False, None, same=True))
        return self._launch(partial(self._series, turn, prompts))

    def restart(self) -> asyncio.Task[None]:
        """Run the current turn again (a running one is cancelled first; a failed one is
        retried, sent once; a kept one is sent again as a branch), then the turns of a
        script that were not sent yet. A conversation of one turn starts over instead (a new
        conversation, with its repeat schedule)."""
        conv = self.conv
        turn = conv.current_turn
        if turn <= 1 and len(conv.plan) <= 1:
            return self.start(conv.plan[0] if conv.plan else None)
        turn = max(turn, 1)
        prompts = conv.plan[turn - 1 :] or [conv.runs[-1].prompt]
        return self._launch(partial(self._series, turn, prompts))

    def new_conversation(self) -> str:
        """End the current conversation (a running turn is cancelled, gracefully) and begin
        an empty one: the next :meth:`send` is its turn 1. Returns the new id."""
        new_id = new_conversation_id()
        if self.running:
            self._launch(partial(self._fresh, new_id))
        else:
            self._fresh_now(new_id)
        return new_id

    def cancel(self) -> None:
        """End the current run (``Finished(cancelled)``) and stop any script or schedule."""
        self._control.cancel()

    async def wait(self) -> None:
        """Until the current run loop (its script and repeat schedule) has ended."""
        task = self._task
        if task is not None and not task.done():
            # asyncio.wait neither raises the task's outcome nor swallows a cancellation of
            # the caller (the task itself is not cancelled by it)
            await asyncio.wait([task])

    async def abort(self) -> None:
        """Stop at once: cancel the run loop's task (the run still records ``Finished``)."""
        self._control.cancel()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    def _launch(self, series: Series) -> asyncio.Task[None]:
        """Cancel what runs (gracefully) and run ``series`` once it has ended."""
        previous = self._task
        self._control.cancel()
        self._control = control = LoopControl(engine=self.engine)
        self._task = asyncio.create_task(
            self._run_loop(previous, control, series), name=f"stream:{self.name}"
        )
        return self._task

    async def _run_loop(
        self, previous: asyncio.Task[None] | None, control: LoopControl, series: Series
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        try:
            if not control.stop:
                await series(control)
        finally:
            # a schedule stopped between runs: the session shows how its last run ended
            last = self.current
            if self.state == "waiting" and last is not None and last.finished is not None:
                self.state = FINAL_STATES[last.finished.status]
                self.version += 1

    async def _schedule(
        self,
        script: tuple[str, ...],
        once: bool,
        run_id: str | None,
        control: LoopControl,
        *,
        same: bool = False,
        broadcast_id: str | None = None,
    ) -> None:
        """New conversations of ``script``, on the repeat schedule (``every_s`` counts from
        one conversation's first turn to the next one's); ``same``: the first one is the
        current conversation, its turn 1 sent again. The first one's runs are recorded as
        sent in ``broadcast_id``."""
        count = 0
        while not control.stop:
            if count or not same:
                self._fresh_now(None, script)
            runs = await self._series(
                1, list(script), control, run_id=run_id, broadcast_id=broadcast_id
            )
            count += 1
            run_id = broadcast_id = None
            repeat = None if once else self.session.repeat
            if repeat is None or control.stop or (repeat.count and count >= repeat.count):
                return
            self.state = "waiting"
            self.version += 1
            # a conversation longer than every_s is followed by the next one at once
            begun = runs[0].started_mono if runs else time.monotonic()
            delay = begun + repeat.every_s - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(control.wake.wait(), timeout=delay)

    async def _series(
        self,
        turn: int,
        prompts: list[str],
        control: LoopControl,
        *,
        run_id: str | None = None,
        broadcast_id: str | None = None,
    ) -> list[SessionRun]:
        """Send ``prompts`` as turns ``turn``, ``turn + 1``, ... of the current conversation
        (the kept turns from ``turn`` on become a branch), until one is not kept; then tell
        the conversation callbacks. Every run is recorded as sent in ``broadcast_id``.
        Returns the series' runs."""
        conv = self.conv
        conv.keep_only(turn - 1)
        self.version += 1
        try:
            for prompt in prompts:
                if control.stop:
                    break
                run = await self._one_run(prompt, control, run_id, broadcast_id)
                run_id = None
                kept = conv.finish(run.prompt, run.accumulator)
                self.version += 1
                if not kept:
                    break
        finally:
            runs = conv.runs[turn - 1 :]
            planned = turn + len(prompts) - 1
            self._tell(summarize(self.name, conv, runs, planned=planned))
        return runs

    async def _fresh(self, conversation_id: str, control: LoopControl) -> None:
        """A series that sends nothing: an empty conversation, once the last run ended."""
        self._fresh_now(conversation_id)

    def _fresh_now(
        self, conversation_id: str | None, script: tuple[str, ...] | None = None
    ) -> None:
        self.conv.restart(self.script if script is None else script, conversation_id)
        self.version += 1

    def _tell(self, summary: ConversationOutcome) -> None:
        for callback in self._on_conversation:
            try:
                callback(self, summary)
            except Exception:
                log.exception("conversation callback failed in %s", self.name)

    async def _one_run(
        self, prompt: str, control: LoopControl, run_id: str | None, broadcast_id: str | None
    ) -> SessionRun:
        if self._ready is not None:  # a runtime opens its store and client first
            await self._ready()
        session = self.session
        conv = self.conv
        history = conv.history()
        run = self.begin_run(
            prompt,
            run_id=run_id,
            conversation_id=conv.conversation_id,
            turn=conv.next_turn,
            history=history,
        )
        conv.begin(run)
        t0 = self._clock()

        def finish(status: RunStatus, reason: FinishReason, error: RunError | None) -> None:
            if run.finished is None:
                self.handle_events(
                    run, (Finished(self._clock() - t0, status, reason, None, error),)
                )

        try:
            if self.store is not None:
                try:  # handle_events feeds the run's accumulator before the store sees events
                    await record_start(self.store, session, run, broadcast_id)
                except Exception as exc:
                    self._store_failed(exc)
            from tui.stream.runner import StreamRun

            if self.client is None:
                raise RuntimeError("no HTTP client")
            try:
                base_url = await self._base_url()
            except Exception as exc:  # only the built-in simulator can fail to start here
                finish("failed", "error", RunError("connect", str(exc)))
                return run
            stream = StreamRun(
                session,
                client=self.client,
                base_url=base_url,
                prompt=prompt,
                history=history,
                clock=self._clock,
            )
            control.stream = stream
            if control.stop:  # cancelled while the run was being set up
                stream.cancel()
            if self.engine is not None:
                deliver = partial(self.handle_events, run)
                await self.engine.stream(stream, deliver, run.record_client_lag)
            else:
                try:
                    async for batch in stream.batches():
                        self.handle_events(run, batch)
                finally:
                    await stream.aclose()  # a no-op after Finished; stops the producer
        except asyncio.CancelledError:
            finish("cancelled", "cancelled", None)
            raise
        except Exception as exc:  # an engine bug must not end the session: fail this run
            log.exception("run %s of %s crashed", run.run_id, self.name)
            message = f"tokentop internal error: {type(exc).__name__}: {exc}"
            finish("failed", "error", RunError("protocol", message))
        finally:
            control.stream = None
        # an iterator that ended without Finished: never pretend success
        finish("failed", "truncated", RunError("truncated", "the run ended without a final event"))
        return run

    async def _base_url(self) -> str:
        if self._resolve_base_url is not None:
            return await self._resolve_base_url(self.session)
        if self.session.is_simulated:
            raise RuntimeError("the built-in simulator is not available here")
        return self.session.base_url
