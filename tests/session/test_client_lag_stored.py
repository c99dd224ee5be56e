"""The client's own loop lag over a run reaches the store: a run of the runtime (engine,
real simulator over loopback, a real SQLite file) is stored with its lag p99 and whether it
passed the bound, as its result record says."""

from __future__ import annotations

from pathlib import Path

from tests.session.helpers import Follower, until
from tests.stream.helpers import make_session
from tui.session import SessionRuntime
from tui.store import Store


async def test_a_runs_client_lag_is_stored_with_it(
    sim_url: str, sim_key: str, db_path: Path
) -> None:
    session = make_session("chat", key=sim_key, timing="ttft=0.01,tps=200,tokens=40")
    runtime = SessionRuntime([session], simulator=lambda: sim_url)
    await runtime.open_store(db_path)
    await runtime.start()
    controller = runtime.controller(session.name)
    follower = Follower()
    controller.subscribe(follower)
    try:
        controller.start()
        await until(
            lambda: bool(follower.runs) and follower.runs[0].finished is not None, "the run"
        )
        (run,) = follower.runs
        await until(lambda: run.client_lag is not None, "its lag")
    finally:
        await runtime.close()
    lag = run.client_lag
    assert lag is not None
    async with await Store.open(db_path, readonly=True) as reader:
        stored = await reader.get_run(run.run_id)
    assert stored.client_lag_p99_ms is not None and stored.client_lag_p99_ms >= 0
    assert stored.client_bound is run.client_bound
    assert stored.client_lag_p99_ms == run.result()["client_lag_p99_ms"]
