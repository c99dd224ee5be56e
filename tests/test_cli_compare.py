"""``tokentop compare`` against the real simulator over loopback: the text, Markdown and JSON
reports, the exit status, --only and the argument checks, the stored round and its reprint
(--round ID), Ctrl-C, and secrets kept out of the output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.test_headless import cli_env, signal_when
from tui import cli_compare
from tui.cli import main
from tui.session.round_plan import MAX_RUNS_PER_COLUMN, ROUND_ORDERS
from tui.session.round_stats import METRICS
from tui.vocab import MISSING

QUICK = "ttft=0.01,tps=400,tokens=20"
SLOW_TTFT = "ttft=0.3,tps=400,tokens=20"


def sessions_file(tmp_path: Path, sim_url: str, key: str, *, broken: bool = False) -> Path:
    """Two sessions on the test simulator, one clearly slower to its first token (the first
    priced at its own price; the loopback server has no list price), and optionally one
    that always fails."""
    text = f"""
        [defaults]
        base_url = "{sim_url}"
        model = "sim-fast"
        prompt = "Tell me about rivers."
        reconnect = {{ max_retries = 0 }}

        [[sessions]]
        name = "quick · chat"
        api = "chat"
        headers = {{ "X-Sim-Timing" = "{QUICK}", "X-Sim-Key" = "{key}-q" }}
        price = {{ input_per_mtok = 2.0, output_per_mtok = 8.0 }}

        [[sessions]]
        name = "slow"
        headers = {{ "X-Sim-Timing" = "{SLOW_TTFT}", "X-Sim-Key" = "{key}-s" }}
        """
    if broken:
        text += """
        [[sessions]]
        name = "broken"
        model = "sim-broken"
        """
    path = tmp_path / "sessions.toml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def compare(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """``tokentop compare ARGS`` in this process (private XDG dirs)."""
    runner = CliRunner()
    return runner.invoke(main, ["compare", *args], env=env or cli_env(tmp_path))


def table_rows(stdout: str) -> list[list[str]]:
    """The text table's rows (after the title and the header), split on 2+ spaces."""
    lines = stdout.splitlines()
    rows = []
    for line in lines[2:]:
        if not line.strip():
            break
        rows.append([cell.strip() for cell in line.split("  ") if cell.strip()])
    return rows


def test_the_text_report_ranks_and_exits_1_when_a_column_never_succeeds(
    tmp_path: Path, sim_url: str, sim_key: str
) -> None:
    config = sessions_file(tmp_path, sim_url, sim_key, broken=True)
    db = tmp_path / "runs.db"
    result = compare(tmp_path, str(config), "--rounds", "2", "--db", str(db))
    assert result.exit_code == 1, result.output
    out = result.stdout
    title, header = out.splitlines()[:2]
    assert title.startswith("round ") and "2 runs per column · interleaved · done" in title
    assert header.split()[:4] == ["#", "session", "model", "ok"]
    rows = table_rows(out)
    assert [row[1] for row in rows] == ["quick · chat", "slow", "broken"]
    quick, slow, broken = rows
    assert quick[0] == "1" and quick[3] == "2/2" and quick[-1] == "1.00x"
    assert quick[-2].startswith("$")  # its own price
    assert slow[0] == "2" and slow[-2] == MISSING  # a loopback server: no list price
    assert broken[0] == MISSING and broken[3] == "0/2"
    assert "not ranked: broken: no successful run (2 failed)" in out
    assert "(fastest: quick · chat)" in out
    # progress on stderr: the round, then one line per finished run, in the interleaved order
    err = result.stderr.splitlines()
    assert err[0].startswith("round ") and "(interleaved)" in err[0]
    done = [line for line in err if line.startswith("[")]
    assert [line.split("]")[0] + "]" for line in done] == [f"[{i}/6]" for i in range(1, 7)]
    assert "quick · chat #1" in done[0] and "slow #1" in done[1] and "[broken] failed" in done[2]


def test_markdown_and_json_reports(tmp_path: Path, sim_url: str, sim_key: str) -> None:
    config = sessions_file(tmp_path, sim_url, sim_key)
    db = tmp_path / "runs.db"
    result = compare(tmp_path, str(config), "--rounds", "2", "--markdown", "-q", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # quiet
    lines = result.stdout.splitlines()
    assert lines[0].startswith("**round ") and lines[0].endswith("**")
    assert lines[2].startswith("| # | session | model | ok |")
    assert lines[3].startswith("| ---: | --- | --- | ---: |")
    assert lines[4].startswith("| 1 | quick · chat | sim-fast | 2/2 |")
    assert lines[5].startswith("| 2 | slow |")
    assert any(line.startswith("- by TTFT (median, lower is better):") for line in lines)

    result = compare(
        tmp_path, str(config), "--rounds", "3", "--json", "--by", "duration", "--db", str(db)
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # one object
    assert report["by"] == "duration" and report["count"] == 3 and report["status"] == "done"
    assert report["winner"] == "quick · chat" and report["ties"] == []
    columns = {c["session"]: c for c in report["columns"]}
    quick, slow = columns["quick · chat"], columns["slow"]
    assert (quick["runs"], quick["successes"], quick["planned"]) == (3, 3, 3)
    for figure in ("ttft_ms", "tokens_per_s", "duration_ms"):
        assert set(quick[figure]) == {"count", "p25", "p50", "p75", "p95"}
    assert slow["ttft_ms"]["p50"] > quick["ttft_ms"]["p50"]
    assert [r["index"] for r in quick["run_log"]] == [1, 2, 3]
    expected = [
        (r["input_tokens"] * 2.0 + r["output_tokens"] * 8.0) / 1e6 for r in quick["run_log"]
    ]
    assert quick["cost_per_run_usd"] == pytest.approx(sum(expected) / 3)
    assert slow["cost_per_run_usd"] is None
    assert [r["session"] for r in report["ranking"]] == ["quick · chat", "slow"]
    assert report["ranking"][1]["ratio"] > 1

    # the stored round, reprinted read-only by a prefix of its id: the same figures
    before = db.stat().st_mtime_ns
    again = compare(
        tmp_path, "--round", report["round_id"][:12], "--json", "--by", "duration", "--db", str(db)
    )
    assert again.exit_code == 0, again.output
    stored = json.loads(again.stdout)
    assert stored["round_id"] == report["round_id"] and stored["status"] == "done"
    assert db.stat().st_mtime_ns == before
    _same_figures(report, stored)
    text = compare(tmp_path, "--round", report["round_id"], "--db", str(db))
    assert text.exit_code == 0 and [r[1] for r in table_rows(text.stdout)] == [
        "quick · chat",
        "slow",
    ]


def _same_figures(live: dict[str, Any], stored: dict[str, Any]) -> None:
    """The live report's figures are the stored round's (up to the store's rounding)."""
    for a, b in zip(live["columns"], stored["columns"], strict=True):
        assert a["session"] == b["session"] and a["model"] == b["model"]
        assert (a["runs"], a["successes"]) == (b["runs"], b["successes"])
        assert [r["run_id"] for r in a["run_log"]] == [r["run_id"] for r in b["run_log"]]
        for figure in ("ttft_ms", "tokens_per_s", "duration_ms"):
            assert b[figure]["p50"] == pytest.approx(a[figure]["p50"], rel=1e-3, abs=0.01)
        if a["cost_per_run_usd"] is None:
            assert b["cost_per_run_usd"] is None
        else:
            assert b["cost_per_run_usd"] == pytest.approx(a["cost_per_run_usd"])
    assert [r["session"] for r in live["ranking"]] == [r["session"] for r in stored["ranking"]]


def test_bad_arguments_exit_2_and_an_unknown_round_exits_1(
    tmp_path: Path, sim_url: str, sim_key: str
) -> None:
    config = sessions_file(tmp_path, sim_url, sim_key)
    db = tmp_path / "runs.db"
    for args, words in (
        ([str(config), "--markdown", "--json"], "exclude each other"),
        ([str(config), "--rounds", "0"], "--rounds"),
        (["--round", "abc", "--rounds", "2"], "--rounds cannot go with it"),
        (["--round", "abc", str(config)], "CONFIG cannot go with it"),
        ([str(config), "--only", "nothing-like-it"], "no session matches 'nothing-like-it'"),
        ([str(config), "--order", "random"], "--order"),
        ([str(config), "--prompt", "  "], "must not be empty"),
    ):
        result = compare(tmp_path, *args, "--db", str(db))
        assert result.exit_code == 2, (args, result.output)
        assert words in result.output, (args, result.output)
    assert not db.exists()
    # an empty database has no such round (the file is read, never created by a reprint)
    result = compare(
        tmp_path, str(config), "--rounds", "1", "--only", "quick", "-q", "--db", str(db)
    )
    assert result.exit_code == 0, result.output
    missing = compare(tmp_path, "--round", "ffffffff", "--db", str(db))
    assert missing.exit_code == 1 and "no compare round 'ffffffff'" in missing.output
    # a file that is not a database: the round does not run (2), a reprint cannot read it (1)
    foreign = tmp_path / "notes.db"
    foreign.write_text("not a database\n", encoding="utf-8")
    refused = compare(tmp_path, str(config), "--rounds", "1", "--db", str(foreign))
    assert refused.exit_code == 2 and "--no-store" in refused.stderr, refused.output
    unreadable = compare(tmp_path, "--round", "abc", "--db", str(foreign))
    assert unreadable.exit_code == 1 and "Error:" in unreadable.output
    assert foreign.read_text(encoding="utf-8") == "not a database\n"


def test_only_and_no_store(tmp_path: Path, sim_url: str, sim_key: str) -> None:
    config = sessions_file(tmp_path, sim_url, sim_key, broken=True)
    result = compare(
        tmp_path, str(config), "--rounds", "1", "--only", "QUICK", "--only", "slo*", "--no-store"
    )
    assert result.exit_code == 0, result.output  # the broken session was not chosen
    assert [row[1] for row in table_rows(result.stdout)] == ["quick · chat", "slow"]
    assert not list(tmp_path.rglob("*.db"))


def test_secrets_never_reach_the_output(tmp_path: Path, sim_url: str, sim_key: str) -> None:
    canary = "sk-canary-" + sim_key[-12:].replace("-", "x") + "QWERTY123456"
    config = sessions_file(tmp_path, sim_url, sim_key)
    text = config.read_text(encoding="utf-8").replace(
        "reconnect = { max_retries = 0 }",
        'reconnect = { max_retries = 0 }\napi_key_env = "CANARY_KEY"',
    )
    config.write_text(text, encoding="utf-8")
    env = cli_env(tmp_path, CANARY_KEY=canary)
    db = tmp_path / "runs.db"
    result = compare(
        tmp_path,
        str(config),
        "--rounds",
        "1",
        "--json",
        "--prompt",
        f"my key: {canary}",
        "--db",
        str(db),
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert canary not in result.stdout and canary not in result.stderr
    assert json.loads(result.stdout)["prompt"].startswith("my key: ")
    reprint = compare(
        tmp_path,
        "--round",
        json.loads(result.stdout)["round_id"],
        "--json",
        "--db",
        str(db),
        env=env,
    )
    assert canary not in reprint.stdout
    assert canary.encode() not in db.read_bytes()


def test_ctrl_c_cancels_the_round_and_still_reports(
    tmp_path: Path, sim_url: str, sim_key: str
) -> None:
    config = sessions_file(tmp_path, sim_url, sim_key)
    text = config.read_text(encoding="utf-8").replace(SLOW_TTFT, "ttft=0.01,tps=20,tokens=2000")
    config.write_text(text, encoding="utf-8")
    db = tmp_path / "runs.db"

    def slow_is_running(out: list[str], err: list[str]) -> bool:
        return any("quick · chat #1" in line for line in err)

    args = ["compare", str(config), "--rounds", "3", "--db", str(db)]
    status, out, err = signal_when(tmp_path, args, signal.SIGINT, slow_is_running)
    stderr = "".join(err)
    assert "Traceback" not in stderr and "interrupted: cancelling the round" in stderr
    assert status == 1  # the slow column has no successful run
    assert "· cancelled" in out[0]
    rows = table_rows("".join(out))
    assert [row[1] for row in rows] == ["quick · chat", "slow"]
    assert rows[0][3] == "1/1" and rows[1][0] == MISSING
    # the signal came once quick's run ended: slow's run was cancelled, or never began
    reasons = ("no successful run (1 cancelled)", "no run finished")
    assert any(f"not ranked: slow: {why}" in line for line in out for why in reasons), out
    assert rows[1][3] in ("0/1", "0/0")


def test_the_commands_words_agree_with_the_session_layer() -> None:
    assert cli_compare.ORDERS == ROUND_ORDERS
    assert cli_compare.METRICS == METRICS
    assert cli_compare.MAX_RUNS == MAX_RUNS_PER_COLUMN
    # the command's module imports neither the session layer nor genai-prices
    code = (
        "import sys, tui.cli_compare; "
        "assert not any(m.startswith(('tui.session', 'genai_prices')) for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=dict(os.environ))
