"""Exports (md, json, jsonl) and the history / export commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from tests.contract import CLIENT_LAG_KEYS, RESULT_KEYS
from tests.store.conftest import every_kind_events, make_session
from tui.cli_store import export_command, history_command
from tui.config import SessionConfig
from tui.store import Store, result_record
from tui.store.export import to_json, to_jsonl, to_markdown
from tui.stream.events import EVENT_TYPES, Connecting, Finished, TextDelta, Usage

ROOT = Path(__file__).resolve().parents[2]


async def _fill(db: Path) -> tuple[str, str]:
    """Two runs: one with every event kind (failed after a resume), one completed."""
    async with await Store.open(db) as store:
        first = await store.start_run(make_session("every kind"), prompt="Prompt with `ticks`")
        for event in every_kind_events():
            store.add_event(first, event)
        second = await store.start_run(
            SessionConfig(name="simple", model="m2", prompt="Say hi", api="chat"), prompt="Say hi"
        )
        for event in (
            Connecting(0.0, 1, "POST", "u"),
            TextDelta(0.2, "Hi"),
            TextDelta(0.25, "!"),
            Usage(0.26, 3, 2),
            Finished(0.3, "completed", "stop", "stop"),
        ):
            store.add_event(second, event)
    return first, second


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, str, str]:
    import asyncio

    db = tmp_path / "t.db"
    first, second = asyncio.run(_fill(db))
    return db, first, second


def test_markdown_has_prompt_output_metrics_and_finish(filled: tuple[Path, str, str]) -> None:
    db, first, second = filled
    result = CliRunner().invoke(export_command, [second[:15], "--db", str(db)])
    assert result.exit_code == 0, result.output
    md = result.output
    assert md.startswith("# simple · m2\n")
    assert "## Prompt\n\n```\nSay hi\n```" in md
    assert "## Output\n\nHi!" in md
    assert "| Finish reason | stop |" in md
    assert "| TTFT | 200.0 ms |" in md
    assert "| Tokens/s | 20.00 |" in md  # (2 - 1) tokens / 0.05 s
    assert "| Status | completed |" in md
    # named for what they measure: per chunk, per output token (the server's count)
    assert "| Inter-chunk p50 / p95 / p99 | 50.00 ms / 50.00 ms / 50.00 ms |" in md
    assert "| TPOT (per output token) | 100.00 ms |" in md  # (300 - 200) ms / (2 - 1)
    assert "| Output tokens | 2 |" in md
    assert "Client-bound" not in md  # recorded without a session run: unknown, not shown
    result = CliRunner().invoke(export_command, [first, "--format", "md", "--db", str(db)])
    md = result.output
    assert "````\nPrompt with `ticks`\n````" not in md  # single backticks need no longer fence
    assert "## Error\n\n**server** (HTTP 500): in-band error" in md
    assert "## Tool calls" in md and '{"city": "Seoul"}' in md
    assert "## Reasoning\n\nthinking…" in md
    assert "| 2 | 0.600 s | resume | 200 | server: in-band error |" in md


def test_json_is_the_whole_run_with_attempts(filled: tuple[Path, str, str], tmp_path: Path) -> None:
    db, first, _ = filled
    out = tmp_path / "run.json"
    result = CliRunner().invoke(
        export_command, [first, "--format", "json", "-o", str(out), "--db", str(db)]
    )
    assert result.exit_code == 0 and result.output == ""
    data = json.loads(out.read_text())
    assert data["run_id"] == first and data["status"] == "failed"
    assert data["prompt"] == "Prompt with `ticks`"
    # a count, as in `run --jsonl` and `history --json`; the details in attempt_log
    assert data["attempts"] == 2
    assert [a["number"] for a in data["attempt_log"]] == [1, 2]
    assert data["attempt_log"][0]["cause"] == {
        "kind": "dropped",
        "status": None,
        "message": "connection reset",
    }
    assert data["attempt_log"][1]["resumed_after"] == 7
    assert data["attempt_log"][1]["mode"] == "resume"
    assert data["usage"]["total_tokens"] == 17 and data["response_id"] == "resp_abc"
    assert data["config"]["name"] == "every kind"
    assert data["events"] == len(every_kind_events())
    assert data["error"] == {"kind": "server", "status": 500, "message": "in-band error"}


def test_jsonl_is_a_line_for_the_run_then_one_per_event(filled: tuple[Path, str, str]) -> None:
    db, first, _ = filled
    result = CliRunner().invoke(export_command, [first, "--format", "jsonl", "--db", str(db)])
    assert result.exit_code == 0
    head, *lines = [json.loads(line) for line in result.output.splitlines()]
    # the run's own line: the whole run (as --format json has it), its turn, not a branch
    assert (head["kind"], head["turn"], head["branch"], head["run_id"]) == ("Turn", 1, False, first)
    assert head["prompt"] == "Prompt with `ticks`" and head["status"] == "failed"
    events = every_kind_events()
    assert len(lines) == len(events)
    for seq, (line, event) in enumerate(zip(lines, events, strict=True)):
        assert line["seq"] == seq and line["t"] == event.t
        assert line["kind"] == type(event).__name__
        assert (line["run_id"], line["turn"]) == (first, 1)
        fields = {k: v for k, v in line.items() if k not in ("seq", "kind", "run_id", "turn")}
        # the line holds the whole event: it converts back to the identical dataclass
        assert msgspec.convert(fields, type=EVENT_TYPES[line["kind"]]) == event


async def test_export_functions_agree_with_the_commands(tmp_path: Path) -> None:
    first, _ = await _fill(tmp_path / "t.db")
    async with await Store.open(tmp_path / "t.db", readonly=True) as store:
        run = await store.get_run(first)
        events = await store.run_events(first)
    assert to_markdown(run).endswith("\n")
    assert json.loads(to_json(run))["itl_ms"] == result_record(run)["itl_ms"]
    assert len(list(to_jsonl(events))) == len(events)


def test_history_lists_conversations_and_runs(filled: tuple[Path, str, str]) -> None:
    db, first, second = filled
    result = CliRunner().invoke(history_command, ["--db", str(db)])
    assert result.exit_code == 0, result.output
    header, newest, oldest = result.output.splitlines()
    assert header.split() == [
        "CONVERSATION", "TIME", "SESSION", "MODEL", "TURNS", "STATUS", "PROMPT"
    ]  # fmt: skip
    assert newest.startswith(second[:14])
    assert newest.split()[3:] == ["simple", "m2", "1", "completed", "Say", "hi"]
    assert oldest.startswith(first[:14]) and "every kind" in oldest and "failed" in oldest
    assert oldest.endswith("Prompt with `ticks`")
    result = CliRunner().invoke(history_command, ["--json", "--db", str(db)])
    found = [json.loads(line) for line in result.output.splitlines()]
    assert [(c["conversation_id"], c["turns"], c["runs"]) for c in found] == [
        (second, 1, 1),
        (first, 1, 1),
    ]
    assert found[0]["first_prompt"] == "Say hi" and found[0]["last_status"] == "completed"
    assert found[0]["last_run_id"] == second
    result = CliRunner().invoke(
        history_command, ["--json", "--search", "Hi", "--finish", "stop", "--db", str(db)]
    )
    assert [json.loads(line)["conversation_id"] for line in result.output.splitlines()] == [second]
    # --runs: the single runs, as the run --jsonl result records
    result = CliRunner().invoke(history_command, ["--runs", "--db", str(db)])
    assert result.exit_code == 0, result.output
    header, newest, oldest = result.stdout.splitlines()
    assert header.split() == [
        "TIME", "SESSION", "MODEL", "STATUS", "FINISH", "TOKENS", "TTFT", "ms", "TOK/S",
        "TPOT", "ms", "NOTE", "RUN",
    ]  # fmt: skip
    assert newest.split()[4:8] == ["completed", "stop", "2", "200"]  # the server's count
    assert "100.00" in newest.split()  # TPOT
    assert "simple" in newest and "completed" in newest and second[:14] in newest
    assert "every kind" in oldest and "failed" in oldest and first[:14] in oldest
    result = CliRunner().invoke(history_command, ["--runs", "--json", "--db", str(db)])
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r["run_id"] for r in records] == [second, first]
    keys = RESULT_KEYS | CLIENT_LAG_KEYS | {"started_at", "conversation_id", "turn"}
    assert all(set(r) == keys for r in records)
    assert records[0]["output_text"] == "Hi!" and records[0]["ttft_ms"] == 200.0
    assert (records[0]["conversation_id"], records[0]["turn"]) == (second, 1)
    result = CliRunner().invoke(
        history_command, ["--runs", "--json", "--search", "Hi", "--finish", "stop", "--db", str(db)]
    )
    assert [json.loads(line)["run_id"] for line in result.output.splitlines()] == [second]
    for args, says in (
        (["--runs", "--search", "nowhere"], "no runs match"),
        (["--search", "nowhere"], "no conversations match"),
        (["--runs", "--rounds"], "--runs and --rounds exclude each other"),
    ):
        result = CliRunner().invoke(history_command, [*args, "--db", str(db)])
        assert says in result.output, (args, result.output)


@pytest.mark.parametrize(
    ("command", "args", "code", "message"),
    [
        ("history", ["--db", "{missing}"], 1, "no database at"),
        ("export", ["abc", "--db", "{missing}"], 1, "no database at"),
        ("export", ["ffffffff", "--db", "{db}"], 1, "no conversation or run 'ffffffff'"),
        ("export", ["", "--db", "{db}"], 1, "no conversation or run id given"),
        ("export", ["{first}", "-o", "{missing}/x.md", "--db", "{db}"], 1, "cannot write"),
        ("export", ["{first}", "--format", "pdf", "--db", "{db}"], 2, "Invalid value"),
        ("history", ["--limit", "0", "--db", "{db}"], 2, "Invalid value"),
        ("history", ["--finish", "done", "--db", "{db}"], 2, "Invalid value"),
        ("history", ["--db", "{corrupt}"], 1, "not a tokentop database"),
    ],
)
def test_command_errors_are_one_line_and_no_traceback(
    filled: tuple[Path, str, str],
    tmp_path: Path,
    command: str,
    args: list[str],
    code: int,
    message: str,
) -> None:
    db, first, _ = filled
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"garbage" * 200)
    values = {"db": str(db), "missing": str(tmp_path / "none.db"), "first": first}
    values["corrupt"] = str(corrupt)
    argv = [a.format(**values) for a in args]
    cmd = history_command if command == "history" else export_command
    result = CliRunner().invoke(cmd, argv)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_commands_import_only_click() -> None:
    """`tokentop --help` stays fast: importing the commands loads no store machinery."""
    code = (
        "import sys, tui.cli_store as c; "
        "print(sorted(m for m in ('aiosqlite', 'msgspec', 'sqlite3', 'tui.store.store') "
        "if m in sys.modules)); print(c.history_command.name, c.export_command.name)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "history export"


def test_the_store_is_headless() -> None:
    code = (
        "import sys, tui.store, tui.store.store, tui.cli_store, tui.store.export; "
        "print([m for m in sys.modules if m.split('.')[0] in ('textual', 'rich') "
        "or m.startswith('tui.ui')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
