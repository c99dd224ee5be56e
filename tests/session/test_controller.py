"""SessionController over loopback HTTP to the simulator, without any face: repeat schedules,
cancel, restart, failures below it (engine, listeners, store) and the state / phase words."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from tests.session.helpers import (
    FAST,
    STALL,
    Broken,
    FakeRecorder,
    Follower,
    controller_for,
    count_requests,
    state_of,
    until,
)
from tests.stream.helpers import make_session
from tui.config import Repeat, SessionConfig
from tui.session import SessionController
from tui.store import Store
from tui.stream.events import Connecting, Finished, RunEvent, TextDelta
from tui.stream.runner import StreamRun


def fast(key: str, **kwargs: object) -> SessionConfig:
    """A session (``base_url = "sim"``) that completes in a few milliseconds."""
    return make_session(key=key, timing=FAST, **kwargs)  # type: ignore[arg-type]


def text_of(events: list[RunEvent]) -> str:
    """The text deltas of ``events``, joined."""
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# -- repeat ------------------------------------------------------------------------------


async def test_repeat_runs_count_times_every_s_apart(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    every_s = 0.3
    session = replace(fast(sim_key), repeat=Repeat(every_s=every_s, count=3))
    controller = controller_for(session, client, sim_url)
    follower = Follower()
    controller.subscribe(follower)
    task = controller.start()
    await controller.wait()

    assert task.done() and task.result() is None
    assert controller.runs_started == controller.runs_finished == 3
    ids = [run.run_id for run in follower.runs]
    assert len(set(ids)) == 3
    assert [summary.run_id for summary in controller.history] == ids
    assert [summary.status for summary in controller.history] == ["completed"] * 3
    # every_s counts from one start to the next, as the controller took them (a listener's
    # own clock reading comes a little later, by however long the machine made it wait)
    starts = [run.started_mono for run in follower.runs]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(gap >= every_s - 1e-6 for gap in gaps), gaps
    assert all(seen >= start for seen, start in zip(follower.start_times, starts, strict=True))
    # the session waits after runs 1 and 2 (only there, whether or not a run outlasted
    # every_s), shows it, and after the last run shows the final state
    waits = [(started, done) for state, _, started, done in controller.trace if state == "waiting"]
    assert waits == [(1, 1), (2, 2)], controller.trace
    assert all(shown == "waiting" for state, shown, _, _ in controller.trace if state == "waiting")
    assert controller.states()[-1] == "done"
    assert controller.phase == "completed"
    assert not controller.running


async def test_no_repeat_runs_once(client: httpx.AsyncClient, sim_url: str, sim_key: str) -> None:
    controller = controller_for(fast(sim_key), client, sim_url)
    assert controller.state == "queued" and controller.phase == "queued"
    await controller.start()
    assert controller.runs_started == controller.runs_finished == 1
    assert state_of(controller) == "done"
    assert not controller.running


async def test_repeat_count_one_runs_once(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    session = replace(fast(sim_key), repeat=Repeat(every_s=0.01, count=1))
    controller = controller_for(session, client, sim_url)
    await controller.start()
    assert controller.runs_started == 1
    assert controller.state == "done"


async def test_repeat_count_zero_runs_until_cancelled(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    session = replace(fast(sim_key), repeat=Repeat(every_s=0.02))
    assert session.repeat is not None and session.repeat.count == 0
    controller = controller_for(session, client, sim_url)
    controller.start()
    await until(lambda: controller.runs_finished >= 4, "four runs")
    controller.cancel()
    await controller.wait()
    assert not controller.running
    started = controller.runs_started
    assert controller.runs_finished == started
    assert len({summary.run_id for summary in controller.history}) == started


async def test_cancel_while_waiting_stops_the_schedule_at_once(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    session = replace(fast(sim_key), repeat=Repeat(every_s=60, count=3))
    controller = controller_for(session, client, sim_url)
    controller.start()
    await until(lambda: controller.state == "waiting", "the wait after run 1")
    t0 = time.monotonic()
    controller.cancel()
    await asyncio.wait_for(controller.wait(), 30)
    assert time.monotonic() - t0 < 60 / 4  # at once, not after the rest of the 60 s wait
    assert controller.runs_started == 1
    assert not controller.running


async def test_cancel_while_waiting_leaves_no_waiting_state(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    session = replace(fast(sim_key), repeat=Repeat(every_s=60, count=3))
    controller = controller_for(session, client, sim_url)
    controller.start()
    await until(lambda: controller.state == "waiting", "the wait after run 1")
    controller.cancel()
    await asyncio.wait_for(controller.wait(), 10)
    assert not controller.running
    assert controller.state != "waiting"


# -- cancel ------------------------------------------------------------------------------


async def test_cancel_mid_stream_records_the_text_so_far(
    client: httpx.AsyncClient, sim_url: str, sim_key: str, store: Store
) -> None:
    session = replace(
        make_session(key=sim_key, fault=STALL, timing=FAST),
        repeat=Repeat(every_s=0.01, count=5),
    )
    controller = controller_for(session, client, sim_url, store=store)
    follower = Follower()
    controller.subscribe(follower)
    task = controller.start()
    await until(lambda: controller.current is not None, "the run")
    run = controller.current
    assert run is not None
    await until(lambda: run.accumulator.output_text != "", "the first text")
    assert controller.state == "streaming"
    controller.cancel()
    await controller.wait()

    assert task.result() is None
    assert run.finished is not None
    assert (run.finished.status, run.finished.reason) == ("cancelled", "cancelled")
    assert controller.state == controller.phase == "cancelled"
    assert controller.runs_started == 1  # the repeat schedule stopped
    assert follower.finished(run.run_id) == [run.finished]
    partial = text_of(follower.events[run.run_id])
    assert partial and partial == run.accumulator.output_text
    await store.flush()
    stored = await store.get_run(run.run_id)
    assert stored.status == "cancelled"
    assert stored.finish_reason == "cancelled"
    assert stored.output_text == partial


@pytest.mark.parametrize("where", ["ready", "base_url"])
async def test_cancel_during_set_up_sends_no_request(
    client: httpx.AsyncClient, sim_url: str, sim_key: str, where: str
) -> None:
    sent = count_requests(client)
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def ready() -> None:
        entered.set()
        await gate.wait()

    async def resolve(_: SessionConfig) -> str:
        entered.set()
        await gate.wait()
        return sim_url

    session = replace(fast(sim_key), repeat=Repeat(every_s=0.01, count=3))
    controller: SessionController
    if where == "ready":
        controller = controller_for(session, client, sim_url, ready=ready)
    else:
        controller = SessionController(session, client=client, resolve_base_url=resolve)
    follower = Follower()
    controller.subscribe(follower)
    task = controller.start()
    await asyncio.wait_for(entered.wait(), 10)
    assert controller.running
    controller.cancel()
    gate.set()
    await asyncio.wait_for(controller.wait(), 10)

    assert task.result() is None
    assert sent == []
    assert controller.state == "cancelled"
    assert controller.runs_started == 1
    (run,) = follower.runs
    assert run.finished is not None and run.finished.status == "cancelled"
    assert not any(isinstance(e, Connecting) for e in follower.events[run.run_id])
    assert follower.finished(run.run_id) == [run.finished]


# -- restart -----------------------------------------------------------------------------


async def test_restart_mid_run_records_the_old_run_cancelled(
    client: httpx.AsyncClient, sim_url: str, sim_key: str, store: Store
) -> None:
    # the stall hits the key's first request only: the restarted run streams normally
    session = make_session(key=sim_key, fault=STALL, timing=FAST)
    controller = controller_for(session, client, sim_url, store=store)
    follower = Follower()
    controller.subscribe(follower)
    first_task = controller.start()
    await until(
        lambda: bool(follower.runs) and follower.runs[0].accumulator.output_text != "", "text"
    )
    first = follower.runs[0]
    partial = first.accumulator.output_text

    second_task = controller.restart()
    assert second_task is not first_task
    await controller.wait()

    assert first_task.done() and first_task.result() is None
    assert second_task.result() is None
    assert len(follower.runs) == 2
    second = follower.runs[1]
    assert follower.log == [
        ("started", first.run_id, ""),
        ("finished", first.run_id, "cancelled"),
        ("started", second.run_id, ""),
        ("finished", second.run_id, "completed"),
    ]
    assert controller.current is second and controller.state == "done"
    assert [s.status for s in controller.history] == ["cancelled", "completed"]
    await store.flush()
    old = await store.get_run(first.run_id)
    new = await store.get_run(second.run_id)
    assert (old.status, old.output_text) == ("cancelled", partial)
    assert new.status == "completed" and new.output_text == second.accumulator.output_text


# -- failures below the controller -------------------------------------------------------


async def test_engine_error_fails_the_run_and_the_controller_goes_on(
    client: httpx.AsyncClient,
    sim_url: str,
    sim_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = StreamRun.batches
    calls = 0

    async def broken(self: StreamRun) -> AsyncIterator[list[RunEvent]]:
        nonlocal calls
        calls += 1
        async for batch in original(self):
            yield batch
            if calls == 1:  # the first run breaks after its first batch
                raise RuntimeError("engine bug")

    monkeypatch.setattr(StreamRun, "batches", broken)
    controller = controller_for(fast(sim_key), client, sim_url)
    follower = Follower()
    controller.subscribe(follower)

    task = controller.start()
    await task
    assert task.result() is None  # the error never escapes the task
    run = follower.runs[0]
    assert run.finished is not None
    assert (run.finished.status, run.finished.reason) == ("failed", "error")
    assert run.finished.error is not None
    assert run.finished.error.message.startswith("tokentop internal error: RuntimeError")
    assert "engine bug" in run.finished.error.message
    assert controller.state == controller.phase == "failed"
    assert follower.finished(run.run_id) == [run.finished]

    await controller.start()
    assert state_of(controller) == "done"
    assert [s.status for s in controller.history] == ["failed", "completed"]


async def test_stream_without_finished_is_a_truncated_failure(
    client: httpx.AsyncClient, sim_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def endless(self: StreamRun) -> AsyncIterator[list[RunEvent]]:
        yield [Connecting(0.0, 1, "POST", "http://sim.invalid/v1/chat/completions")]

    monkeypatch.setattr(StreamRun, "batches", endless)
    controller = controller_for(make_session(), client, sim_url)
    task = controller.start()
    await task
    assert task.result() is None
    run = controller.current
    assert run is not None and run.finished is not None
    assert (run.finished.status, run.finished.reason) == ("failed", "truncated")
    assert run.finished.error is not None and run.finished.error.kind == "truncated"
    assert controller.state == "failed"
    assert controller.runs_finished == 1


async def test_no_client_fails_the_run(sim_key: str) -> None:
    controller = SessionController(fast(sim_key))
    task = controller.start()
    await task
    assert task.result() is None
    run = controller.current
    assert run is not None and run.finished is not None
    assert run.finished.status == "failed"
    assert run.finished.error is not None
    assert "no HTTP client" in run.finished.error.message


async def test_a_raising_listener_does_not_stop_the_stream(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    recorder = FakeRecorder()
    controller = controller_for(fast(sim_key), client, sim_url, store=recorder)
    broken = Broken()
    follower = Follower()
    controller.subscribe(broken)
    controller.subscribe(follower)
    await controller.start()

    assert controller.state == "done"
    (run,) = follower.runs
    got = follower.events[run.run_id]
    assert got == recorder.events[run.run_id]  # every event, in order
    assert len(got) == run.events
    assert isinstance(got[-1], Finished) and got[-1].status == "completed"
    assert text_of(got) == run.accumulator.output_text != ""
    assert broken.calls == 1 + len(follower.phases)  # it was called every time


async def test_unsubscribe_stops_the_calls(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    controller = controller_for(fast(sim_key), client, sim_url)
    follower = Follower()
    unsubscribe = controller.subscribe(follower)
    await controller.start()
    unsubscribe()
    await controller.start()
    assert len(follower.runs) == 1
    assert controller.runs_finished == 2


async def test_store_errors_are_reported_and_the_run_completes(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    errors: list[tuple[str, BaseException]] = []
    recorder = FakeRecorder(fail=True)
    controller = controller_for(
        fast(sim_key),
        client,
        sim_url,
        store=recorder,
        on_store_error=lambda name, exc: errors.append((name, exc)),
    )
    follower = Follower()
    controller.subscribe(follower)
    await controller.start()

    assert controller.state == "done"
    run = controller.current
    assert run is not None and run.accumulator.output_text != ""
    assert isinstance(follower.events[run.run_id][-1], Finished)
    # one report for start_run, one for each batch handed to add_events
    assert len(errors) == 1 + len(follower.phases)
    assert {name for name, _ in errors} == {"test"}
    assert all(isinstance(exc, OSError) for _, exc in errors)


async def test_the_store_reads_the_runs_own_accumulator(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    recorder = FakeRecorder()
    session = fast(sim_key)
    controller = controller_for(session, client, sim_url, store=recorder)
    await controller.start("A prompt of its own.")

    run = controller.current
    assert run is not None
    ((got_session, prompt, run_id, accumulator),) = recorder.started
    assert got_session is session
    assert (prompt, run_id) == ("A prompt of its own.", run.run_id)
    assert accumulator is run.accumulator
    events = recorder.events[run_id]
    assert isinstance(events[-1], Finished) and len(events) == run.events
    # the controller folds each batch before the store sees it
    assert recorder.done_at_finished == [True]


async def test_abort_during_store_start_still_finishes_the_run(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    recorder = FakeRecorder(hold=asyncio.Event())  # never set: start_run hangs
    controller = controller_for(fast(sim_key), client, sim_url, store=recorder)
    follower = Follower()
    controller.subscribe(follower)
    controller.start()
    await until(lambda: recorder.entered, "start_run")
    await asyncio.wait_for(controller.abort(), 10)
    assert not controller.running
    (run,) = follower.runs
    assert follower.finished(run.run_id) != []
    assert controller.state == "cancelled"


# -- state and phase ---------------------------------------------------------------------


async def test_phase_words_through_a_retry(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    # a 503 with retry-after-ms on the key's first attempt: one retry after exactly 0.1 s
    session = make_session(key=sim_key, fault="status=503,retry_after_ms=100", timing=FAST)
    controller = controller_for(session, client, sim_url)
    follower = Follower()
    controller.subscribe(follower)
    await controller.start()

    phases = follower.phases
    assert phases[0] == "connecting"
    assert "retry 1/3 in 0.1s" in phases
    assert "streaming" in phases
    assert phases.index("retry 1/3 in 0.1s") < phases.index("streaming")
    assert phases[-1] == controller.phase == "completed"
    assert controller.state == "done"


async def test_phase_names_the_attempt_after_a_retry(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    session = make_session(key=sim_key, fault="status=503,retry_after_ms=100", timing=FAST)
    controller = controller_for(session, client, sim_url)
    follower = Follower()
    controller.subscribe(follower)
    await controller.start()
    assert "attempt 2" in follower.phases


async def test_cancelling_a_waiter_cancels_it(sim_key: str) -> None:
    gate = asyncio.Event()
    controller = SessionController(fast(sim_key), ready=gate.wait)
    controller.start()
    went_on: list[bool] = []

    async def waiter() -> None:
        await controller.wait()
        went_on.append(True)

    task = asyncio.create_task(waiter())
    await until(lambda: controller.running, "the run loop")
    await asyncio.sleep(0)  # let the waiter reach wait()
    task.cancel()
    await asyncio.wait([task], timeout=10)
    gate.set()
    await controller.abort()
    assert task.cancelled() and went_on == []
