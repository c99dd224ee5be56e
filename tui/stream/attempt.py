"""One attempt of a run: send the request, check the response, read the stream to its end.

:func:`run_attempt` is what :class:`tui.stream.runner.StreamRun` calls once per attempt; the
run's lifecycle (the attempt loop, retries, finish, cancel) stays in the runner. An attempt:

- puts ``Connecting``, then ``Started`` (and ``Resumed`` for a continuation) and the events
  of each network chunk as one batch on the run's queue, through ``put``;
- holds the deadlines of :class:`tui.stream.retry.AttemptDeadlines` with one
  ``asyncio.timeout`` re-armed as bytes arrive (at most every ``IDLE_SLACK`` of the idle
  limit, one comparison per chunk);
- on a ``Last-Event-ID`` resume, runs the events through :class:`tui.stream.request.ReplayCheck`
  and gives up the attempt (not resumable) when the server replays the stream instead;
- records what a later attempt needs on the plan: the SSE ids, the stream's ``retry:`` time
  and the answer's first characters;
- returns the adapter's :class:`~tui.stream.adapter.Outcome` when the stream ended as it
  should, else an :class:`~tui.stream.retry.AttemptFailure` (timeout, stall, drop,
  truncation, HTTP error, protocol error) for the plan to decide on. It raises only
  ``asyncio.CancelledError`` (and engine bugs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from tui.stream.adapter import Outcome
from tui.stream.events import (
    Connecting,
    Notice,
    RawEvent,
    ReasoningDelta,
    ResponseInfo,
    Resumed,
    RunError,
    RunEvent,
    Started,
    TextDelta,
    ToolCallDelta,
)
from tui.stream.request import (
    HEAD_CHARS,
    IGNORED_PREVIOUS,
    Continuation,
    ReplayCheck,
    RequestPlan,
)
from tui.stream.retry import (
    MAX_RETRY_AFTER_S,
    AttemptDeadlines,
    AttemptFailure,
    check_response,
    kept_headers,
    request_id_of,
)
from tui.stream.sse import SSEDecoder, SSELimitError
from tui.stream.transport import body_reader

__all__ = ["IDLE_SLACK", "run_attempt"]

IDLE_SLACK = 0.25
"""The idle watchdog is re-armed at most every ``IDLE_SLACK * idle_timeout_s`` (one timer,
no new task per chunk); it cuts a silent stream within ``(1 + IDLE_SLACK) * idle_timeout_s``."""

_CONTENT = frozenset({TextDelta, ReasoningDelta, ToolCallDelta})
_KEPT_WHEN_GIVEN_UP = (RawEvent, ResponseInfo)
"""What an attempt given up at its first event hands on (see :func:`_continuation_ignored`)."""


async def run_attempt(
    plan: RequestPlan,
    client: httpx.AsyncClient,
    attempt: int,
    how: Continuation,
    *,
    clock: Callable[[], float],
    t0: float,
    put: Callable[[list[RunEvent]], None],
) -> Outcome | AttemptFailure:
    """Make attempt number ``attempt`` of ``plan``'s run as ``how`` (a new request or a
    continuation), with ``client``; event times are ``clock() - t0``, batches go to ``put``.
    Returns how the attempt ended (see the module)."""
    policy = plan.session.reconnect
    adapter = plan.adapter
    method, url, body, headers = plan.request(how)
    put([Connecting(clock() - t0, attempt, method, url)])
    timeout = httpx.Timeout(
        connect=policy.connect_timeout_s,
        read=policy.idle_timeout_s,  # until the headers: body_reader switches it off after
        write=policy.idle_timeout_s,
        pool=policy.connect_timeout_s,
    )
    loop = asyncio.get_running_loop()
    limits = AttemptDeadlines(policy, loop.time())
    started = False
    try:
        async with asyncio.timeout_at(limits.arm(limits.headers, True)) as deadline:
            async with client.stream(
                method, url, content=body, headers=headers, timeout=timeout
            ) as response:
                deadline.reschedule(None)  # check_response bounds an error body's read
                failure = await check_response(response, plan.session)
                if failure is not None:
                    return failure
                started = True
                put(_started(plan, response, attempt, how, clock() - t0))
                return await _read(plan, response, deadline, limits, how, clock, t0, put)
    except TimeoutError:  # ours: the transport's timeouts are httpx exceptions
        if started:
            done = adapter.eof_outcome(None)
            if done is not None:
                return done
        return limits.failure(started, url)
    except SSELimitError as exc:
        return AttemptFailure(RunError("protocol", str(exc)), started=True, retryable=False)
    except httpx.TimeoutException as exc:
        if started:
            done = adapter.eof_outcome(None)
            if done is not None:  # finish_reason already here: only [DONE] is missing
                return done
            msg = f"no data for {policy.idle_timeout_s:g} s (stalled stream)"
            return AttemptFailure(RunError("stalled", msg), started=True)
        what = "connect" if isinstance(exc, httpx.ConnectTimeout) else "the response"
        msg = f"timed out waiting for {what} from {url}"
        return AttemptFailure(RunError("timeout", msg), started=False)
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        if started:
            done = adapter.eof_outcome(None)
            if done is not None:
                return done
            msg = f"connection dropped mid-stream: {exc or type(exc).__name__}"
            return AttemptFailure(RunError("dropped", msg), started=True)
        msg = f"connection closed before the response: {exc or type(exc).__name__}"
        return AttemptFailure(RunError("connect", msg), started=False)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        msg = f"cannot use the URL {url}: {exc}"
        return AttemptFailure(RunError("connect", msg), started=False, retryable=False)
    except httpx.DecodingError as exc:  # a body that does not match its Content-Encoding
        msg = f"cannot decode the response body: {exc or type(exc).__name__}"
        return AttemptFailure(RunError("protocol", msg), started=False, retryable=False)
    except httpx.TransportError as exc:
        # any other transport error (e.g. a proxy error); the transport in
        # tui/stream/transport.py maps aiohttp's errors onto the httpx types above
        if started:
            msg = f"connection dropped mid-stream: {exc or type(exc).__name__}"
            return AttemptFailure(RunError("dropped", msg), started=True)
        msg = f"cannot connect to {url}: {exc or type(exc).__name__}"
        return AttemptFailure(RunError("connect", msg), started=False)


def _started(
    plan: RequestPlan, response: httpx.Response, attempt: int, how: Continuation, t: float
) -> list[RunEvent]:
    """The batch that says the stream started: ``Started``, and ``Resumed`` after it for a
    continuation."""
    events: list[RunEvent] = [
        Started(
            t,
            attempt,
            response.status_code,
            request_id_of(response.headers),
            kept_headers(response.headers),
        )
    ]
    if how == "resume_seq":
        assert plan.responses is not None
        events.append(Resumed(t, attempt, plan.responses.last_seq))
    elif how == "resume_id":
        events.append(Resumed(t, attempt, None, plan.last_event_id))
    return events


async def _read(
    plan: RequestPlan,
    response: httpx.Response,
    deadline: asyncio.Timeout,
    limits: AttemptDeadlines,
    how: Continuation,
    clock: Callable[[], float],
    t0: float,
    put: Callable[[list[RunEvent]], None],
) -> Outcome | AttemptFailure:
    """Read the stream of a started attempt: the hot loop (everything it uses per chunk is a
    local)."""
    adapter = plan.adapter
    decoder = SSEDecoder()
    check: ReplayCheck | None = None
    if how == "resume_id" and plan.use_ids:
        check = ReplayCheck(plan)  # ids count from None: only the server's own are seen
    else:
        decoder.last_event_id = plan.last_event_id
    feed = decoder.feed
    handle = adapter.handle
    loop_time = asyncio.get_running_loop().time
    idle = limits.idle
    window = idle * (1.0 + IDLE_SLACK)
    now = loop_time()
    deadline.reschedule(limits.arm(now + window, True))
    rearm_at = now + idle * IDLE_SLACK
    waiting = True  # no content yet in this attempt (the first-content deadline holds)
    scan = True  # still looking for the first content or the answer's first characters
    read = body_reader(response, paced_by_caller=True)  # the deadline below cuts a stall
    try:
        while chunk := await read():
            now = loop_time()
            if now >= rearm_at:  # one comparison per chunk; the timer moves rarely
                deadline.reschedule(limits.arm(now + window, waiting))
                rearm_at = now + idle * IDLE_SLACK
            events = feed(chunk)
            if not events:
                continue
            t = clock() - t0
            out: list[RunEvent] = []
            if check is None:
                for event in events:
                    handle(event, t, out)
                    if adapter.outcome is not None:
                        break
            else:
                for event in events:
                    if check.admit(event):
                        handle(event, t, out)
                    if adapter.outcome is not None or check.replayed is not None:
                        break
                check.add(out)
                if check.replayed is not None:
                    return _replayed(plan, check.replayed)
                if not check.decided and adapter.outcome is None:
                    continue
                out, check = check.held, None
            if scan and out:
                waiting, scan = _scan(plan, out, waiting, decoder)
                if plan.ignored is not None:
                    ignored = _continuation_ignored(plan, out, t)
                    if ignored is not None:
                        put(out)
                        return ignored
                if not waiting:
                    deadline.reschedule(limits.arm(now + window, False))
            if out:
                put(out)
            if adapter.outcome is not None:
                return adapter.outcome
    finally:
        if check is not None and check.held and check.replayed is None:
            put(check.held)  # undecided at the end: what came was not a replay
        if decoder.saw_id:
            if plan.first_event_id is None and how == "create":
                plan.first_event_id = decoder.first_event_id
            plan.last_event_id = decoder.last_event_id
        if decoder.retry_ms is not None:
            plan.sse_retry_s = min(decoder.retry_ms / 1000.0, MAX_RETRY_AFTER_S)
    outcome = adapter.eof_outcome(decoder.pending_data())
    if outcome is not None:
        return outcome
    what = "[DONE] or finish_reason" if plan.session.api == "chat" else "a terminal event"
    return AttemptFailure(
        RunError("truncated", f"the stream ended without {what}"),
        started=True,
    )


def _scan(
    plan: RequestPlan, out: list[RunEvent], waiting: bool, decoder: SSEDecoder
) -> tuple[bool, bool]:
    """Look at the first batches of an attempt: ``(waiting, scan)`` after ``out``. The
    answer's first characters are kept for :class:`ReplayCheck` when the stream carries
    ids (only a ``Last-Event-ID`` resume needs them)."""
    head = plan.text_head
    for event in out:
        if type(event) in _CONTENT:
            waiting = False
            if isinstance(event, TextDelta) and len(head) < HEAD_CHARS:
                head += event.text
        elif type(event) is ResponseInfo and waiting:
            plan.ignored = plan.continuation_ignored(event)
    plan.text_head = head[:HEAD_CHARS]
    return waiting, waiting or (len(head) < HEAD_CHARS and decoder.saw_id)


def _continuation_ignored(
    plan: RequestPlan, out: list[RunEvent], t: float
) -> AttemptFailure | None:
    """The response did not continue the ``previous_response_id`` sent (seen in its first
    event, before any content had been handed on). ``auto``: the attempt ends so the runner
    sends the turns as items at once; the answer that came in the same read (a fast server
    sends its first deltas with ``response.created``) is left out of ``out``, which keeps
    only the raw events and what names the response, so nothing of the given-up answer
    reaches the run. ``server``: said, and kept."""
    reason, plan.ignored = plan.ignored, None
    assert reason is not None and plan.history is not None
    if plan.history.mode == "server":
        said = f'{reason}; history = "server" sends it still'
        out.append(Notice(t, "history_unconfirmed", said))
        return None
    out[:] = [event for event in out if type(event) in _KEPT_WHEN_GIVEN_UP]
    return AttemptFailure(
        RunError("protocol", reason, code=IGNORED_PREVIOUS), started=False, retryable=False
    )


def _replayed(plan: RequestPlan, why: str) -> AttemptFailure:
    """The attempt's failure when the server replayed the stream instead of resuming it."""
    last = plan.last_event_id
    msg = f"the server ignored Last-Event-ID {last!r} and replayed the stream ({why})"
    return AttemptFailure(RunError("protocol", msg), started=True, resumable=False)
