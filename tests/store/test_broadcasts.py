"""Compare broadcasts in the store (schema 8): the runs of one send share a broadcast id
(``start_run(broadcast_id=)``), which links their conversations as the columns of one
compare; the columns read back in the order they were sent and replay on one timeline."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from tests.store.conftest import completed_events, make_session
from tests.store.test_migrations import older_tokentop_holding
from tui.store import Store, StoreError, TurnStart
from tui.store.broadcasts import column_offsets
from tui.store.records import RunDetail
from tui.store.replay import TURN_GAP_MAX_S
from tui.stream.events import TextDelta


async def _turn(
    store: Store, session: str, conversation: str, turn: int, text: str, broadcast: str | None
) -> str:
    config = make_session(session, f"model-{session}")
    run_id = await store.start_run(
        config, prompt=f"prompt {turn}", conversation_id=conversation, turn=turn,
        broadcast_id=broadcast,
    )  # fmt: skip
    store.add_events(run_id, completed_events(text))
    return run_id


async def _compare(store: Store) -> None:
    """Two columns (left, right) that got two broadcasts, and a conversation held alone."""
    for turn, broadcast in ((1, "b1"), (2, "b2")):
        await _turn(store, "left", "conv-left", turn, f"left answer {turn}", broadcast)
        await _turn(store, "right", "conv-right", turn, f"right answer {turn}", broadcast)
    await _turn(store, "alone", "conv-alone", 1, "alone answer", None)
    await store.flush()


async def test_the_conversations_of_a_broadcast_are_its_columns_in_the_order_sent(
    store: Store,
) -> None:
    await _compare(store)
    for named in ("conv-left", "conv-right", "conv-r"):
        columns = await store.compared_conversations(named)
        assert [(c.conversation_id, c.session, c.model) for c in columns] == [
            ("conv-left", "left", "model-left"),
            ("conv-right", "right", "model-right"),
        ]
    (alone,) = await store.compared_conversations("conv-alone")
    assert (alone.conversation_id, alone.session) == ("conv-alone", "alone")
    run_id = (await store.get_conversation("conv-right")).turns[1].run.run_id  # type: ignore[union-attr]
    assert len(await store.compared_conversations(run_id)) == 2  # a run names its conversation
    with pytest.raises(StoreError, match="no conversation or run 'nothing'"):
        await store.compared_conversations("nothing")


async def test_a_broadcast_id_is_checked(store: Store) -> None:
    for bad in ("", " b1", "x" * 201):
        with pytest.raises(ValueError, match="broadcast id"):
            await store.start_run(make_session(), prompt="p", broadcast_id=bad)


async def test_the_columns_replay_each_turn_as_stored(store: Store) -> None:
    await _compare(store)
    records = [await store.get_conversation(c) for c in ("conv-left", "conv-right")]
    assert all(r is not None for r in records)
    for whole in (False, True):
        texts: dict[tuple[int, int], str] = {}
        current = {0: 0, 1: 0}
        items = [i async for i in store.replay_columns(records, whole=whole)]  # type: ignore[arg-type]
        for entry in items:
            if isinstance(entry.item, TurnStart):
                current[entry.column] = entry.item.turn
            elif isinstance(entry.item, TextDelta):
                key = (entry.column, current[entry.column])
                texts[key] = texts.get(key, "") + entry.item.text
        assert texts == {
            (0, 1): "left answer 1",
            (0, 2): "left answer 2",
            (1, 1): "right answer 1",
            (1, 2): "right answer 2",
        }
        if not whole:  # one timeline: turn 1 of both columns before turn 2 of either
            starts = [(e.column, e.item.turn) for e in items if isinstance(e.item, TurnStart)]
            assert starts[:2] in ([(0, 1), (1, 1)], [(1, 1), (0, 1)])
            places, offset = [], {0: 0.0, 1: 0.0}
            for entry in items:  # every item in the order of its place on the timeline
                if isinstance(entry.item, TurnStart):
                    offset[entry.column] = entry.item.offset_s
                    places.append(entry.item.offset_s)
                else:
                    places.append(offset[entry.column] + entry.item.t)
            assert places == sorted(places)


async def test_column_offsets_keep_overlaps_and_shorten_idle_pauses(store: Store) -> None:
    await _turn(store, "left", "c", 1, "a b c", None)
    await store.flush()
    base = (await store.get_conversation("c")).turns[0].run  # type: ignore[union-attr]

    def at(seconds: float, length: float) -> RunDetail:
        start = base.started_at + timedelta(seconds=seconds)
        return dataclasses.replace(base, started_at=start, ended_s=length)

    left = [at(0.0, 3.0), at(60.0, 1.0)]  # turn 2 a minute later
    right = [at(0.5, 1.0), at(60.2, 4.0)]
    offsets = column_offsets([left, right])
    assert offsets[0][0] == 0.0 and offsets[1][0] == pytest.approx(0.5)
    # nothing ran from 3 s to 60 s: that pause is shortened to TURN_GAP_MAX_S
    assert offsets[0][1] == pytest.approx(3.0 + TURN_GAP_MAX_S)
    assert offsets[1][1] - offsets[0][1] == pytest.approx(0.2)  # together, as sent
    assert column_offsets([[at(0.0, 1.0), at(1.5, 1.0)]])[0][1] == pytest.approx(1.5)
    # a turn stored as starting before the previous one ended starts when it ended
    assert column_offsets([[at(0.0, 1.0), at(0.5, 1.0)]])[0][1] == pytest.approx(1.0)


async def test_an_older_database_links_nothing(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        await _compare(store)
    with sqlite3.connect(db_path) as conn:  # the file as schema 7 left it
        conn.execute("DROP INDEX runs_by_broadcast")
        conn.execute("ALTER TABLE runs DROP COLUMN broadcast_id")
        conn.execute("PRAGMA user_version = 7")
    with older_tokentop_holding(db_path):  # read as it is: no upgrade
        async with await Store.open(db_path, readonly=True) as reader:
            assert await reader.schema_version() == 7
            (own,) = await reader.compared_conversations("conv-left")
            assert own.conversation_id == "conv-left"
    async with await Store.open(db_path) as store:  # upgraded: the old runs stay unlinked
        assert len(await store.compared_conversations("conv-left")) == 1
