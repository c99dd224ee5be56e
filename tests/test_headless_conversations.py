"""``tokentop run`` holds scripted conversations with the real simulator: one result record
per turn (with ``conversation_id`` and ``turn``), a ``conversation`` record per conversation
(turns done and planned, tokens, duration, how it ended, the history mode and a fallback),
text lines and tables that say the same, the store's conversations, and an exit status that
counts a conversation that stopped early as a failure."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from tests.contract import CLIENT_LAG_KEYS, RESULT_KEYS
from tests.test_headless import json_lines, tokentop, write_config
from tui.config import load_config
from tui.headless import RunOptions, run_sessions
from tui.store import Store

QUICK = "ttft=0.01,tps=0,tokens=24"

TURNS = '["Name a river.", "How long is it?", "Say it in Korean."]'


async def run_config(
    tmp_path: Path, text: str, *, jsonl: bool = True, prompt: str | None = None
) -> tuple[int, str, str]:
    """``tokentop run`` of the sessions file ``text`` in this process: status, out, err."""
    config = load_config(write_config(tmp_path, text), environ={})
    out, err = io.StringIO(), io.StringIO()
    options = RunOptions(jsonl=jsonl, prompt=prompt, db_path=tmp_path / "runs.db")
    status = await run_sessions(config.sessions, options, out=out, err=err, interactive=False)
    return status, out.getvalue(), err.getvalue()


def of_type(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == kind]


async def test_scripted_conversations_print_a_result_per_turn_and_a_summary(
    tmp_path: Path, sim_key: str
) -> None:
    status, out, err = await run_config(
        tmp_path,
        f"""
        [defaults]
        model = "sim-fast"
        headers = {{ "X-Sim-Timing" = "{QUICK}", "X-Sim-Key" = "{sim_key}" }}
        turns = {TURNS}

        [[sessions]]
        name = "chat talk"
        api = "chat"
        repeat = {{ every_s = 0.01, count = 2 }}

        [[sessions]]
        name = "responses talk"
        messages = [{{ role = "developer", content = "Answer briefly." }}]
        """,
    )
    assert status == 0, err
    records = json_lines(out)
    results = of_type(records, "result")
    talks = of_type(records, "conversation")
    assert all(set(r) == RESULT_KEYS | CLIENT_LAG_KEYS | {"type"} for r in results)
    assert len(results) == 9 and len(talks) == 3
    for talk in talks:
        turns = [r for r in results if r["conversation_id"] == talk["conversation_id"]]
        assert [r["turn"] for r in turns] == [1, 2, 3]
        assert {r["session"] for r in turns} == {talk["session"]}
        assert turns[1]["output_text"].startswith('(turn 2) Following up on "Name a river."')
        assert (talk["turns_done"], talk["turns_planned"], talk["ended"]) == (3, 3, "completed")
        assert talk["input_tokens"] == sum(r["input_tokens"] for r in turns)
        assert talk["output_tokens"] == sum(r["output_tokens"] for r in turns)
        assert talk["run_ids"] == [r["run_id"] for r in turns]
        assert talk["history"] == "auto" and talk["history_fallback"] is False
        assert talk["api"] == ("chat" if talk["session"] == "chat talk" else "responses")
        assert talk["duration_ms"] > 0 and talk["stopped_at"] is None
        # the summary comes after the conversation's last result and before anything more of
        # its session (other sessions' records may come between: they run at the same time)
        at, last = records.index(talk), records.index(turns[-1])
        assert at > last
        assert not [r for r in records[last + 1 : at] if r.get("session") == talk["session"]]
    # a repetition is a new conversation of the same session
    assert [t["session"] for t in talks].count("chat talk") == 2
    assert len({t["conversation_id"] for t in talks}) == 3
    assert re.search(r"^\[chat talk · turn 2/3 · [0-9a-f]{8}\] completed \(stop\)", err, re.M)
    assert re.search(
        r"^\[responses talk\] conversation [0-9a-f]{8}: 3/3 turns completed", err, re.M
    )
    store = await Store.open(tmp_path / "runs.db", readonly=True)
    try:
        for talk in talks:
            stored = await store.get_conversation(talk["conversation_id"])
            assert stored is not None
            assert [t.run.run_id for t in stored.turns] == talk["run_ids"]
    finally:
        await store.close()


async def test_a_conversation_that_stops_early_fails_the_run(tmp_path: Path, sim_key: str) -> None:
    status, out, err = await run_config(
        tmp_path,
        f"""
        [[sessions]]
        name = "small window"
        model = "sim-small-context"
        headers = {{ "X-Sim-Timing" = "ttft=0.01,tps=0", "X-Sim-Key" = "{sim_key}" }}
        turns = {TURNS}

        [[sessions]]
        name = "fine"
        model = "sim-fast"
        headers = {{ "X-Sim-Timing" = "{QUICK}", "X-Sim-Key" = "{sim_key}" }}
        prompt = "One turn only."
        """,
    )
    assert status == 1
    records = json_lines(out)
    small = [r for r in of_type(records, "result") if r["session"] == "small window"]
    assert [(r["turn"], r["status"]) for r in small] == [
        (1, "completed"),
        (2, "completed"),
        (3, "failed"),
    ]
    message = small[2]["error"]["message"]
    assert message.startswith("turn 3 no longer fits the model's context window")
    (talk,) = [t for t in of_type(records, "conversation") if t["session"] == "small window"]
    assert (talk["ended"], talk["stopped_at"], talk["turns_done"]) == ("stopped", 3, 2)
    assert talk["reason"] == message
    assert re.search(
        r"^\[small window · turn 3/3 · [0-9a-f]{8}\] failed: turn 3 no longer", err, re.M
    )
    assert re.search(
        r"^\[small window\] conversation [0-9a-f]{8}: 2/3 turns stopped at turn 3", err, re.M
    )
    # a one-turn conversation gets its record too, and its lines stay as they were
    (one,) = [t for t in of_type(records, "conversation") if t["session"] == "fine"]
    assert (one["turns_planned"], one["ended"]) == (1, "completed")
    assert re.search(r"^\[fine\] completed \(stop\)", err, re.M)
    assert "[fine] conversation" not in err


async def test_the_tables_show_the_turns_and_the_conversations(
    tmp_path: Path, sim_key: str
) -> None:
    status, out, err = await run_config(
        tmp_path,
        f"""
        [[sessions]]
        name = "gateway"
        model = "sim-stateless-404"
        headers = {{ "X-Sim-Timing" = "{QUICK}", "X-Sim-Key" = "{sim_key}" }}
        turns = ["Name a river.", "How long is it?"]
        """,
        jsonl=False,
    )
    assert status == 0, err
    runs, conversations = out.strip().split("\n\n")
    header, _, *rows = runs.splitlines()
    assert header.split()[:3] == ["session", "turn", "model"]
    assert [row.split()[1] for row in rows] == ["1", "2"]
    header, _, row = conversations.splitlines()
    assert header.split() == [
        "session",
        "conversation",
        "turns",
        "input",
        "output",
        "time",
        "ended",
        "history",
    ]
    cells = row.split()
    assert cells[0] == "gateway" and re.fullmatch(r"[0-9a-f]{8}", cells[1])
    assert cells[2] == "2/2" and "completed" in cells
    assert row.endswith("auto, items since the server kept none")  # it kept nothing


async def test_prompt_replaces_a_script_with_one_turn(tmp_path: Path, sim_key: str) -> None:
    status, out, err = await run_config(
        tmp_path,
        f"""
        [[sessions]]
        name = "scripted"
        model = "sim-fast"
        headers = {{ "X-Sim-Timing" = "{QUICK}", "X-Sim-Key" = "{sim_key}" }}
        turns = {TURNS}
        """,
        prompt="Just this.",
    )
    assert status == 0, err
    records = json_lines(out)
    (result,) = of_type(records, "result")
    (talk,) = of_type(records, "conversation")
    assert result["turn"] == 1 and (talk["turns_done"], talk["turns_planned"]) == (1, 1)


def test_tokentop_run_holds_a_scripted_conversation(tmp_path: Path, sim_key: str) -> None:
    config = write_config(
        tmp_path,
        f"""
        [[sessions]]
        name = "talk"
        api = "chat"
        model = "sim-fast"
        headers = {{ "X-Sim-Timing" = "{QUICK}", "X-Sim-Key" = "{sim_key}" }}
        turns = ["one", "two"]
        """,
    )
    proc = tokentop(tmp_path, "run", str(config), "--jsonl", "--no-store")
    assert proc.returncode == 0, proc.stderr
    records = [r for r in json_lines(proc.stdout) if r["type"] != "progress"]
    assert [r["type"] for r in records] == ["result", "result", "conversation"]
    assert [r.get("turn") for r in records[:2]] == [1, 2]
    assert records[2]["turns_done"] == 2
