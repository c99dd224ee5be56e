"""SessionRuntime without any face: the simulator start (and its failure), the store it
opens, waiting for idle, and closing with runs still streaming."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from tests.session.helpers import (
    FAST,
    SLOW,
    STALL,
    FakeRecorder,
    Follower,
    count_requests,
    state_of,
    until,
)
from tests.stream.helpers import make_session
from tui.config import SessionConfig
from tui.session import SessionController, SessionRuntime
from tui.store import Store, StoreError
from tui.stream.events import RunEvent
from tui.stream.runner import StreamRun


def sim_session(name: str, key: str, timing: str = FAST) -> SessionConfig:
    """A ``base_url = "sim"`` session called ``name``."""
    return replace(make_session(key=key, timing=timing), name=name)


def failing_simulator() -> str:
    """A simulator start that fails."""
    raise OSError("no free port")


async def first_text(controller: SessionController) -> str:
    """Until the controller's run has received some text; that text."""

    def has_text() -> bool:
        run = controller.current
        return run is not None and run.accumulator.output_text != ""

    await until(has_text, f"text from {controller.name}")
    assert controller.current is not None
    return controller.current.accumulator.output_text


async def test_a_simulator_that_does_not_start_fails_only_its_sessions(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    sessions = [
        sim_session("sim-a", sim_key),
        sim_session("sim-b", sim_key),
        replace(sim_session("real", sim_key), base_url=sim_url),
    ]
    runtime = SessionRuntime(sessions, client=client, simulator=failing_simulator)
    await runtime.start()
    assert runtime.started
    assert runtime.sim_url is None
    for controller in runtime.controllers:
        controller.start()
    assert await runtime.wait_idle(15)

    expected = "the built-in simulator did not start: no free port"
    assert runtime.sim_error == expected
    for name in ("sim-a", "sim-b"):
        run = runtime.controller(name).current
        assert run is not None and run.finished is not None
        assert (run.finished.status, run.finished.reason) == ("failed", "error")
        assert run.finished.error is not None
        assert (run.finished.error.kind, run.finished.error.message) == ("connect", expected)
        assert runtime.controller(name).state == "failed"
    real = runtime.controller("real")
    assert real.state == "done"
    assert real.current is not None and real.current.accumulator.output_text != ""
    await runtime.close()
    assert not client.is_closed  # the caller's client stays the caller's


async def test_sessions_wait_for_start(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    sent = count_requests(client)
    runtime = SessionRuntime([sim_session("a", sim_key)], client=client, simulator=lambda: sim_url)
    controller = runtime.controller("a")
    follower = Follower()
    controller.subscribe(follower)  # a view may follow before anything is open
    controller.start()
    assert not await runtime.wait_idle(0.2)  # waiting for the runtime, not finished
    assert sent == [] and follower.runs == [] and controller.state == "queued"

    await runtime.start()
    assert await runtime.wait_idle(15)
    assert state_of(controller) == "done"
    assert runtime.sim_url == sim_url
    assert len(sent) == 1 and str(sent[0].url).startswith(sim_url)
    await runtime.close()


async def test_controller_lookup(sim_key: str) -> None:
    runtime = SessionRuntime([sim_session("a", sim_key), sim_session("b", sim_key)])
    assert runtime.controller("b").name == "b"
    with pytest.raises(KeyError):
        runtime.controller("c")
    assert runtime.live == []
    assert await runtime.wait_idle(0)  # nothing running: idle at once


async def test_wait_idle_is_false_while_runs_go_on(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    runtime = SessionRuntime(
        [sim_session("slow", sim_key, SLOW), sim_session("fast", f"{sim_key}-2")],
        client=client,
        simulator=lambda: sim_url,
    )
    await runtime.start()
    slow, quick = runtime.controllers
    slow.start()
    quick.start()
    await first_text(slow)
    await until(lambda: quick.state == "done", "the fast run")
    assert not await runtime.wait_idle(0.1)
    assert runtime.live == [slow]
    assert slow.running and slow.state == "streaming"

    runtime.cancel_all()
    assert await runtime.wait_idle(15)
    assert runtime.live == []
    assert state_of(slow) == "cancelled" and quick.state == "done"
    await runtime.close()


@pytest.mark.parametrize("grace_s", [10.0, 0.0])
async def test_close_ends_a_long_run_and_closes_the_store(
    sim_url: str, sim_key: str, db_path: Path, grace_s: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = SessionRuntime([sim_session("slow", sim_key, SLOW)], simulator=lambda: sim_url)
    store = await runtime.open_store(db_path)
    await runtime.start()
    client = runtime.client
    assert client is not None  # the runtime built its own
    controller = runtime.controller("slow")
    follower = Follower()
    controller.subscribe(follower)
    controller.start()
    await first_text(controller)

    aborted: list[bool] = []
    abort_all = runtime.abort_all

    async def spy() -> None:
        aborted.append(True)
        await abort_all()

    monkeypatch.setattr(runtime, "abort_all", spy)
    t0 = time.monotonic()
    await asyncio.wait_for(runtime.close(grace_s=grace_s), 20)
    assert time.monotonic() - t0 < 10  # far less than the 100 s the answer would take

    # graceful within a generous grace; at once (abort) with none
    assert aborted == ([] if grace_s else [True])
    assert not controller.running
    (run,) = follower.runs
    assert run.finished is not None and run.finished.status == "cancelled"
    assert follower.finished(run.run_id) == [run.finished]
    assert controller.state == "cancelled"
    partial = run.accumulator.output_text
    assert partial != ""
    # the store was written and closed, the client closed
    assert runtime.store is None and runtime.client is None
    with pytest.raises(StoreError):
        await store.start_run(controller.session, prompt="after close")
    assert client.is_closed
    async with await Store.open(db_path, readonly=True) as reader:
        stored = await reader.get_run(run.run_id)
    assert stored.status == "cancelled"
    assert stored.output_text == partial


async def test_use_store_records_every_session(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    runtime = SessionRuntime(
        [sim_session("a", sim_key), sim_session("b", f"{sim_key}-2")],
        client=client,
        simulator=lambda: sim_url,
    )
    recorder = FakeRecorder()
    runtime.use_store(recorder)
    await runtime.start()
    for controller in runtime.controllers:
        controller.start()
    assert await runtime.wait_idle(15)
    assert sorted(session.name for session, *_ in recorder.started) == ["a", "b"]
    for controller in runtime.controllers:
        run = controller.current
        assert run is not None
        assert [a for _, _, r, a in recorder.started if r == run.run_id] == [run.accumulator]
    await runtime.close()
    assert recorder.closed


async def test_store_errors_name_the_session(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    errors: list[tuple[str, BaseException]] = []
    runtime = SessionRuntime(
        [sim_session("a", sim_key)],
        client=client,
        simulator=lambda: sim_url,
        on_store_error=lambda where, exc: errors.append((where, exc)),
    )
    runtime.use_store(FakeRecorder(fail=True))
    await runtime.start()
    runtime.controller("a").start()
    assert await runtime.wait_idle(15)
    assert runtime.controller("a").state == "done"
    assert errors and {where for where, _ in errors} == {"a"}
    await runtime.close()


async def test_a_cancelled_start_never_leaves_the_sessions_waiting(
    client: httpx.AsyncClient, sim_key: str
) -> None:
    release = threading.Event()
    entered = threading.Event()

    def hanging_simulator() -> str:
        entered.set()
        release.wait(30)
        raise OSError("gave up")

    runtime = SessionRuntime(
        [sim_session("a", sim_key)], client=client, simulator=hanging_simulator
    )
    controller = runtime.controller("a")
    controller.start()
    starting = asyncio.create_task(runtime.start())
    try:
        await until(entered.is_set, "the simulator start")
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
        assert runtime.started
        assert await runtime.wait_idle(15)  # the run ended instead of waiting forever
        assert state_of(controller) == "failed"
    finally:
        release.set()
    await runtime.close()


# -- a runtime that builds its own client runs the network side on an engine thread ------


async def test_threaded_restart_cancels_the_old_run_and_the_new_one_completes(
    sim_url: str, sim_key: str, db_path: Path
) -> None:
    # the stall hits the key's first request only: the restarted run streams normally
    session = replace(make_session(key=sim_key, fault=STALL, timing=FAST), name="s")
    runtime = SessionRuntime([session], simulator=lambda: sim_url)
    assert runtime.engine is not None
    await runtime.open_store(db_path)
    await runtime.start()
    controller = runtime.controller("s")
    follower = Follower()
    controller.subscribe(follower)
    controller.start()
    partial = await first_text(controller)
    assert state_of(controller) == "streaming"
    controller.restart()
    await controller.wait()
    first, second = follower.runs
    assert follower.log == [
        ("started", first.run_id, ""),
        ("finished", first.run_id, "cancelled"),
        ("started", second.run_id, ""),
        ("finished", second.run_id, "completed"),
    ]
    await runtime.close()
    assert not runtime.engine.running
    async with await Store.open(db_path, readonly=True) as reader:
        old = await reader.get_run(first.run_id)
        new = await reader.get_run(second.run_id)
    assert (old.status, old.output_text) == ("cancelled", partial)
    assert (new.status, new.output_text) == ("completed", second.accumulator.output_text)


async def test_threaded_engine_error_fails_only_that_run(
    sim_url: str, sim_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = StreamRun.stream_to
    calls = 0

    async def broken(self: StreamRun, sink: Callable[[list[RunEvent]], None]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            async for batch in self.batches():
                sink(batch)
                raise RuntimeError("engine bug")
        await original(self, sink)

    monkeypatch.setattr(StreamRun, "stream_to", broken)
    runtime = SessionRuntime([sim_session("a", sim_key)], simulator=lambda: sim_url)
    await runtime.start()
    controller = runtime.controller("a")
    task = controller.start()
    await task
    assert task.result() is None
    run = controller.current
    assert run is not None and run.finished is not None
    assert run.finished.status == "failed" and run.finished.error is not None
    assert run.finished.error.message.startswith("tokentop internal error: RuntimeError")
    await controller.start()
    assert state_of(controller) == "done"
    await runtime.close()


async def test_threaded_cancel_mid_stream(sim_url: str, sim_key: str) -> None:
    runtime = SessionRuntime([sim_session("slow", sim_key, SLOW)], simulator=lambda: sim_url)
    await runtime.start()
    controller = runtime.controller("slow")
    follower = Follower()
    controller.subscribe(follower)
    controller.start()
    await first_text(controller)
    controller.cancel()
    await asyncio.wait_for(controller.wait(), 15)
    (run,) = follower.runs
    assert follower.finished(run.run_id) == [run.finished]
    assert run.finished is not None and run.finished.status == "cancelled"
    assert state_of(controller) == "cancelled"
    assert run.accumulator.output_text != ""
    await runtime.close()
