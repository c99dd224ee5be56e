"""Sessions added to and removed from a running SessionRuntime (the dashboard's own sessions):
wired as the first ones are (store, alerts, /metrics, the simulator started on demand), and
removed without losing their stored runs. Real loopback HTTP, a real SQLite file."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.session.helpers import FAST, SLOW, until
from tests.stream.helpers import make_session
from tui.config import AlertRules, SessionConfig
from tui.session import SessionController, SessionRuntime
from tui.sim.faults import PRESETS
from tui.store import Store


class Starts:
    """A simulator starter that hands out the test simulator and counts its calls."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self) -> str:
        with self.lock:
            self.calls += 1
        if self.url is None:
            raise OSError("no free port")
        return self.url


def named(
    name: str, key: str, *, timing: str = FAST, fault: str | None = None, **changes: Any
) -> SessionConfig:
    session = make_session(key=f"{key}-{name}", timing=timing, fault=fault)
    return replace(session, name=name, **changes)


def final_status(controller: SessionController) -> str:
    """How the controller's current run ended (read afresh: no narrowing across awaits)."""
    run = controller.current
    assert run is not None and run.finished is not None
    return run.finished.status


async def scrape(url: str) -> dict[tuple[str, str], float]:
    """``tokentop_runs_total`` by (session, status)."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(url)).text
    return {
        (s.labels["session"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "tokentop_runs"
        for s in family.samples
        if s.name == "tokentop_runs_total"
    }


async def test_an_added_session_runs_like_the_first_ones(
    sim_url: str, sim_key: str, tmp_path: Path
) -> None:
    starts = Starts(sim_url)
    first = named("first", sim_key, base_url=sim_url)  # no session needs the simulator
    runtime = SessionRuntime([first], simulator=starts)
    await runtime.open_store(tmp_path / "tokentop.db")
    runtime.serve_metrics("127.0.0.1:0")
    try:
        await runtime.start()
        assert (starts.calls, runtime.sim_url) == (0, None)
        added = runtime.add_session(
            named("added", sim_key, fault="status=500*99", alerts=AlertRules(on_failure=True))
        )
        assert runtime.controllers[-1] is added and runtime.controller("added") is added
        added.start()
        await until(lambda: runtime.alerts.count("added") == 1, "the added session's alert")
        assert await runtime.wait_idle(15)
        assert (starts.calls, runtime.sim_url) == (1, sim_url)  # started on demand, once
        assert added.current is not None and added.current.finished is not None
        assert added.current.finished.status == "failed"
        assert runtime.metrics_server is not None
        runs = await scrape(runtime.metrics_server.url)
        assert runs[("added", "failed")] == 1
    finally:
        await runtime.close()
    reader = await Store.open(tmp_path / "tokentop.db", readonly=True)
    try:
        stored = await reader.list_runs(session="added")
    finally:
        await reader.close()
    assert [r.status for r in stored] == ["failed"]


async def test_a_removed_session_is_cancelled_and_forgotten_but_its_runs_stay(
    sim_url: str, sim_key: str, tmp_path: Path
) -> None:
    keep = named("keep", sim_key)
    going = named("going", sim_key, timing=SLOW, alerts=AlertRules(on_failure=True))
    runtime = SessionRuntime([keep, going], simulator=Starts(sim_url))
    await runtime.open_store(tmp_path / "tokentop.db")
    try:
        await runtime.start()
        controller = runtime.controller("going")
        controller.start()
        await until(lambda: controller.state == "streaming", "the run to stream")
        removed = await runtime.remove_session("going")
        assert removed is controller and not controller.running
        assert controller.current is not None and controller.current.finished is not None
        assert controller.current.finished.status == "cancelled"
        assert [c.name for c in runtime.controllers] == ["keep"]
        assert [s.name for s in runtime.sessions] == ["keep"]
        with pytest.raises(KeyError):
            runtime.controller("going")
        # the runtime no longer follows it: a failing run of it raises no alert
        failing = replace(going, headers={**going.headers, "X-Sim-Fault": "status=500*99"})
        controller.session = failing
        controller.start()
        await controller.wait()
        assert final_status(controller) == "failed"
        assert runtime.alerts.count("going") == 0 and runtime.alerts.total == 0
        # the name is free again
        again = runtime.add_session(named("going", sim_key))
        again.start()
        assert await runtime.wait_idle(15)
        assert again.state == "done"
    finally:
        await runtime.close()
    reader = await Store.open(tmp_path / "tokentop.db", readonly=True)
    try:
        stored = await reader.list_runs(session="going")
    finally:
        await reader.close()
    assert sorted(r.status for r in stored) == ["cancelled", "completed", "failed"]


async def test_names_are_unique_and_unknown_names_are_key_errors(
    sim_url: str, sim_key: str
) -> None:
    runtime = SessionRuntime([named("a", sim_key)], simulator=Starts(sim_url))
    try:
        with pytest.raises(ValueError, match="there is a session called 'a' already"):
            runtime.add_session(named("a", sim_key))
        with pytest.raises(KeyError):
            await runtime.remove_session("nope")
        added = runtime.add_session(named("b", sim_key))  # before start: started with the rest
        await runtime.start()
        assert added.client is runtime.client
        added.start()
        assert await runtime.wait_idle(15)
        assert added.state == "done"
    finally:
        await runtime.close()


async def test_a_simulator_that_cannot_start_fails_the_added_session(sim_key: str) -> None:
    starts = Starts(None)
    runtime = SessionRuntime([], simulator=starts)
    try:
        await runtime.start()
        added = runtime.add_session(named("sim", sim_key))
        added.start()
        assert await runtime.wait_idle(15)
        run = added.current
        assert run is not None and run.finished is not None and run.finished.error is not None
        assert run.finished.error.message == "the built-in simulator did not start: no free port"
        listed = await runtime.list_models(added.session)
        assert listed.error == "the built-in simulator did not start: no free port"
        assert starts.calls == 1  # tried once, not on every run
    finally:
        await runtime.close()


async def test_list_models_uses_the_runs_client(sim_url: str, sim_key: str) -> None:
    runtime = SessionRuntime([], simulator=Starts(sim_url))
    try:
        before = await runtime.list_models(named("early", sim_key))  # not started: own client
        assert set(before.ids) == set(PRESETS)
        await runtime.start()
        assert runtime.engine is not None and runtime.engine.running
        listed = await runtime.list_models(named("sim", sim_key))
        assert listed.error is None and set(listed.ids) == set(PRESETS)
        bare = sim_url.removesuffix("/v1")
        missing = await runtime.list_models(named("bare", sim_key, base_url=bare))
        assert missing.error is not None and "has no /models" in missing.error
    finally:
        await runtime.close()
