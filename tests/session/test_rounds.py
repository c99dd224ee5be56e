"""Compare rounds over loopback HTTP to the simulator: the three orders really take turns as
they say, exactly N runs per column (a session's repeat is not used), progress to listeners,
cancellation (by the round and from outside it), the ranking of a clearly slower model, the
cost per run at a session's price, and the round recorded in a real store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from tests.session.helpers import FAST, SLOW, until
from tests.stream.helpers import make_session
from tui.config import Repeat, SessionConfig
from tui.config.schema import Price
from tui.session import SessionRuntime
from tui.session.round_plan import RoundEntry, plan_round
from tui.session.rounds import Round
from tui.store import Store


def sim_session(name: str, key: str, timing: str = FAST, **changes: object) -> SessionConfig:
    """A ``base_url = "sim"`` session called ``name`` (its own scenario key)."""
    return replace(make_session(key=f"{key}-{name}", timing=timing), name=name, **changes)  # type: ignore[arg-type]


class Progress:
    """A round listener that keeps every call, in order."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, int]] = []
        """``("started" | "finished", session, index)``, plus the round's own start and end."""

    def round_started(self, round: Round) -> None:
        """Note it."""
        self.log.append(("round", "started", 0))

    def round_run_started(self, round: Round, entry: RoundEntry) -> None:
        """Note it (the run is live)."""
        assert entry.run is not None and entry.run.run_id == entry.run_id
        self.log.append(("started", entry.session, entry.index))

    def round_run_finished(self, round: Round, entry: RoundEntry) -> None:
        """Note it (the figures are known)."""
        assert entry.figures is not None
        self.log.append(("finished", entry.session, entry.index))

    def round_ended(self, round: Round) -> None:
        """Note it."""
        self.log.append(("round", round.status, 0))

    def starts(self) -> list[tuple[str, int]]:
        """The runs in the order they started."""
        return [(s, i) for what, s, i in self.log if what == "started"]


@pytest.fixture
async def runtime_of(sim_url: str) -> AsyncIterator[object]:
    """Makes started runtimes on the test simulator; closes them after the test."""
    made: list[SessionRuntime] = []

    async def make(sessions: Sequence[SessionConfig]) -> SessionRuntime:
        runtime = SessionRuntime(sessions, simulator=lambda: sim_url)
        made.append(runtime)
        await runtime.start()
        return runtime

    yield make
    for runtime in made:
        await runtime.close()


async def started(runtime_of: object, sessions: Sequence[SessionConfig]) -> SessionRuntime:
    """A started runtime of ``sessions``."""
    runtime: SessionRuntime = await runtime_of(sessions)  # type: ignore[operator]
    return runtime


def test_plans_take_turns_as_their_order_says() -> None:
    assert plan_round(["a", "b"], 2, "interleaved") == [
        [("a", 1)],
        [("b", 1)],
        [("a", 2)],
        [("b", 2)],
    ]
    assert plan_round(["a", "b"], 2, "sequential") == [
        [("a", 1)],
        [("a", 2)],
        [("b", 1)],
        [("b", 2)],
    ]
    assert plan_round(["a", "b"], 2, "parallel") == [[("a", 1), ("b", 1)], [("a", 2), ("b", 2)]]


async def test_interleaved_runs_one_at_a_time_across_the_columns(
    runtime_of: object, sim_key: str
) -> None:
    sessions = [sim_session(n, sim_key) for n in ("a", "b", "c")]
    runtime = await started(runtime_of, sessions)
    round = Round(runtime, ["a", "b", "c"], count=2)
    progress = Progress()
    round.subscribe(progress)
    assert await round.wait() == "done"

    assert progress.starts() == [("a", 1), ("b", 1), ("c", 1), ("a", 2), ("b", 2), ("c", 2)]
    # one at a time: each run finished before the next one started
    runs = progress.log[1:-1]
    assert [what for what, _, _ in runs] == ["started", "finished"] * 6
    assert progress.log[0] == ("round", "started", 0) and progress.log[-1] == ("round", "done", 0)
    assert round.finished == round.total == 6
    for column in round.columns():
        assert (column.runs, column.successes, column.planned) == (2, 2, 2)
    # the round's runs are the controllers' runs, with the ids it chose
    for name in ("a", "b", "c"):
        history = [s.run_id for s in runtime.controller(name).history]
        assert history == [e.run_id for e in round.entries if e.session == name]


async def test_sequential_runs_each_column_in_turn(runtime_of: object, sim_key: str) -> None:
    runtime = await started(runtime_of, [sim_session(n, sim_key) for n in ("a", "b")])
    round = Round(runtime, ["b", "a"], count=2, order="sequential")
    progress = Progress()
    round.subscribe(progress)
    assert await round.wait() == "done"
    assert progress.starts() == [("b", 1), ("b", 2), ("a", 1), ("a", 2)]


async def test_parallel_starts_each_step_at_once_and_waits_for_it(
    runtime_of: object, sim_key: str
) -> None:
    runtime = await started(runtime_of, [sim_session(n, sim_key) for n in ("a", "b", "c")])
    round = Round(runtime, ["a", "b", "c"], count=2, order="parallel")
    progress = Progress()
    round.subscribe(progress)
    assert await round.wait() == "done"
    runs = progress.log[1:-1]
    first, second = runs[:6], runs[6:]
    # every run of a step starts before any of them finishes, and the next step waits
    for step, index in ((first, 1), (second, 2)):
        assert {(s, i) for what, s, i in step[:3] if what == "started"} == {
            ("a", index),
            ("b", index),
            ("c", index),
        }
        assert [what for what, _, _ in step[3:]] == ["finished"] * 3


async def test_a_round_runs_exactly_n_runs_and_ignores_repeat(
    runtime_of: object, sim_key: str
) -> None:
    repeating = sim_session("repeats", sim_key, repeat=Repeat(every_s=0.01, count=5))
    runtime = await started(runtime_of, [repeating])
    round = Round(runtime, ["repeats"], count=2, prompt="Only this, please.")
    assert await round.wait() == "done"
    controller = runtime.controller("repeats")
    await controller.wait()
    assert controller.runs_started == controller.runs_finished == 2
    assert [e.run.prompt for e in round.entries if e.run] == ["Only this, please."] * 2


async def test_cancel_ends_the_current_run_and_skips_the_rest(
    runtime_of: object, sim_key: str
) -> None:
    runtime = await started(runtime_of, [sim_session(n, sim_key, SLOW) for n in ("a", "b")])
    round = Round(runtime, ["a", "b"], count=3)
    progress = Progress()
    round.subscribe(progress)
    round.start()
    a = runtime.controller("a")
    await until(lambda: a.current is not None and a.current.accumulator.output_text != "", "text")
    round.cancel()
    assert await asyncio.wait_for(round.wait(), 15) == "cancelled"

    first, *rest = round.entries
    assert first.figures is not None and first.figures.status == "cancelled"
    assert all(e.state == "skipped" for e in rest)
    assert progress.starts() == [("a", 1)]
    assert progress.log[-1] == ("round", "cancelled", 0)
    assert runtime.controller("b").runs_started == 0
    stats = {c.session: c for c in round.columns()}
    assert (stats["a"].runs, stats["a"].cancelled, stats["b"].runs) == (1, 1, 0)


async def test_a_run_cancelled_from_outside_cancels_the_round(
    runtime_of: object, sim_key: str
) -> None:
    runtime = await started(runtime_of, [sim_session(n, sim_key, SLOW) for n in ("a", "b")])
    round = Round(runtime, ["a", "b"], count=2, order="parallel")
    round.start()
    a, b = runtime.controller("a"), runtime.controller("b")
    await until(lambda: a.state == "streaming" and b.state == "streaming", "both streaming")
    a.cancel()  # the session's own cancel (or the runtime closing)
    await until(lambda: a.current is not None and a.current.done, "a's run to end")
    assert b.running  # the other column's run of this step goes on until it is cancelled
    b.cancel()
    assert await asyncio.wait_for(round.wait(), 15) == "cancelled"
    assert a.runs_started == b.runs_started == 1


async def test_a_clearly_slower_model_ranks_second(runtime_of: object, sim_key: str) -> None:
    quick = sim_session("quick", sim_key, "ttft=0.01,tps=400,tokens=20")
    slow = sim_session("slow", sim_key, "ttft=0.3,tps=400,tokens=20")
    broken = sim_session("broken", sim_key, model="sim-broken")
    broken = replace(broken, reconnect=replace(broken.reconnect, max_retries=0))
    runtime = await started(runtime_of, [slow, broken, quick])
    round = Round(runtime, ["slow", "broken", "quick"], count=3)
    assert await round.wait() == "done"

    ranking = round.ranking("ttft")
    assert [r.session for r in ranking.ranks] == ["quick", "slow", "broken"]
    assert ranking.winner == "quick" and ranking.ties == []
    second = ranking.ranks[1]
    assert second.place == 2 and second.ratio is not None and second.ratio > 1.5
    assert ranking.ranks[2].reason == "no successful run (3 failed)"
    columns = {c.session: c for c in round.columns()}
    assert columns["broken"].failures == 3 and columns["broken"].last_error
    assert columns["quick"].output_tokens == 20


async def test_overlapping_spreads_are_tied_and_a_clearly_slower_column_is_not(
    runtime_of: object, sim_key: str
) -> None:
    # "wide": its first run's first request gets a 503 and is retried after 0.25 s, so its
    # durations are about 60, 60 and 310 ms (p25-p75 about 60-185 ms); "middle" (about
    # 110 ms each) lies within that spread; "slow" (about 300 ms each) clearly above it
    wide = sim_session("wide", sim_key, "ttft=0.05,tps=0,tokens=20")
    wide = replace(
        wide,
        headers={**wide.headers, "X-Sim-Fault": "status=503*1"},
        reconnect=replace(wide.reconnect, backoff_initial_s=0.25, backoff_max_s=0.25),
    )
    middle = sim_session("middle", sim_key, "ttft=0.1,tps=0,tokens=20")
    slow = sim_session("slow", sim_key, "ttft=0.3,tps=0,tokens=20")
    runtime = await started(runtime_of, [wide, middle, slow])
    round = Round(runtime, ["slow", "middle", "wide"], count=3, order="parallel")
    assert await round.wait() == "done"

    ranking = round.ranking("duration")
    places = {r.session: r.place for r in ranking.ranks}
    assert places == {"wide": 1, "middle": 1, "slow": 3}, ranking
    # which of the tied two has the lower median is not the point (under load the 50 ms
    # between their medians can go either way); the tie lists them in their ranks' order
    (tie,) = ranking.ties
    assert sorted(tie) == ["middle", "wide"] and ranking.winner is None
    assert list(tie) == [r.session for r in ranking.ranks[:2]]
    assert ranking.ranks[2].tied_with == () and ranking.ranks[2].ratio > 1.5  # type: ignore[operator]


async def test_cost_per_run_at_a_sessions_price_and_unknown_without(
    runtime_of: object, sim_key: str
) -> None:
    priced = sim_session("priced", sim_key, price=Price(2.0, 8.0))
    unpriced = sim_session("unpriced", sim_key)
    runtime = await started(runtime_of, [priced, unpriced])
    round = Round(runtime, ["priced", "unpriced"], count=2)
    assert await round.wait() == "done"
    columns = {c.session: c for c in round.columns()}
    runs = round.figures("priced")
    assert all(r.input_tokens and r.output_tokens and not r.tokens_estimated for r in runs)
    expected = [(r.input_tokens * 2.0 + r.output_tokens * 8.0) / 1e6 for r in runs]  # type: ignore[operator]
    assert columns["priced"].cost_per_run_usd == pytest.approx(sum(expected) / 2)
    assert columns["unpriced"].cost_per_run_usd is None


async def test_bad_arguments_say_what_is_wrong(runtime_of: object, sim_key: str) -> None:
    runtime = await started(runtime_of, [sim_session("a", sim_key)])
    with pytest.raises(ValueError, match="no session called 'nope'"):
        Round(runtime, ["a", "nope"], count=1)
    with pytest.raises(ValueError, match="count must be 1 to"):
        Round(runtime, ["a"], count=0)
    with pytest.raises(ValueError, match="distinct"):
        Round(runtime, ["a", "a"], count=1)
    with pytest.raises(ValueError, match="order must be one of"):
        Round(runtime, ["a"], count=1, order="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one session"):
        Round(runtime, [], count=1)


async def test_a_round_is_recorded_with_its_runs(
    sim_url: str, sim_key: str, tmp_path: Path
) -> None:
    db = tmp_path / "tokentop.db"
    runtime = SessionRuntime(
        [sim_session(n, sim_key) for n in ("a", "b")], simulator=lambda: sim_url
    )
    await runtime.open_store(db)
    await runtime.start()
    try:
        round = Round(runtime, ["a", "b"], count=2, prompt="Same for both.")
        assert await round.wait() == "done"
    finally:
        await runtime.close()
    async with await Store.open(db, readonly=True) as reader:
        stored = await reader.get_round(round.id[:12])
    assert stored is not None
    assert (stored.id, stored.status, stored.count, stored.order) == (
        round.id,
        "done",
        2,
        "interleaved",
    )
    assert stored.prompt == "Same for both." and stored.sessions == ("a", "b")
    assert [(r.session, r.index, r.run_id) for r in stored.runs] == [
        (e.session, e.index, e.run_id) for e in round.entries
    ]


async def test_closing_the_runtime_ends_a_running_round_before_its_store(
    sim_url: str, sim_key: str, tmp_path: Path
) -> None:
    # A quit in the middle of a round: no run starts after the close began, and the round is
    # stored as cancelled (it records its end while the store is still open).
    db = tmp_path / "tokentop.db"
    runtime = SessionRuntime(
        [sim_session(n, sim_key, SLOW) for n in ("a", "b")], simulator=lambda: sim_url
    )
    await runtime.open_store(db)
    await runtime.start()
    progress = Progress()
    round = Round(runtime, ["a", "b"], count=3)
    round.subscribe(progress)
    round.start()
    await until(lambda: progress.starts() != [], "the first run of the round started")

    await runtime.close()
    assert round.status == "cancelled"
    assert progress.starts() == [("a", 1)]
    async with await Store.open(db, readonly=True) as reader:
        stored = await reader.get_round(round.id)
    assert stored is not None and stored.status == "cancelled"
