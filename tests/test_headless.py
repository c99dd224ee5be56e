"""``tokentop run`` against the real simulator over loopback: records, exit codes, Ctrl-C."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.contract import CLIENT_LAG_KEYS, RESULT_KEYS
from tui.config import SessionConfig, example_config_path, load_config
from tui.headless import RunOptions, run_sessions, select_sessions
from tui.headless.output import failure_line, summary_table
from tui.store import Store
from tui.stream.events import RunError
from tui.vocab import MISSING


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``tokentop`` subprocess: private XDG dirs, no TOKENTOP_DB."""
    env = {k: v for k, v in os.environ.items() if k != "TOKENTOP_DB"}
    env.update(
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def tokentop(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 50
) -> subprocess.CompletedProcess[str]:
    """Run ``tokentop ARGS`` as a real subprocess (cwd = tmp_path)."""
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        capture_output=True,
        text=True,
        env=env or cli_env(tmp_path),
        cwd=tmp_path,
        timeout=timeout,
        check=False,
    )


def write_config(tmp_path: Path, text: str, name: str = "sessions.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def json_lines(stdout: str) -> list[dict[str, Any]]:
    """Every stdout line must be one JSON object."""
    return [json.loads(line) for line in stdout.splitlines()]


async def stored_runs(db: Path, run_ids: list[str]) -> dict[str, Any]:
    """The stored runs (RunDetail) by id."""
    store = await Store.open(db, readonly=True)
    try:
        return {run_id: await store.get_run(run_id) for run_id in run_ids}
    finally:
        await store.close()


async def test_example_config_jsonl(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    proc = tokentop(tmp_path, "run", str(example_config_path()), "--jsonl", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    records = json_lines(proc.stdout)
    assert {r["type"] for r in records} == {"progress", "result", "conversation"}
    results = [r for r in records if r["type"] == "result"]
    config = load_config(example_config_path(), environ={})
    conversations = sum(s.repeat.count if s.repeat else 1 for s in config.sessions)
    expected_runs = sum(
        (s.repeat.count if s.repeat else 1) * len(s.script) for s in config.sessions
    )
    assert len(results) == expected_runs
    assert len({r["run_id"] for r in results}) == expected_runs
    # one conversation record after the last turn of each conversation
    talks = [r for r in records if r["type"] == "conversation"]
    assert len(talks) == conversations and all(t["ended"] == "completed" for t in talks)
    assert {r["conversation_id"] for r in results} == {t["conversation_id"] for t in talks}
    for r in results:
        assert set(r) == RESULT_KEYS | CLIENT_LAG_KEYS | {"type"}, set(r) ^ RESULT_KEYS
        assert r["turn"] >= 1 and r["conversation_id"]
        assert r["status"] in ("completed", "incomplete"), r
        assert r["error"] is None and r["ttft_ms"] > 0 and r["output_tokens"] > 0
        assert set(r["itl_ms"]) == {"p50", "p95", "p99"}
    by_session = {r["session"]: r for r in results}
    assert set(by_session) == {s.name for s in config.sessions}
    for session in config.sessions:
        r = by_session[session.name]
        assert (r["api"], r["model"]) == (session.api, session.model)
        if session.max_output_tokens:
            assert (r["status"], r["finish_reason"]) == ("incomplete", "length")
            assert r["output_tokens"] == session.max_output_tokens
        if session.model == "sim-tools":
            assert r["finish_reason"] == "tool_calls"
            (call,) = r["tool_calls"]
            assert call["name"] == "get_weather" and "city" in json.loads(call["arguments"])
        if session.model == "sim-think":
            assert r["reasoning_text"] and r["output_text"]
        if session.model == "sim-flaky":
            assert r["status"] == "completed" and r["resumes"] >= 1
            assert r["attempts"] >= 2 and len(r["attempt_log"]) == r["attempts"]
    progress = [r for r in records if r["type"] == "progress"]
    assert progress and {p["session"] for p in progress} <= set(by_session)
    assert all(p["run_id"] in {r["run_id"] for r in results} for p in progress)
    # every run was stored, with the same outcome
    stored = await stored_runs(db, [r["run_id"] for r in results])
    for r in results:
        assert stored[r["run_id"]].status == r["status"]
        assert stored[r["run_id"]].output_text == r["output_text"]


def test_failing_sessions_exit_1_with_a_summary(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        """
        [defaults]
        reconnect = { max_retries = 1, backoff_initial_s = 0.05, backoff_max_s = 0.1 }

        [[sessions]]
        name = "fine"
        model = "sim-fast"
        prompt = "hello"
        headers = { "X-Sim-Timing" = "tokens=20" }

        [[sessions]]
        name = "broken"
        model = "sim-broken"
        prompt = "hello"

        [[sessions]]
        name = "down"
        api = "chat"
        model = "sim"
        prompt = "hello"
        headers = { "X-Sim-Fault" = "status=500*99" }
        """,
    )
    proc = tokentop(tmp_path, "run", str(config), "--no-store")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(r"^\[broken\] failed: .*502", proc.stderr, re.M), proc.stderr
    assert re.search(r"^\[down\] failed: .*500", proc.stderr, re.M), proc.stderr
    assert re.search(r"^\[fine\] completed \(stop\)", proc.stderr, re.M), proc.stderr
    header, rule, *rows = proc.stdout.splitlines()
    assert header.split() == [
        "session",
        "model",
        "status",
        "finish",
        "tokens",
        "ttft",
        "tok/s",
        "tpot",
        "attempts",
        "note",
    ]
    assert set(rule) <= {"-", " "}
    cells = {row.split()[0]: row.split() for row in rows}
    assert cells["fine"][1:4] == ["sim-fast", "completed", "stop"] and cells["fine"][4] == "20"
    assert cells["broken"][2:4] == ["failed", "error"]
    assert cells["down"][2] == "failed" and cells["down"][-1] == "2"  # 1 retry


def test_bad_config_and_bad_arguments_exit_2(tmp_path: Path) -> None:
    broken = write_config(
        tmp_path,
        '[[sessions]]\nname = "a"\nmodel = "sim"\nprompt = "p"\nmax_output_tokens = "9"\n',
        "broken.toml",
    )
    proc = tokentop(tmp_path, "run", str(broken))
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"{broken}:5, session 'a', key 'max_output_tokens'" in proc.stderr
    assert "Traceback" not in proc.stderr

    good = write_config(tmp_path, '[[sessions]]\nname = "a"\nmodel = "sim"\nprompt = "p"\n')
    proc = tokentop(tmp_path, "run", str(good), "--only", "nope", "--no-store")
    assert proc.returncode == 2 and "no session matches 'nope'" in proc.stderr
    assert "sessions: 'a'" in proc.stderr  # the candidates

    proc = tokentop(tmp_path, "run", str(good), "--prompt", " ", "--no-store")
    assert proc.returncode == 2 and "--prompt" in proc.stderr

    proc = tokentop(tmp_path, "run", str(tmp_path / "missing.toml"))
    assert proc.returncode == 2 and "file not found" in proc.stderr

    # a database that cannot be opened stops before anything runs
    (tmp_path / "a-file").write_text("")
    proc = tokentop(tmp_path, "run", str(good), "--db", str(tmp_path / "a-file" / "runs.db"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert "a-file" in proc.stderr and "--no-store" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_env_var_exits_2_naming_it(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        """
        [[sessions]]
        name = "remote"
        model = "gpt-5"
        prompt = "p"
        base_url = "https://api.tokenlab.sh/v1"
        api_key_env = "TOKENTOP_TEST_ABSENT_KEY"
        """,
    )
    env = cli_env(tmp_path)
    env.pop("TOKENTOP_TEST_ABSENT_KEY", None)
    proc = tokentop(tmp_path, "run", str(config), env=env)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "session 'remote', key 'api_key_env'" in proc.stderr
    assert "TOKENTOP_TEST_ABSENT_KEY is not set" in proc.stderr


def test_auth_failure_names_the_variable_never_the_key(
    tmp_path: Path, sim_url: str, sim_key: str
) -> None:
    canary = "sk-canary-" + "7f3a9c" * 4
    config = write_config(
        tmp_path,
        f"""
        [[sessions]]
        name = "gpt-5 poem"
        model = "gpt-5"
        prompt = "Write a short poem."
        base_url = "{sim_url}"
        api_key_env = "TOKENTOP_TEST_KEY"
        headers = {{ "X-Sim-Fault" = "status=401*99", "X-Sim-Key" = "{sim_key}" }}
        """,
    )
    db = tmp_path / "runs.db"
    proc = tokentop(
        tmp_path,
        "run",
        str(config),
        "--jsonl",
        "--db",
        str(db),
        env=cli_env(tmp_path, TOKENTOP_TEST_KEY=canary),
    )
    assert proc.returncode == 1
    assert re.search(r"^\[gpt-5 poem\] failed: .*401.*TOKENTOP_TEST_KEY", proc.stderr, re.M)
    result, conversation = json_lines(proc.stdout)
    assert conversation["type"] == "conversation" and conversation["ended"] == "stopped"
    assert result["status"] == "failed" and result["error"]["status"] == 401
    assert result["attempts"] == 1  # 401 is never retried
    assert canary not in proc.stdout + proc.stderr
    for path in tmp_path.rglob("*"):  # the database, its -wal/-shm and the writers' lock files
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path


async def test_only_and_prompt(tmp_path: Path, sim_key: str) -> None:
    config = load_config(
        write_config(
            tmp_path,
            f"""
            [defaults]
            model = "sim-fast"
            prompt = "the file's prompt"
            headers = {{ "X-Sim-Timing" = "tokens=12", "X-Sim-Key" = "{sim_key}" }}
            [[sessions]]
            name = "a"
            [[sessions]]
            name = "b"
            api = "chat"
            [[sessions]]
            name = "c"
            """,
        ),
        environ={},
    )
    sessions = select_sessions(config, ["c", "a"])
    assert [s.name for s in sessions] == ["a", "c"]  # file order
    with pytest.raises(KeyError, match="no session matches 'zz'"):
        select_sessions(config, ["a", "zz"])
    db = tmp_path / "runs.db"
    out, err = io.StringIO(), io.StringIO()
    options = RunOptions(jsonl=True, prompt="an override", db_path=db)
    status = await run_sessions(sessions, options, out=out, err=err, interactive=False)
    assert status == 0, err.getvalue()
    results = [r for r in json_lines(out.getvalue()) if r["type"] == "result"]
    assert sorted(r["session"] for r in results) == ["a", "c"]
    stored = await stored_runs(db, [r["run_id"] for r in results])
    assert {run.session: run.prompt for run in stored.values()} == {
        "a": "an override",
        "c": "an override",
    }


async def test_repeat_runs_every_interval(tmp_path: Path, sim_key: str) -> None:
    config = load_config(
        write_config(
            tmp_path,
            f"""
            [[sessions]]
            name = "pulse"
            model = "sim-fast"
            prompt = "ping"
            headers = {{ "X-Sim-Timing" = "tokens=4,ttft=0.01", "X-Sim-Key" = "{sim_key}" }}
            repeat = {{ every_s = 0.5, count = 3 }}
            """,
        ),
        environ={},
    )
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    status = await run_sessions(
        config.sessions, RunOptions(jsonl=True, store=False), out=out, err=err, interactive=False
    )
    elapsed = time.monotonic() - started
    assert status == 0
    results = [r for r in json_lines(out.getvalue()) if r["type"] == "result"]
    assert [r["session"] for r in results] == ["pulse"] * 3
    assert len({r["run_id"] for r in results}) == 3
    assert elapsed >= 1.0  # runs start at 0, 0.5 and 1.0 s


async def test_progress_modes(tmp_path: Path, sim_key: str) -> None:
    config = load_config(
        write_config(
            tmp_path,
            f"""
            [[sessions]]
            name = "steady"
            model = "sim"
            prompt = "p"
            headers = {{ "X-Sim-Timing" = "tokens=60,tps=40,ttft=0.05", "X-Sim-Key" = "{sim_key}" }}
            """,
        ),
        environ={},
    )
    # not a terminal: plain lines, about one per second, no escape codes
    out, err = io.StringIO(), io.StringIO()
    assert await run_sessions(config.sessions, RunOptions(store=False), out=out, err=err) == 0
    lines = err.getvalue().splitlines()
    assert "\x1b" not in err.getvalue()
    # live, before the server's usage, the count is chunks and says so
    progress = [line for line in lines if line.startswith("steady ") and " ch/s" in line]
    assert 1 <= len(progress) <= 3, lines
    assert lines[-1].startswith("[steady] completed (stop): 60 tokens")
    assert out.getvalue().splitlines()[2].split()[:4] == ["steady", "sim", "completed", "stop"]
    # a terminal: the block is redrawn in place (cursor up + clear), several times a second
    out, err = io.StringIO(), io.StringIO()
    options = RunOptions(store=False)
    assert await run_sessions(config.sessions, options, out=out, err=err, interactive=True) == 0
    assert err.getvalue().count("\x1b[1F\x1b[J") >= 4
    assert "[steady] completed (stop)" in err.getvalue()


@pytest.fixture
def slow_config(tmp_path: Path) -> Iterator[Path]:
    yield write_config(
        tmp_path,
        """
        [defaults]
        prompt = "a long answer please"
        headers = { "X-Sim-Timing" = "tokens=4000,tps=40,ttft=0.05" }

        [[sessions]]
        name = "slow responses"
        model = "sim"
        background = true

        [[sessions]]
        name = "slow chat"
        api = "chat"
        model = "sim"

        [[sessions]]
        name = "monitor"
        model = "sim-fast"
        headers = { "X-Sim-Timing" = "tokens=5" }
        repeat = { every_s = 0.3, count = 0 }
        """,
    )


def _read_lines(stream: Any, sink: list[str], seen: threading.Event) -> None:
    for line in stream:
        sink.append(line)
        seen.set()


def signal_when(
    tmp_path: Path,
    args: list[str],
    signum: signal.Signals,
    ready: Callable[[list[str], list[str]], bool],
) -> tuple[int, list[str], list[str]]:
    """Start ``tokentop ARGS``, send ``signum`` once ``ready(stdout_lines, stderr_lines)``,
    and return the exit status and every line of stdout and stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(tmp_path),
        cwd=tmp_path,
    )
    out: list[str] = []
    err: list[str] = []
    seen = threading.Event()
    readers = [
        threading.Thread(target=_read_lines, args=(stream, sink, seen), daemon=True)
        for stream, sink in ((proc.stdout, out), (proc.stderr, err))
    ]
    for reader in readers:
        reader.start()
    try:
        deadline = time.monotonic() + 40
        while not ready(list(out), list(err)):
            if time.monotonic() > deadline:
                pytest.fail(f"not ready in time: {out} {err}")
            seen.wait(0.5)
            seen.clear()
        proc.send_signal(signum)
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for reader in readers:
        reader.join(timeout=10)
    return status, out, err


def test_sigint_cancels_cleanly_and_prints_results(tmp_path: Path, slow_config: Path) -> None:
    def both_streaming(out: list[str], err: list[str]) -> bool:
        records = [json.loads(line) for line in out]
        streaming = {
            r["session"] for r in records if r["type"] == "progress" and r["output_tokens"]
        }
        return {"slow responses", "slow chat"} <= streaming

    db = tmp_path / "runs.db"
    args = ["run", str(slow_config), "--jsonl", "--db", str(db)]
    status, out, err = signal_when(tmp_path, args, signal.SIGINT, both_streaming)
    assert status == 0
    stderr = "".join(err)
    assert "Traceback" not in stderr and "interrupted: cancelling" in stderr
    results = [r for r in (json.loads(line) for line in out) if r["type"] == "result"]
    slow = {r["session"]: r for r in results if r["session"].startswith("slow")}
    assert set(slow) == {"slow responses", "slow chat"}
    for r in slow.values():
        assert (r["status"], r["finish_reason"]) == ("cancelled", "cancelled")
        assert r["output_text"] and 0 < r["output_tokens"] < 4000  # partial output kept
    monitor = [r for r in results if r["session"] == "monitor"]
    assert monitor and all(r["status"] in ("completed", "cancelled") for r in monitor)
    assert len(results) == len({r["run_id"] for r in results})
    # the store got every event up to the cancel
    stored = asyncio.run(stored_runs(db, [r["run_id"] for r in slow.values()]))
    for r in slow.values():
        assert stored[r["run_id"]].status == "cancelled"
        assert stored[r["run_id"]].output_text == r["output_text"]


def test_sigterm_without_jsonl_still_prints_the_table(tmp_path: Path, slow_config: Path) -> None:
    def both_streaming(out: list[str], err: list[str]) -> bool:
        names = ("slow responses", "slow chat")
        # live, before the server's usage, the count is chunks: "37 ch"
        return all(
            any(re.match(rf"{n} +streaming +[1-9]\d* ch ", line) for line in err) for n in names
        )

    args = ["run", str(slow_config), "--no-store"]
    status, out, err = signal_when(tmp_path, args, signal.SIGTERM, both_streaming)
    assert status == 0
    assert not any("Traceback" in line for line in err)
    rows = [line.split() for line in out[2:]]
    slow = [row for row in rows if row[0] == "slow"]
    assert len(slow) == 2 and all(row[3:5] == ["cancelled", "cancelled"] for row in slow)


def test_summary_table_formats_missing_values() -> None:
    table = summary_table(
        [
            {
                "session": "s",
                "model": "m",
                "status": "failed",
                "finish_reason": "error",
                "output_tokens": 0,
                "tokens_estimated": True,
                "ttft_ms": None,
                "tokens_per_s": None,
                "attempts": 2,
            }
        ]
    )
    # a missing value is the one mark every view uses
    row = table.splitlines()[2].split()
    assert row == ["s", "m", "failed", "error", "~0", MISSING, MISSING, MISSING, "2"]


def test_without_a_config_the_example_runs(tmp_path: Path) -> None:
    proc = tokentop(tmp_path, "run", "--only", "capped · length")
    assert proc.returncode == 0, proc.stderr
    (row,) = (line.split() for line in proc.stdout.splitlines()[2:])
    assert row[:6] == ["capped", "·", "length", "sim", "incomplete", "length"]
    # stored in the default database (here under the private XDG data directory)
    assert (tmp_path / "xdg-data" / "tokentop" / "tokentop.db").is_file()


def test_failure_line_hints_at_the_key_variable() -> None:
    remote = SessionConfig(name="gpt-5 poem", model="gpt-5", prompt="p", api_key_env="MY_KEY")
    keyless = SessionConfig(name="local", model="m", prompt="p")
    denied = RunError("auth", "Unauthorized", http_status=401)
    assert (
        failure_line(remote, denied) == "[gpt-5 poem] failed: HTTP 401: Unauthorized — check MY_KEY"
    )
    assert failure_line(keyless, denied).endswith("set api_key_env in the session")
    named = RunError("auth", "HTTP 401: the key in MY_KEY was rejected", http_status=401)
    assert failure_line(remote, named) == f"[gpt-5 poem] failed: {named.message}"
    dropped = RunError("dropped", "the connection broke after 40 events")
    assert failure_line(keyless, dropped) == f"[local] failed: {dropped.message}"
