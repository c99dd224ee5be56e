"""Compare rounds in the store: which runs belong to which round and column, read back by
id prefix and in lists (also read-only), interrupted when their writer died or closed
without ending them, pruned with their last run, secrets kept out, and ``history --rounds``."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from tests.store.conftest import completed_events, make_session, record
from tests.store.test_retention import sim_session
from tui.cli_store import history_command
from tui.config import SessionConfig, StoreConfig
from tui.store import RoundRecord, RoundRun, Store, StoreError
from tui.store.queue import WriteQueue
from tui.stream.events import RawEvent, RunEvent, TextDelta
from tui.stream.runner import StreamRun


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as c:
        yield c


async def round_run(
    store: Store,
    round_id: str,
    session: SessionConfig,
    index: int,
    events: list[RunEvent] | None = None,
) -> str:
    """One run of ``session`` as the round runner records it: ``start_run``, then at once
    ``add_round_run``, then its events (default: a completed run)."""
    run_id = await store.start_run(session, prompt=session.prompt)
    store.add_round_run(round_id, session=session.name, index=index, run_id=run_id)
    store.add_events(
        run_id, completed_events(f"{session.name} {index}") if events is None else events
    )
    return run_id


def db_rows(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db, timeout=10)
    try:
        return list(con.execute(sql, args).fetchall())
    finally:
        con.close()


def backdate(db: Path, table: str, column: str, value: str, days: float) -> None:
    """Make a run (``runs``/``run_id``) or round (``rounds``/``round_id``) look as if it
    started ``days`` ago."""
    when = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="microseconds")
    con = sqlite3.connect(db, isolation_level=None, timeout=10)
    try:
        con.execute(f"UPDATE {table} SET started_at = ? WHERE {column} = ?", (when, value))
    finally:
        con.close()


async def test_a_round_of_simulator_runs_is_stored_and_read_back(
    db_path: Path, client: httpx.AsyncClient, sim_url: str
) -> None:
    """Two columns (chat, responses) of two runs each, interleaved, streamed from the
    simulator through the writer as the round runner does."""
    chat = sim_session("chat", sim_url, tokens=20)
    responses = sim_session("responses", sim_url, api="responses", tokens=20)
    before = time.time()
    async with await Store.open(db_path) as store:
        await store.start_round(
            "rnd0000000000000001",
            prompt="Compare this.",
            count=2,
            order="interleaved",
            sessions=["chat", "responses"],
        )
        started: list[tuple[str, int, str]] = []
        for index in (1, 2):
            for session in (chat, responses):
                run = StreamRun(session, client=client, base_url=sim_url, prompt="Compare this.")
                run_id = await store.start_run(session, prompt="Compare this.")
                store.add_round_run(
                    "rnd0000000000000001", session=session.name, index=index, run_id=run_id
                )
                async for batch in run.batches():
                    store.add_events(run_id, batch)
                started.append((session.name, index, run_id))
        want_runs = tuple(RoundRun(s, i, r) for s, i, r in started)
        running = await store.get_round("rnd00")
        assert running is not None
        assert (running.status, running.ended_at, running.runs) == ("running", None, want_runs)
        await store.end_round("rnd0000000000000001", status="done")
        after = time.time()
        (found,) = await store.list_rounds()
        assert found == await store.get_round("rnd0000000000000001")
        assert isinstance(found, RoundRecord)
        assert (found.id, found.prompt, found.count, found.order, found.status) == (
            "rnd0000000000000001",
            "Compare this.",
            2,
            "interleaved",
            "done",
        )
        assert found.sessions == ("chat", "responses") and found.runs == want_runs
        assert found.ended_at is not None
        assert before - 1 <= found.started_at <= found.ended_at <= after + 1
        for name, _, run_id in started:  # every run of the round is an ordinary stored run
            detail = await store.get_run(run_id)
            assert detail.session == name and detail.status == "completed"
    async with await Store.open(db_path, readonly=True) as reader:
        assert await reader.list_rounds() == [found]
        assert await reader.get_round("rnd0000000000000001") == found
        with pytest.raises(StoreError, match="read-only"):
            await reader.start_round("r", prompt="p", count=1, order="o", sessions=["chat"])


async def test_lists_prefixes_and_unknown_ids(store: Store) -> None:
    session = make_session("s")
    for n in range(3):
        await store.start_round(
            f"ab{n}", prompt=f"p{n}", count=1, order="sequential", sessions=["s"]
        )
        await round_run(store, f"ab{n}", session, 1)
        await store.end_round(f"ab{n}", status="done")
    assert [r.id for r in await store.list_rounds()] == ["ab2", "ab1", "ab0"]  # newest first
    assert [r.id for r in await store.list_rounds(limit=2)] == ["ab2", "ab1"]
    assert await store.list_rounds(since=time.time() + 60) == []
    assert len(await store.list_rounds(since=time.time() - 60)) == 3
    with pytest.raises(StoreError, match="ambiguous: it matches ab0, ab1, ab2"):
        await store.get_round("ab")
    assert (await store.get_round(" ab1 ")) is not None
    assert await store.get_round("zz") is None
    assert await store.get_round("a%") is None  # LIKE characters are literal
    with pytest.raises(StoreError, match="no round id given"):
        await store.get_round("  ")
    runs = (await store.list_runs(limit=10))[::-1]
    assert [r.runs[0].run_id for r in (await store.list_rounds())[::-1]] == [r.run_id for r in runs]


async def test_bad_calls_are_refused_clearly(store: Store) -> None:
    async def start(**kw: Any) -> None:
        args: dict[str, Any] = {"prompt": "p", "count": 2, "order": "sequential"}
        await store.start_round("r1", **({"sessions": ["a", "b"]} | args | kw))

    for kw, message in (
        ({"count": 0}, "count must be a whole number of 1 or more"),
        ({"count": True}, "count must be"),
        ({"order": " "}, "order must be named"),
        ({"sessions": []}, "one or more named sessions"),
        ({"sessions": ["a", "a"]}, "session 'a' is named twice"),
    ):
        with pytest.raises(ValueError, match=message):
            await start(**kw)
    with pytest.raises(ValueError, match="a round needs an id"):
        await store.start_round("", prompt="p", count=1, order="o", sessions=["a"])
    await start()
    with pytest.raises(StoreError, match="round r1 was already started"):
        await start()
    run_a = await store.start_run(make_session("a"), prompt="p")
    with pytest.raises(ValueError, match=r"session 'c' is not one of its columns \(a, b\)"):
        store.add_round_run("r1", session="c", index=1, run_id=run_a)
    for index in (0, 3):
        with pytest.raises(ValueError, match=f"run index {index} of 'a' is not between 1 and 2"):
            store.add_round_run("r1", session="a", index=index, run_id=run_a)
    with pytest.raises(StoreError, match=r"run nope was not started with Store\.start_run"):
        store.add_round_run("r1", session="a", index=1, run_id="nope")
    with pytest.raises(StoreError, match=r"round r9 was not started with Store\.start_round"):
        store.add_round_run("r9", session="a", index=1, run_id=run_a)
    store.add_round_run("r1", session="a", index=1, run_id=run_a)
    with pytest.raises(StoreError, match=f"run {run_a} is in round r1 already"):
        store.add_round_run("r1", session="a", index=2, run_id=run_a)
    run_b = await store.start_run(make_session("b"), prompt="p")
    with pytest.raises(ValueError, match="'a' has a run 1 already"):
        store.add_round_run("r1", session="a", index=1, run_id=run_b)
    with pytest.raises(ValueError, match="status 'finished' is not one of done, cancelled"):
        await store.end_round("r1", status="finished")
    await store.end_round("r1", status="cancelled")
    with pytest.raises(StoreError, match="round r1 has ended already"):
        await store.end_round("r1", status="done")
    with pytest.raises(StoreError, match="round r1 has ended: no run can be added"):
        store.add_round_run("r1", session="b", index=1, run_id=run_b)
    with pytest.raises(StoreError, match="round r2 was not started"):
        await store.end_round("r2", status="done")
    found = await store.get_round("r1")
    assert found is not None and found.status == "cancelled"
    assert found.runs == (RoundRun("a", 1, run_a),)  # nothing of the refused calls


async def test_a_round_run_is_committed_with_its_run(store: Store, db_path: Path) -> None:
    """The round's row of a run is in the same flush as the run's next checkpoint: no
    committed state has the run's final row without it."""
    seen: list[tuple[object, ...]] = []

    def check(_: int) -> None:  # after every committed flush, read as another process would
        seen.extend(
            db_rows(
                db_path,
                "SELECT r.status, rr.number FROM runs AS r "
                "LEFT JOIN round_runs AS rr ON rr.run = r.id",
            )
        )

    store.on_flush = check
    session = make_session("s")
    await store.start_round("r", prompt="p", count=3, order="sequential", sessions=["s"])
    for index in (1, 2, 3):
        await round_run(store, "r", session, index)
        await store.flush()
    assert seen and all(number is not None for _, number in seen), seen
    assert {status for status, _ in seen} == {"completed"}
    found = await store.get_round("r")
    assert found is not None and [r.index for r in found.runs] == [1, 2, 3]


def test_a_busy_flush_puts_round_rows_back_in_order() -> None:
    queue = WriteQueue("failed")
    queue.round_runs.append(("r", "run1", "s", 1))
    queue.round_prompts.append(("p", "r"))
    taken = queue.take(())
    assert not queue.waiting and taken.waiting
    queue.round_runs.append(("r", "run2", "s", 2))
    queue.put_back(taken)  # the flush found the database busy
    assert queue.round_runs == [("r", "run1", "s", 1), ("r", "run2", "s", 2)]
    assert queue.round_prompts == [("p", "r")]
    assert queue.clear() == 0 and not queue.waiting  # no events among them


async def test_closing_without_ending_interrupts_the_round(db_path: Path) -> None:
    session = make_session("s")
    async with await Store.open(db_path) as store:
        await store.start_round("open", prompt="p", count=2, order="sequential", sessions=["s"])
        await round_run(store, "open", session, 1)
        await store.start_round("ended", prompt="p", count=1, order="sequential", sessions=["s"])
        await round_run(store, "ended", session, 1)
        await store.end_round("ended", status="failed")
        before_close = time.time()
    async with await Store.open(db_path, readonly=True) as reader:
        interrupted = await reader.get_round("open")
        ended = await reader.get_round("ended")
    assert interrupted is not None and interrupted.status == "interrupted"
    assert interrupted.ended_at is not None and interrupted.ended_at >= before_close - 1
    assert len(interrupted.runs) == 1
    assert ended is not None and ended.status == "failed"


async def test_a_dead_writers_round_is_interrupted_by_the_next_writer(
    db_path: Path, tmp_path: Path
) -> None:
    """A copy of the file taken while its writer is alive is what a ``kill -9`` leaves: the
    round and its second run still running, their owner's lock gone."""
    session = make_session("s")
    copy = tmp_path / "copy" / "tokentop.db"
    copy.parent.mkdir()
    async with await Store.open(db_path) as store:
        await store.start_round("r", prompt="p", count=2, order="sequential", sessions=["s"])
        first = await round_run(store, "r", session, 1)
        second = await round_run(store, "r", session, 2, [TextDelta(0.25, "half")])
        await store.flush()
        async with await Store.open(db_path) as other:  # a live owner's round is left alone
            alive = await other.get_round("r")
            assert alive is not None and alive.status == "running"
        src, dst = sqlite3.connect(db_path), sqlite3.connect(copy)
        src.backup(dst)
        src.close()
        dst.close()
    async with await Store.open(copy) as store:
        found = await store.get_round("r")
        stale = await store.get_run(second)
        done = await store.get_run(first)
    assert found is not None and found.status == "interrupted"
    assert stale.status == "interrupted" and stale.ended_s == pytest.approx(0.25)
    # it ended when its last run did
    ends = [r.started_at.timestamp() + (r.ended_s or 0.0) for r in (stale, done)]
    assert found.ended_at == pytest.approx(max(ends), abs=1e-5)
    assert [r.run_id for r in found.runs] == [first, second]


async def test_prune_takes_a_round_with_its_last_run(db_path: Path) -> None:
    session = make_session("s")
    async with await Store.open(db_path) as store:
        ids: dict[str, list[str]] = {}
        for name, status in (("gone", "done"), ("half", "done"), ("live", None), ("none", "done")):
            await store.start_round(name, prompt="p", count=2, order="sequential", sessions=["s"])
            ids[name] = [await round_run(store, name, session, i) for i in (1, 2)]
            if status is not None:
                await store.end_round(name, status=status)
        await store.flush()
        for name in ("gone", "half", "live"):
            backdate(db_path, "rounds", "round_id", name, 10)
        for run_id in [*ids["gone"], ids["half"][0], *ids["live"]]:
            backdate(db_path, "runs", "run_id", run_id, 10)
        pruned = await store.prune(5 * 86400.0)
        assert pruned.runs == 5
        assert await store.get_round("gone") is None  # its runs all went
        half = await store.get_round("half")
        assert half is not None and half.runs == (RoundRun("s", 2, ids["half"][1]),)
        live = await store.get_round("live")  # a running round stays, runs or none
        assert live is not None and live.status == "running" and live.runs == ()
        assert [r.id for r in await store.list_rounds()] == ["none", "live", "half"]
        await store.end_round("live", status="done")
        await store.prune(5 * 86400.0)
        assert await store.get_round("live") is None
    assert db_rows(db_path, "PRAGMA foreign_key_check") == []
    assert db_rows(db_path, "SELECT count(*) FROM round_runs") == [(3,)]


async def test_an_api_key_in_the_prompt_stays_out_of_the_round(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-round-key-0123456789abcdef"
    monkeypatch.setenv("TT_ROUND_KEY", key)
    keyed = make_session("keyed", api_key_env="TT_ROUND_KEY")
    plain = make_session("plain")
    prompt = f"Say {key} back."
    async with await Store.open(db_path) as store:
        # the key is known from an earlier run: blanked out from the start
        await record(store, completed_events("earlier"), keyed)
        await store.start_round("known", prompt=prompt, count=1, order="o", sessions=["keyed"])
        known = await store.get_round("known")
        assert known is not None and key not in known.prompt and "[redacted]" in known.prompt
        await store.end_round("known", status="done")
    async with await Store.open(db_path) as store:
        # a fresh store learns the key with the round's first run of that session
        await store.start_round(
            "later", prompt=prompt, count=1, order="o", sessions=["plain", "keyed"]
        )
        await round_run(store, "later", plain, 1)
        await round_run(store, "later", keyed, 1)
        later = await store.get_round("later")
        assert later is not None and later.prompt == "Say [redacted] back."
        await store.end_round("later", status="done")
    prompts = db_rows(db_path, "SELECT prompt FROM rounds")
    assert len(prompts) == 2 and all(key not in str(p) for (p,) in prompts)


async def test_rounds_go_on_quietly_once_recording_stopped(db_path: Path) -> None:
    """After a write error (a full disk here) rounds, like runs, are accepted and dropped."""
    async with await Store.open(db_path, retention=StoreConfig(keep_raw_events="all")) as store:
        messages: list[str] = []
        store.on_error = messages.append
        session = make_session("s")
        await store.start_round("kept", prompt="p", count=1, order="o", sessions=["s"])
        await round_run(store, "kept", session, 1)
        await store.end_round("kept", status="done")
        run_id = await store.start_run(session, prompt="big")
        (pages,) = next(iter(await store._conn.execute_fetchall("PRAGMA page_count")))
        await store._conn.execute(f"PRAGMA max_page_count = {pages}")
        store.add_events(
            run_id, [RawEvent(0.01 + i * 1e-5, 1, "d", "x" * 200) for i in range(4000)]
        )
        await store.flush()
        assert store.errors and "recording stopped" in messages[0]
        await store.start_round("lost", prompt="p", count=1, order="o", sessions=["s"])
        lost_run = await round_run(store, "lost", session, 1)
        await store.end_round("lost", status="done")
        assert lost_run and await store.get_round("lost") is None
        assert [r.id for r in await store.list_rounds()] == ["kept"]


def invoke(db: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(history_command, [*args, "--db", str(db)])
    return result.exit_code, result.stdout, result.stderr


async def test_history_rounds_lists_them(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        await store.start_round(
            "cmp00000000000000001",
            prompt="p",
            count=2,
            order="interleaved",
            sessions=["quick · chat", "slow"],
        )
        runs = [
            await round_run(store, "cmp00000000000000001", make_session(name), i)
            for i in (1, 2)
            for name in ("quick · chat", "slow")
        ]
        await store.end_round("cmp00000000000000001", status="cancelled")
    code, out, err = await asyncio.to_thread(invoke, db_path, "--rounds")
    assert code == 0, err
    header, line = out.splitlines()
    assert header.split() == ["ROUND", "TIME", "SESSIONS", "COUNT", "ORDER", "STATUS", "RUNS"]
    assert line.startswith("cmp00000000000")
    assert "quick · chat, slow" in line and " interleaved " in line and " cancelled " in line
    assert line.endswith(" 4/4")
    code, out, _ = await asyncio.to_thread(invoke, db_path, "--rounds", "--json")
    (record_line,) = out.splitlines()
    fields = json.loads(record_line)
    assert fields["round_id"] == "cmp00000000000000001" and fields["status"] == "cancelled"
    assert fields["sessions"] == ["quick · chat", "slow"] and fields["count"] == 2
    assert [r["run_id"] for r in fields["runs"]] == runs
    assert fields["runs"][0] == {"session": "quick · chat", "index": 1, "run_id": runs[0]}
    assert datetime.fromisoformat(fields["started_at"]) <= datetime.fromisoformat(
        fields["ended_at"]
    )
    code, out, err = await asyncio.to_thread(invoke, db_path, "--rounds", "--since", "1h")
    assert code == 0 and "cmp0000" in out
    code, out, err = await asyncio.to_thread(
        invoke, db_path, "--rounds", "--since", "1h", "--limit", "1", "--json"
    )
    assert code == 0 and len(out.splitlines()) == 1
    code, _, err = await asyncio.to_thread(invoke, db_path, "--rounds", "--session", "slow")
    assert code == 2 and "--rounds takes --since, --limit and --json" in err
    code, out, err = await asyncio.to_thread(invoke, db_path)  # runs, as before
    assert code == 0 and len(out.splitlines()) == 5


async def test_history_rounds_of_a_database_without_any(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        await record(store, completed_events("no round"))
    code, out, err = await asyncio.to_thread(invoke, db_path, "--rounds")
    assert (code, out, err.strip()) == (0, "", "no rounds yet")
    code, out, err = await asyncio.to_thread(invoke, db_path, "--rounds", "--since", "1d")
    assert (code, out, err.strip()) == (0, "", "no rounds match")
