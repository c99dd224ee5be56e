"""The ``tokentop`` command line as a real subprocess: help, start-up cost, sim, errors."""

from __future__ import annotations

import json
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from tests.test_headless import cli_env, tokentop
from tui import __version__


def test_help_lists_every_command(tmp_path: Path) -> None:
    proc = tokentop(tmp_path, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "[CONFIG | COMMAND [ARGS]...]" in proc.stdout
    commands = proc.stdout.split("Commands:", 1)[1].split()
    for name in ("dashboard", "export", "history", "replay", "run", "sim"):
        assert name in commands, name
    run_help = tokentop(tmp_path, "run", "--help").stdout
    for option in ("--jsonl", "--only", "--prompt", "--db", "--no-store"):
        assert option in run_help
    assert "--search" in tokentop(tmp_path, "history", "--help").stdout
    assert "--format" in tokentop(tmp_path, "export", "--help").stdout


def test_version(tmp_path: Path) -> None:
    proc = tokentop(tmp_path, "--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"tokentop, version {__version__}"


def test_help_imports_nothing_heavy_and_is_fast(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from tui.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "heavy = ('textual', 'rich', 'httpx', 'uvicorn', 'aiosqlite', 'starlette', 'msgspec')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "assert not bad, bad\n"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, env=cli_env(tmp_path), capture_output=True
    )

    def fastest(*args: str) -> float:
        """The least CPU time (user + system) of five runs: unlike wall-clock time, it
        barely changes when other processes load the machine."""
        times = []
        for _ in range(5):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, *args], check=True, capture_output=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            times.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        return min(times)

    bare = fastest("-c", "pass")
    help_time = fastest("-m", "tui", "--help")
    assert help_time - bare < 0.150, (help_time, bare)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_sim_command_serves_models(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "sim", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(tmp_path),
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url == f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"{base_url}/models", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert response.status_code == 200
        models = {m["id"] for m in response.json()["data"]}
        assert {"sim", "sim-flaky", "sim-think"} <= models
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sim_command_reports_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        proc = tokentop(tmp_path, "sim", "--port", str(port))
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_dashboard_with_a_broken_config_exits_2_before_starting(tmp_path: Path) -> None:
    broken = tmp_path / "mine.toml"
    broken.write_text('[[sessions]]\nname = "x"\nmodel = "sim"\nprompt = "p"\nwat = 1\n')
    for args in (["mine.toml"], ["--theme", "x", "mine.toml"], ["dashboard", "mine.toml"]):
        proc = tokentop(tmp_path, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "mine.toml:5, session 'x', key 'wat': unknown key 'wat'" in proc.stderr
        assert "Traceback" not in proc.stderr
    # ./sessions.toml is the default config of the dashboard and of run
    (tmp_path / "sessions.toml").write_text(broken.read_text())
    for args in ([], ["run"]):
        proc = tokentop(tmp_path, *args)
        assert proc.returncode == 2 and "sessions.toml:5" in proc.stderr, args


def test_unknown_command_and_missing_config(tmp_path: Path) -> None:
    proc = tokentop(tmp_path, "nosuch")
    assert proc.returncode == 2 and "No such command 'nosuch'" in proc.stderr
    proc = tokentop(tmp_path, "missing.toml")
    assert proc.returncode == 2 and "missing.toml: file not found" in proc.stderr
    proc = tokentop(tmp_path, "replay", "abc", "--speed", "0")
    assert proc.returncode == 2 and "--speed" in proc.stderr


def _recorded_run(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A database (``--db`` of the group) holding one run recorded by ``tokentop run``; its
    path and the run's result record."""
    config = tmp_path / "one.toml"
    config.write_text(
        '[[sessions]]\nname = "one"\nmodel = "sim-fast"\nprompt = "p"\n'
        'headers = { "X-Sim-Timing" = "tokens=8" }\n'
    )
    db = tmp_path / "runs.db"
    proc = tokentop(tmp_path, "--db", str(db), "run", str(config), "--jsonl")
    assert proc.returncode == 0, proc.stderr
    (result,) = (json.loads(line) for line in proc.stdout.splitlines() if '"result"' in line)
    assert db.is_file()
    return db, result


def test_group_db_option_reaches_the_store_commands(tmp_path: Path) -> None:
    db, result = _recorded_run(tmp_path)
    # history lists conversations by default, --runs the single runs
    proc = tokentop(tmp_path, "--db", str(db), "history", "--json")
    assert proc.returncode == 0, proc.stderr
    (row,) = (json.loads(line) for line in proc.stdout.splitlines())
    assert (row["last_run_id"], row["turns"], row["first_prompt"]) == (result["run_id"], 1, "p")
    proc = tokentop(tmp_path, "--db", str(db), "history", "--runs", "--json")
    assert proc.returncode == 0, proc.stderr
    (row,) = (json.loads(line) for line in proc.stdout.splitlines())
    assert row["run_id"] == result["run_id"] and row["output_text"] == result["output_text"]
    # without --db nothing was written to the default location
    assert not (tmp_path / "xdg-data" / "tokentop" / "tokentop.db").exists()


def _conversation(db: Path, turns: int = 3) -> tuple[str, list[str]]:
    """A conversation of ``turns`` turns added to ``db`` (as the session layer records
    them); its id and its runs' ids."""
    import asyncio

    from tests.store.conftest import completed_events, make_session
    from tui.store import Store

    async def talk() -> list[str]:
        async with await Store.open(db) as store:
            runs = []
            for turn in range(1, turns + 1):
                run_id = await store.start_run(
                    make_session("talk"), prompt=f"turn {turn}", conversation_id="c0ffee", turn=turn
                )
                for event in completed_events(f"answer {turn}"):
                    store.add_event(run_id, event)
                runs.append(run_id)
            return runs

    return "c0ffee", asyncio.run(talk())


def test_history_export_and_replay_of_a_conversation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tui.ui.app
    from tui.cli import main

    db, _ = _recorded_run(tmp_path)
    cid, runs = _conversation(db)
    proc = tokentop(tmp_path, "--db", str(db), "history")
    assert proc.returncode == 0, proc.stderr
    header, newest, _oldest = proc.stdout.splitlines()
    assert header.split() == [
        "CONVERSATION", "TIME", "SESSION", "MODEL", "TURNS", "STATUS", "PROMPT"
    ]  # fmt: skip
    assert newest.split()[0] == cid
    assert newest.split()[3:] == ["talk", "gpt-test", "3", "completed", "turn", "1"]
    proc = tokentop(tmp_path, "--db", str(db), "history", "--search", "answer 3", "--json")
    assert [json.loads(line)["conversation_id"] for line in proc.stdout.splitlines()] == [cid]
    # export streams: a reader that stops early ends it quietly
    proc = subprocess.run(
        f"{sys.executable} -m tui --db {db} export {runs[1]} --format jsonl | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        env=cli_env(tmp_path),
        cwd=tmp_path,
        timeout=50,
        check=False,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    head = json.loads(proc.stdout)
    assert (head["kind"], head["run_id"], head["turn"]) == ("Turn", runs[0], 1)
    # replay: a conversation of several turns is replayed whole (by its id or a run's)
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(tui.ui.app, "run_dashboard", lambda config, **kw: calls.append(kw))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for name, shown in ((cid, runs[2]), (runs[0][:16], runs[0])):
        result = runner.invoke(main, ["replay", name, "--db", str(db)])
        assert result.exit_code == 0, result.output
        call = calls.pop()
        assert (call["replay_conversation_id"], call["replay_run_id"]) == (cid, shown)


def test_replay_speed_and_instant_reach_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tui.ui.app
    from tui.cli import main

    db, record = _recorded_run(tmp_path)
    run_id = str(record["run_id"])
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(tui.ui.app, "run_dashboard", lambda config, **kw: calls.append(kw))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args, speed in (([], 1.0), (["--speed", "0.25"], 0.25), (["--instant"], None)):
        # a unique prefix names the run; the app gets its full id
        result = runner.invoke(main, ["replay", run_id[:10], "--db", str(db), *args])
        assert result.exit_code == 0, result.output
        call = calls.pop()
        assert call["replay_run_id"] == run_id and call["db_path"] == db
        assert call["replay_speed"] == speed
    # The replay screen's range (0.25x-10x); instant and a speed exclude each other.
    for args in (["--speed", "20"], ["--speed", "0.1"], ["--instant", "--speed", "2"]):
        result = runner.invoke(main, ["replay", run_id, "--db", str(db), *args])
        assert result.exit_code == 2, (args, result.output)
    assert "exclude each other" in result.output
    assert calls == []


def test_replay_of_a_run_that_cannot_be_read_is_an_error_not_a_dashboard(
    tmp_path: Path,
) -> None:
    db, _ = _recorded_run(tmp_path)
    foreign = tmp_path / "notes.txt"
    foreign.write_text("not a database\n")
    for args, says in (
        (["--db", str(db), "replay", "0000nosuchrun"], "no conversation or run '0000nosuchrun'"),
        (["--db", str(tmp_path / "missing.db"), "replay", "abc"], "no database at"),
        (["--db", str(foreign), "replay", "abc"], "is not a tokentop database"),
    ):
        proc = tokentop(tmp_path, *args, timeout=30)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith("Error: ") and says in proc.stderr, proc.stderr
        assert proc.stdout == ""  # no dashboard was drawn
    assert foreign.read_text() == "not a database\n"
