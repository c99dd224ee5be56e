"""Conversations in the store: real simulator runs recorded as the turns of conversations
(``start_run(conversation_id=, turn=)``, as the session layer records them), read back turn by
turn with their branches, listed and searched, exported (md, json, jsonl), replayed on the
conversation's timeline, pruned whole, and kept through the schema-6 migration."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.store.conftest import (
    as_older_jsonl,
    as_older_markdown,
    as_older_records,
    completed_events,
    make_session,
    record,
)
from tests.store.test_migrations import older_tokentop_holding, user_version
from tui.cli_store import export_command, history_command
from tui.config import SessionConfig
from tui.store import ConversationRecord, Store, StoreError, TurnStart, export
from tui.store.conversation_records import conversation_fields
from tui.store.export_conversation import export_conversation, named_run, to_json
from tui.store.replay import TURN_GAP_MAX_S, ReplayClock, next_turn_offset
from tui.store.schema import SCHEMA_VERSION
from tui.stream.events import RunEvent
from tui.stream.history import Conversation, Turn
from tui.stream.runner import StreamRun

DATA = Path(__file__).with_name("data")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as c:
        yield c


def talker(name: str, sim_url: str, sim_key: str, *, fault: str | None = None) -> SessionConfig:
    """A chat session of the simulator with a fast timing (and a fault, if any)."""
    headers = {"X-Sim-Timing": "ttft=0,tps=4000,tokens=16", "X-Sim-Key": sim_key}
    if fault:
        headers["X-Sim-Fault"] = fault
    return make_session(name, "sim", api="chat", headers=headers, prompt="unused")


class Talk:
    """A conversation held with the simulator: each turn a real run with the history of the
    kept turns, recorded as the session layer records it (completed and cut answers are
    kept; a failed try is sent again with the same turn number; an edit sends the last turn
    again with the same number)."""

    def __init__(
        self, store: Store, client: httpx.AsyncClient, sim_url: str, session: SessionConfig
    ) -> None:
        self.store, self.client, self.sim_url, self.session = store, client, sim_url, session
        self.id = uuid.uuid4().hex
        self.kept: list[Turn] = []

    async def send(self, prompt: str, *, session: SessionConfig | None = None) -> str:
        """The next turn; its run id."""
        return await self._turn(prompt, len(self.kept) + 1, session or self.session)

    async def edit(self, prompt: str, *, session: SessionConfig | None = None) -> str:
        """The last turn again with another prompt; its run id."""
        return await self._turn(prompt, len(self.kept), session or self.session)

    async def _turn(self, prompt: str, number: int, session: SessionConfig) -> str:
        earlier = tuple(self.kept[: number - 1])
        history = Conversation(turns=earlier, mode="client") if earlier else None
        run = StreamRun(
            session, client=self.client, base_url=self.sim_url, prompt=prompt, history=history
        )
        run_id = await self.store.start_run(
            session, prompt=prompt, conversation_id=self.id, turn=number
        )
        async for batch in run.batches():
            self.store.add_events(run_id, batch)
        await self.store.flush()
        stored = await self.store.get_run(run_id)
        if stored.status in ("completed", "incomplete"):
            del self.kept[number - 1 :]
            self.kept.append(Turn(prompt, stored.output_text))
        return run_id


async def branched(talk: Talk, failing: SessionConfig) -> dict[str, str]:
    """Turn 1; turn 2 failed, then sent again; turn 3, then edited: five runs."""
    runs = {"t1": await talk.send("Tell me about the sea.")}
    runs["t2 failed"] = await talk.send("Now shorter.", session=failing)
    runs["t2"] = await talk.send("Now shorter.")
    runs["t3 first"] = await talk.send("In Korean, about 바다.")
    runs["t3"] = await talk.edit("In Korean, about 바다, shorter.")
    return runs


# -- reading ---------------------------------------------------------------------------------


async def test_the_turns_of_a_conversation_read_back_in_order(
    store: Store, client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    talk = Talk(store, client, sim_url, talker("talk", sim_url, sim_key))
    prompts = ["Tell me about the sea.", "Now shorter.", "In Korean, about 바다."]
    run_ids = [await talk.send(p) for p in prompts]
    found = await store.get_conversation(talk.id)
    assert found is not None and found.id == talk.id
    assert (found.session, found.model) == ("talk", "sim")
    assert [t.turn for t in found.turns] == [1, 2, 3]
    assert [t.run.run_id for t in found.turns] == run_ids
    assert [t.run.prompt for t in found.turns] == prompts
    assert all(t.branches == () for t in found.turns)
    # the history arrived: the simulator says which turn it answers
    assert found.turns[2].run.output_text.startswith('(turn 3) Following up on "Now shorter."')
    inputs = [t.run.input_tokens or 0 for t in found.turns]
    assert inputs == sorted(inputs) and inputs[0] < inputs[2]  # the context grows
    for run in found.runs:
        assert (run.conversation_id, run.status) == (talk.id, "completed")
    # a run, or a prefix of a run or of the conversation, names the conversation
    for name in (run_ids[1], run_ids[1][:16], talk.id[:8], talk.id.upper()[:8]):
        again = await store.get_conversation(name)
        assert again is not None and again.id == talk.id, name
    assert [r.turn for r in await store.list_runs()] == [3, 2, 1]
    (summary,) = await store.list_conversations()
    assert (summary.id, summary.turns, summary.runs) == (talk.id, 3, 3)
    assert (summary.first_prompt, summary.last_status) == (prompts[0], "completed")
    assert summary.last_run_id == run_ids[2] and summary.session == "talk"
    assert summary.started_at <= summary.last_at
    assert summary.ended_at is not None and summary.ended_at >= summary.last_at
    assert conversation_fields(summary)["turns"] == 3


async def test_a_turn_sent_again_or_edited_keeps_its_other_runs_as_branches(
    store: Store, client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    talk = Talk(store, client, sim_url, talker("talk", sim_url, sim_key))
    runs = await branched(talk, talker("talk", sim_url, sim_key, fault="error=3"))
    found = await store.get_conversation(talk.id)
    assert found is not None
    one, two, three = found.turns
    assert (one.run.run_id, one.branches) == (runs["t1"], ())
    assert two.run.run_id == runs["t2"]
    assert [(b.run_id, b.status) for b in two.branches] == [(runs["t2 failed"], "failed")]
    assert three.run.run_id == runs["t3"] and three.run.prompt.endswith("shorter.")
    assert [b.run_id for b in three.branches] == [runs["t3 first"]]
    assert [run_id for run_id, _ in ((r.run_id, b) for r, b in two.tries)] == [
        runs["t2 failed"],
        runs["t2"],
    ]
    assert found.turn_of(runs["t3 first"]) == (three, True)
    assert found.turn_of(runs["t2"]) == (two, False)
    (summary,) = await store.list_conversations()
    assert (summary.turns, summary.runs, summary.last_run_id) == (3, 5, runs["t3"])
    # an edit that fails leaves the earlier answer as the turn's answer
    failed_edit = await talk.edit(
        "In Korean, again.", session=talker("t", sim_url, sim_key, fault="error=3")
    )
    found = await store.get_conversation(failed_edit)
    assert found is not None
    assert found.turns[2].run.run_id == runs["t3"]
    assert [b.run_id for b in found.turns[2].branches] == [runs["t3 first"], failed_edit]
    (summary,) = await store.list_conversations()
    assert (summary.last_status, summary.last_run_id) == ("failed", failed_edit)


async def test_a_run_without_a_conversation_is_a_one_turn_conversation_of_its_own(
    store: Store,
) -> None:
    run_id = await record(store, completed_events("alone here"))
    run = await store.get_run(run_id)
    assert (run.conversation_id, run.turn) == (run_id, 1)
    found = await store.get_conversation(run_id[:12])
    assert found is not None and found.id == run_id
    assert [(t.turn, t.run.run_id, t.branches) for t in found.turns] == [(1, run_id, ())]
    (summary,) = await store.list_conversations()
    assert (summary.id, summary.turns, summary.runs, summary.first_prompt) == (
        run_id,
        1,
        1,
        "Write a poem.",
    )
    # a later turn may name that run's id as its conversation
    follow_up = await store.start_run(make_session(), prompt="more", conversation_id=run_id, turn=2)
    found = await store.get_conversation(follow_up)
    assert found is not None and [t.run.run_id for t in found.turns] == [run_id, follow_up]


async def test_bad_conversation_ids_and_turns_are_refused(store: Store) -> None:
    session = make_session()
    for turn in (0, -1, True, 1.5, "2", 1_000_001):
        with pytest.raises(ValueError, match="whole number"):
            await store.start_run(session, prompt="p", turn=turn)  # type: ignore[arg-type]
    for cid in ("", "  ", " padded", "x" * 201, 7):
        with pytest.raises(ValueError, match="conversation id"):
            await store.start_run(session, prompt="p", conversation_id=cid)  # type: ignore[arg-type]
    assert await store.list_runs() == []


async def test_ids_and_prefixes_that_name_nothing_or_several(store: Store) -> None:
    session = make_session()
    first = await store.start_run(session, prompt="a", conversation_id="abc-one")
    await store.start_run(session, prompt="b", conversation_id="abc-two")
    assert await store.get_conversation("zzz") is None
    assert (found := await store.get_conversation("abc-o")) is not None and found.id == "abc-one"
    with pytest.raises(StoreError, match=r"'abc' is ambiguous: .*abc-one, abc-two"):
        await store.get_conversation("abc")
    with pytest.raises(StoreError, match="no conversation or run id given"):
        await store.get_conversation("  ")
    with pytest.raises(StoreError, match="no conversation or run 'zzz'"):
        [item async for item in store.replay_conversation("zzz")]
    # an exact id wins over the prefixes it is one of
    await store.start_run(session, prompt="c", conversation_id="abc-one-more")
    assert (found := await store.get_conversation("abc-one")) is not None
    assert [t.run.run_id for t in found.turns] == [first]


# -- lists and search ------------------------------------------------------------------------


async def test_lists_search_any_turn_and_order_by_last_activity(
    store: Store, client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    sea = Talk(store, client, sim_url, talker("sea", sim_url, sim_key))
    sky = Talk(store, client, sim_url, talker("sky", sim_url, sim_key))
    for n in (1, 2):
        await sea.send(f"About the sea, part {n}.")
        await sky.send(f"About the sky, part {n}.")
    await sea.send("And now 서울, the quokka word.")  # the needle: only in the sea's turn 3
    found = await store.list_conversations()
    assert [c.id for c in found] == [sea.id, sky.id]  # the sea talked last
    await sky.send("The sky again.")
    assert [c.id for c in await store.list_conversations()] == [sky.id, sea.id]
    for needle in ("quokka", "서울", "QUOKKA word"):
        (hit,) = await store.list_conversations(search=needle)
        # the whole conversation, not only the run that matched
        assert (hit.id, hit.turns, hit.first_prompt) == (sea.id, 3, "About the sea, part 1.")
    # the answers are searched too: the simulator's answers quote the turn before
    (hit,) = await store.list_conversations(search='Following "About the sea')
    assert hit.id == sea.id
    assert await store.list_conversations(search="quokka", session="sky") == []
    assert [c.id for c in await store.list_conversations(session="sky")] == [sky.id]
    assert len(await store.list_conversations(model="sim")) == 2
    assert [c.id for c in await store.list_conversations(limit=1)] == [sky.id]
    assert len(await store.list_conversations(finish="stop")) == 2
    assert await store.list_conversations(finish="length") == []
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await store.list_conversations(since=later) == []


# -- export ----------------------------------------------------------------------------------


async def test_export_holds_every_turn_and_marks_the_branches(
    db_path: Path, client: httpx.AsyncClient, sim_url: str, sim_key: str, tmp_path: Path
) -> None:
    async with await Store.open(db_path) as store:
        talk = Talk(store, client, sim_url, talker("talk", sim_url, sim_key))
        runs = await branched(talk, talker("talk", sim_url, sim_key, fault="error=3"))
        record_ = await store.get_conversation(talk.id)
        assert record_ is not None
        events = {r.run_id: await store.run_events(r.run_id) for r in record_.runs}
    runner = CliRunner()

    async def export(*args: str) -> str:
        argv = [*args, "--db", str(db_path)]
        result = await asyncio.to_thread(runner.invoke, export_command, argv)
        assert result.exit_code == 0, result.output
        return result.output

    md = await export(talk.id[:10])
    assert md.startswith("# talk · sim · 3 turns\n")
    assert f"| Conversation | `{talk.id}` |" in md and "| Turns | 3 (5 runs) |" in md
    assert md.count("\n## Turn ") == 5 and md.count(" · branch (not the turn's answer)") == 2
    assert md.index("## Turn 2 · branch") < md.index("## Turn 2\n")  # in the order they ran
    for run in record_.runs:
        assert f"`{run.run_id}`" in md and run.output_text in md
    assert "**server**" in md  # the failed try's error

    data = json.loads(await export(runs["t2"], "--format", "json"))  # a run: it is the top level
    assert (data["run_id"], data["turn"], data["branch"]) == (runs["t2"], 2, False)
    assert data["conversation_id"] == talk.id
    assert [t["run_id"] for t in data["turns"]] == [runs["t1"], runs["t2"], runs["t3"]]
    assert [[b["run_id"] for b in t["branches"]] for t in data["turns"]] == [
        [],
        [runs["t2 failed"]],
        [runs["t3 first"]],
    ]
    assert data["turns"][1]["branches"][0]["status"] == "failed"
    for turn in data["turns"]:
        assert {"prompt", "output_text", "finish_reason", "tool_calls", "usage", "ttft_ms"} <= set(
            turn
        )
    top = json.loads(await export(talk.id, "--format", "json"))  # the conversation: its last answer
    assert top["run_id"] == runs["t3"] and top["turns"] == data["turns"]
    branch = json.loads(await export(runs["t3 first"], "--format", "json"))
    assert (branch["run_id"], branch["branch"]) == (runs["t3 first"], True)
    # the pieces join to exactly what json.dumps writes of the whole
    whole = "".join(to_json(record_, record_.turns[-1].run))
    assert whole == json.dumps(json.loads(whole), ensure_ascii=False, indent=2) + "\n"

    out = tmp_path / "talk.jsonl"
    assert await export(talk.id, "--format", "jsonl", "-o", str(out)) == ""
    assert not list(tmp_path.glob(".*.part"))  # noqa: ASYNC240
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    heads = [line for line in lines if line["kind"] == "Turn"]
    assert [(h["turn"], h["run_id"], h["branch"]) for h in heads] == [
        (1, runs["t1"], False),
        (2, runs["t2 failed"], True),
        (2, runs["t2"], False),
        (3, runs["t3 first"], True),
        (3, runs["t3"], False),
    ]
    assert heads[3]["prompt"] == "In Korean, about 바다." and heads[4]["finish_reason"] == "stop"
    for head in heads:  # each run's events follow its line, each naming the run
        at = lines.index(head)
        mine = lines[at + 1 : at + 1 + len(events[head["run_id"]])]
        assert {(e["run_id"], e["turn"]) for e in mine} == {(head["run_id"], head["turn"])}
        assert [e["seq"] for e in mine] == list(range(len(mine)))
    assert len(lines) == len(heads) + sum(len(e) for e in events.values())


async def test_a_one_run_conversation_exports_as_the_run_did(store: Store) -> None:
    run_id = await record(store, completed_events("alone here"))
    found = await store.get_conversation(run_id)
    assert found is not None
    run = await store.get_run(run_id)
    events = await store.run_events(run_id)

    async def pieces(fmt: str) -> str:
        return "".join(
            [p async for p in export_conversation(store, found, fmt, top=run)]  # type: ignore[arg-type]
        )

    assert await pieces("md") == export.to_markdown(run)
    data = json.loads(await pieces("json"))
    assert data == json.loads(export.to_json(run))
    assert (data["conversation_id"], data["turn"]) == (run_id, 1)
    assert "turns" not in data and "branch" not in data
    head, *lines = map(json.loads, (await pieces("jsonl")).splitlines())
    assert (head["kind"], head["run_id"], head["branch"]) == ("Turn", run_id, False)
    assert [{k: v for k, v in e.items() if k not in ("run_id", "turn")} for e in lines] == [
        json.loads(line) for line in export.to_jsonl(events)
    ]


async def test_export_reads_one_run_of_events_at_a_time(store: Store) -> None:
    session = make_session()
    for turn in (1, 2, 3):
        run_id = await store.start_run(session, prompt=f"p{turn}", conversation_id="c", turn=turn)
        for event in completed_events(f"answer {turn}"):
            store.add_event(run_id, event)
    await store.flush()
    found = await store.get_conversation("c")
    assert found is not None
    log: list[str] = []

    class Watched:
        async def iter_run_events(
            self, run_id: str, batch: int = 10_000
        ) -> AsyncIterator[list[RunEvent]]:
            async for chunk in store.iter_run_events(run_id, batch=2):  # a few at a time
                log.append(f"read {len(chunk)}")
                yield chunk

    async for piece in export_conversation(Watched(), found, "jsonl", top=found.turns[-1].run):
        if '"kind": "Finished"' in piece:
            log.append("finished")
    # each run's events are read in batches and written before the next run's are read
    assert log == ["read 2", "read 2", "read 1", "finished"] * 3


async def test_named_run_picks_the_run_the_id_names(store: Store) -> None:
    session = make_session()
    for run_id, turn in (("r-aa", 1), ("r-ab", 2)):
        await store.start_run(session, prompt="p", run_id=run_id, conversation_id="c-1", turn=turn)
    found = await store.get_conversation("c-1")
    assert found is not None
    assert named_run(found, "r-ab").run_id == "r-ab"
    assert named_run(found, " R-AB ").run_id == "r-ab"
    assert named_run(found, "r-aa").run_id == "r-aa"
    assert named_run(found, "r-a").run_id == "r-ab"  # two runs have it: the last answer
    assert named_run(found, "c-1").run_id == "r-ab"
    assert named_run(found, "c").run_id == "r-ab"


# -- replay ----------------------------------------------------------------------------------


def shift_starts(db: Path, starts: dict[str, datetime]) -> None:
    """Move runs' recorded start in time (as if the person had paused between turns)."""
    con = sqlite3.connect(db)
    try:
        for run_id, at in starts.items():
            con.execute(
                "UPDATE runs SET started_at = ? WHERE run_id = ?",
                (at.isoformat(timespec="microseconds"), run_id),
            )
        con.commit()
    finally:
        con.close()


async def test_replay_plays_the_turns_on_one_timeline_with_short_pauses(
    db_path: Path, client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    async with await Store.open(db_path) as store:
        talk = Talk(store, client, sim_url, talker("talk", sim_url, sim_key))
        runs = await branched(talk, talker("talk", sim_url, sim_key, fault="error=3"))
    # the person paused 60 s after turn 1 and 0.5 s after turn 2
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    async with await Store.open(db_path, readonly=True) as store:
        one = await store.get_run(runs["t1"])
        two = await store.get_run(runs["t2"])
    assert one.ended_s is not None and two.ended_s is not None
    shift_starts(
        db_path,
        {
            runs["t1"]: t0,
            runs["t2 failed"]: t0 + timedelta(seconds=30),
            runs["t2"]: t0 + timedelta(seconds=60 + one.ended_s),
            runs["t3 first"]: t0 + timedelta(seconds=60.5 + one.ended_s + two.ended_s),
            runs["t3"]: t0 + timedelta(seconds=90 + one.ended_s + two.ended_s),
        },
    )
    async with await Store.open(db_path, readonly=True) as store:
        found = await store.get_conversation(talk.id)
        assert found is not None
        mains = [t.run for t in found.turns]
        # everything at once: a marker before each turn's answer, the branches left out
        items = [item async for item in store.replay_conversation(runs["t2"][:14])]
        starts = [i for i in items if isinstance(i, TurnStart)]
        assert [(s.turn, s.run_id, s.prompt) for s in starts] == [
            (r.turn, r.run_id, r.prompt) for r in mains
        ]
        played: list[list[RunEvent]] = []
        for item in items:
            if isinstance(item, TurnStart):
                played.append([])
            else:
                played[-1].append(item)
        assert played == [await store.run_events(r.run_id) for r in mains]
        # the timeline (an instant clock is moved to each item's place as it is played)
        clock = ReplayClock(1.0, now=lambda: 0.0)  # a wall clock that stands still
        clock.go_instant()
        places: list[tuple[TurnStart | RunEvent, float]] = []
        async for item in store.replay_conversation(talk.id, clock):
            places.append((item, clock.position))
    offsets = [s.offset_s for s in starts]
    end_one = max(one.ended_s, played[0][-1].t)
    end_two = max(two.ended_s, played[1][-1].t)
    assert offsets[0] == 0.0
    assert offsets[1] == pytest.approx(end_one + TURN_GAP_MAX_S)  # 60 s became 2 s
    # turn 3's answer came 30 s after the first try of turn 3, 30.5 s after turn 2's end:
    # the pause before the answer that is replayed is what counts
    assert offsets[2] == pytest.approx(offsets[1] + end_two + TURN_GAP_MAX_S)
    for item, at in places:
        if isinstance(item, TurnStart):
            turn_offset = item.offset_s
            assert at == pytest.approx(turn_offset)
        else:
            assert at == pytest.approx(turn_offset + item.t)
    assert [at for _, at in places] == sorted(at for _, at in places)


def test_the_pause_between_turns_is_shortened_not_dropped() -> None:
    assert next_turn_offset(0.0, 1.5, 0.25) == 1.75
    assert next_turn_offset(10.0, 1.5, 600.0) == 10.0 + 1.5 + TURN_GAP_MAX_S
    assert next_turn_offset(10.0, 1.5, -3.0) == 11.5  # overlapping runs: no pause
    assert TURN_GAP_MAX_S == 2.0


async def test_replay_at_speed_is_never_early(
    store: Store, client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    import time

    talk = Talk(store, client, sim_url, talker("talk", sim_url, sim_key))
    for prompt in ("one", "two"):
        await talk.send(prompt)
    clock = ReplayClock(10.0)
    started = time.monotonic()
    offset = 0.0
    seen = 0
    async for item in store.replay_conversation(talk.id, clock):
        offset = item.offset_s if isinstance(item, TurnStart) else offset
        place = offset if isinstance(item, TurnStart) else offset + item.t
        assert time.monotonic() - started >= place / 10.0 * 0.9
        seen += 1
    assert seen > 10 and clock.position >= offset


# -- retention -------------------------------------------------------------------------------


async def test_a_conversation_is_pruned_whole_once_its_last_turn_is_old(db_path: Path) -> None:
    session = make_session()
    async with await Store.open(db_path) as store:
        ids = {}
        for cid in ("old", "alive"):
            for turn in (1, 2):
                ids[cid, turn] = await record_turn(store, session, cid, turn)
    old = datetime.now(UTC) - timedelta(days=30)
    shift_starts(
        db_path,
        {ids["old", 1]: old, ids["old", 2]: old, ids["alive", 1]: old},  # alive: turn 2 is new
    )
    async with await Store.open(db_path) as store:
        assert (await store.prune(7 * 86400.0)).runs == 2
        assert [c.id for c in await store.list_conversations()] == ["alive"]
        alive = await store.get_conversation("alive")
        assert alive is not None and [t.turn for t in alive.turns] == [1, 2]


async def record_turn(store: Store, session: SessionConfig, cid: str, turn: int) -> str:
    run_id = await store.start_run(session, prompt=f"{cid} {turn}", conversation_id=cid, turn=turn)
    for event in completed_events(f"{cid} answer {turn}"):
        store.add_event(run_id, event)
    await store.flush()
    return run_id


# -- schema 5 databases (before conversations) ----------------------------------------------


@pytest.fixture
def v5_db(tmp_path: Path) -> Path:
    """The schema-5 database the V5 store wrote (``tests/store/data/make_v5.py``)."""
    db = tmp_path / "v5" / "tokentop.db"
    db.parent.mkdir()
    with gzip.open(DATA / "v5.db.gz") as src, db.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return db


def superset(new: dict[str, object], old: dict[str, object]) -> bool:
    return all(key in new and new[key] == value for key, value in old.items())


async def check_v5_runs(
    store: Store, expected: dict[str, dict[str, str]], *, as_is: bool = False
) -> None:
    """Every run of the V5 fixture reads as the V5 code read it, and is a one-turn
    conversation of its own (``as_is``: read without upkeep, the dead writer's run is still
    ``running``, as it is in the file)."""
    runs = await store.list_runs()
    assert {r.run_id for r in runs} == set(expected)
    for run in runs:
        want = expected[run.run_id]
        detail = await store.get_run(run.run_id)
        events = await store.run_events(run.run_id)
        if as_is and want["status"] == "interrupted":
            assert detail.status == "running" and detail.conversation_id == run.run_id
            continue
        assert detail.status == want["status"]
        assert (detail.conversation_id, detail.turn) == (run.run_id, 1)
        assert as_older_jsonl("".join(export.to_jsonl(events))) == want["jsonl"]
        new_json = json.loads(export.to_json(detail))
        older = as_older_records(new_json)
        assert superset(older, json.loads(want["json"]))
        assert set(older) - set(json.loads(want["json"])) == {"conversation_id", "turn"}
        assert as_older_markdown(export.to_markdown(detail)) == want["md"]
        found = await store.get_conversation(run.run_id)
        assert isinstance(found, ConversationRecord) and found.id == run.run_id
        pieces = [p async for p in export_conversation(store, found, "json", top=detail)]
        assert json.loads("".join(pieces)) == new_json
        replayed = [e async for e in store.replay_conversation(run.run_id)]
        assert replayed == [TurnStart(1, detail.prompt, run.run_id, 0.0), *events]
    listed = await store.list_conversations()
    assert sorted(c.id for c in listed) == sorted(expected)
    assert all(c.turns == c.runs == 1 for c in listed)


async def test_a_v5_database_reads_as_the_v5_code_read_it_one_turn_each(v5_db: Path) -> None:
    expected = json.loads((DATA / "v5_expected.json").read_text())
    assert user_version(v5_db) == 5
    async with await Store.open(v5_db) as store:  # upgrades, re-folds the dead writer's run
        assert await store.schema_version() == SCHEMA_VERSION
        await check_v5_runs(store, expected["runs"])
        alerts = [
            dataclasses.asdict(a) | {"at": a.at.isoformat()} for a in await store.list_alerts()
        ]
        assert alerts == expected["alerts"]
        from tui.store.records import round_fields

        assert [round_fields(r) for r in await store.list_rounds()] == expected["rounds"]
        # conversations go in next to the old runs
        session = make_session("new")
        first = await record_turn(store, session, "after-v5", 1)
        second = await record_turn(store, session, "after-v5", 2)
        found = await store.get_conversation("after-v5")
        assert found is not None and [t.run.run_id for t in found.turns] == [first, second]
        assert (await store.list_conversations())[0].id == "after-v5"
        assert (await store.prune(1e9)).runs == 0  # nothing is that old
    con = sqlite3.connect(v5_db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        # the old rows were left as they were: no conversation id written into them
        assert con.execute("SELECT count(*) FROM runs WHERE conversation_id IS NULL").fetchone()[
            0
        ] == len(expected["runs"])
    finally:
        con.close()


async def test_a_v5_database_read_as_it_is_has_one_turn_conversations(v5_db: Path) -> None:
    expected = json.loads((DATA / "v5_expected.json").read_text())
    with older_tokentop_holding(v5_db):
        async with await Store.open(v5_db, readonly=True) as reader:
            assert await reader.schema_version() == 5  # not upgraded: it could not be
            await check_v5_runs(reader, expected["runs"], as_is=True)
            assert len(await reader.list_conversations(search="바다")) == 2
            from tui.store.records import round_fields

            # as it is in the file: the dead writer's round is still running
            rounds = [round_fields(r) for r in await reader.list_rounds()]
            assert [r["status"] for r in rounds] == ["running", "done"]
            assert rounds[1] == expected["rounds"][1]
            assert rounds[0] | {"status": "interrupted", "ended_at": None} == expected["rounds"][
                0
            ] | {"ended_at": None}
        assert user_version(v5_db) == 5
    args = ["--db", str(v5_db), "--json"]
    result = await asyncio.to_thread(CliRunner().invoke, history_command, args)
    assert result.exit_code == 0, result.output  # free now: upgraded, then read
    assert {json.loads(line)["conversation_id"] for line in result.output.splitlines()} == set(
        expected["runs"]
    )
    assert user_version(v5_db) == SCHEMA_VERSION
