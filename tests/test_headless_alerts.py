"""``tokentop run`` and alerts: ``alert`` records, alert lines, the count at the end, the store
and the ``on_alert`` command all done before the command exits (real simulator, real store)."""

from __future__ import annotations

import io
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.test_headless import cli_env, json_lines, tokentop, write_config
from tui.config import load_config
from tui.headless import RunOptions, run_sessions
from tui.store import Store

ALERT_KEYS = {"type", "session", "run_id", "metric", "value", "threshold", "message", "at"}


def config_text(key: str, extra: str = "") -> str:
    """Two sessions: ``down`` fails three times in a row, ``late`` has a slow first token."""
    return f"""
        [defaults]
        model = "sim-fast"
        prompt = "ping"
        reconnect = {{ max_retries = 0 }}
        [defaults.alerts]
        on_failure = true
        {extra}

        [[sessions]]
        name = "down"
        headers = {{ "X-Sim-Fault" = "status=503*999", "X-Sim-Key" = "{key}-down" }}
        repeat = {{ every_s = 0.01, count = 3 }}
        alerts = {{ consecutive_failures = 2 }}

        [[sessions]]
        name = "late"
        headers = {{ "X-Sim-Timing" = "ttft=0.6,tps=0,tokens=5", "X-Sim-Key" = "{key}-late" }}
        alerts = {{ ttft_ms = 250 }}
        """


async def stored_alerts(db: Path) -> list[Any]:
    store = await Store.open(db, readonly=True)
    try:
        return list(await store.list_alerts())
    finally:
        await store.close()


async def test_jsonl_prints_an_alert_record_after_each_result(tmp_path: Path, sim_key: str) -> None:
    config = load_config(write_config(tmp_path, config_text(sim_key)), environ={})
    db = tmp_path / "runs.db"
    out, err = io.StringIO(), io.StringIO()
    status = await run_sessions(
        config.sessions, RunOptions(jsonl=True, db_path=db), out=out, err=err, interactive=False
    )
    assert status == 1  # runs failed; alerts do not change the exit status
    records = json_lines(out.getvalue())
    alerts = [(i, r) for i, r in enumerate(records) if r["type"] == "alert"]
    results = {r["run_id"]: i for i, r in enumerate(records) if r["type"] == "result"}
    for i, alert in alerts:
        assert set(alert) == ALERT_KEYS
        assert results[alert["run_id"]] < i  # after the result of its run
        assert datetime.fromisoformat(alert["at"]).utcoffset() is not None
        assert alert["message"].startswith(f"{alert['session']}: ")
    summary = sorted((r["session"], r["metric"], r["value"], r["threshold"]) for _, r in alerts)
    late = next(r for _, r in alerts if r["session"] == "late")
    assert summary == [
        ("down", "consecutive_failures", 2, 2),
        ("down", "on_failure", None, None),
        ("down", "on_failure", None, None),
        ("down", "on_failure", None, None),
        ("late", "ttft_ms", late["value"], 250),
    ]
    assert late["value"] > 250 and late["message"].endswith(" ms > 250 ms")
    streak = next(r for _, r in alerts if r["metric"] == "consecutive_failures")
    assert streak["message"].startswith("down: 2 failures in a row: HTTP 503")
    # one line per alert on stderr, as failures are, and the count among the closing lines
    lines = err.getvalue().splitlines()
    assert sorted(line for line in lines if line.startswith("alert: ")) == sorted(
        f"alert: {r['message']}" for _, r in alerts
    )
    assert lines.count("alerts: 5 fired") == 1
    last_alert = max(i for i, line in enumerate(lines) if line.startswith("alert: "))
    assert lines.index("alerts: 5 fired") > last_alert
    # every alert was stored before the run command returned
    stored = await stored_alerts(db)
    assert sorted((a.run_id, a.metric, a.message) for a in stored) == sorted(
        (r["run_id"], r["metric"], r["message"]) for _, r in alerts
    )


async def test_the_table_counts_the_alerts_and_problems_are_warnings(
    tmp_path: Path, sim_key: str
) -> None:
    missing = tmp_path / "no-such-notifier"
    extra = f'on_alert = ["{missing}", "tokentop"]'
    config = load_config(write_config(tmp_path, config_text(sim_key, extra)), environ={})
    late = [s for s in config.sessions if s.name == "late"]
    out, err = io.StringIO(), io.StringIO()
    status = await run_sessions(late, RunOptions(store=False), out=out, err=err, interactive=False)
    assert status == 0
    stdout = out.getvalue().splitlines()
    assert stdout[0].startswith("session") and stdout[-1] == "alerts: 1 fired"
    stderr = err.getvalue()
    assert "alert: late: ttft " in stderr
    assert (
        f"warning: late: the on_alert command {str(missing)!r} could not start: "
        "No such file or directory" in stderr
    )


async def test_without_rules_nothing_is_said_about_alerts(tmp_path: Path, sim_key: str) -> None:
    config = load_config(
        write_config(
            tmp_path,
            f"""
            [[sessions]]
            name = "plain"
            model = "sim-fast"
            prompt = "ping"
            headers = {{ "X-Sim-Timing" = "tokens=4", "X-Sim-Key" = "{sim_key}" }}
            """,
        ),
        environ={},
    )
    out, err = io.StringIO(), io.StringIO()
    options = RunOptions(store=False)
    assert await run_sessions(config.sessions, options, out=out, err=err, interactive=False) == 0
    assert "alert" not in out.getvalue() + err.getvalue()


DUMP_ENV = (
    "import json, os, sys\n"
    "env = {k: v for k, v in os.environ.items() if k.startswith('TOKENTOP_ALERT_')}\n"
    "open(sys.argv[1], 'w').write(json.dumps(env))\n"
)


async def test_the_run_command_waits_for_the_alert_command_and_the_store(
    tmp_path: Path, sim_key: str
) -> None:
    env_file = tmp_path / "alert-env.json"
    on_alert = json.dumps([sys.executable, "-c", DUMP_ENV, str(env_file)])
    path = write_config(
        tmp_path,
        f"""
        [[sessions]]
        name = "down"
        model = "sim-fast"
        prompt = "ping"
        headers = {{ "X-Sim-Fault" = "status=503*999", "X-Sim-Key" = "{sim_key}" }}
        reconnect = {{ max_retries = 0 }}
        alerts = {{ on_failure = true, on_alert = {on_alert} }}
        """,
    )
    db = tmp_path / "runs.db"
    proc = tokentop(tmp_path, "run", str(path), "--jsonl", "--db", str(db), env=cli_env(tmp_path))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    (alert,) = [r for r in json_lines(proc.stdout) if r["type"] == "alert"]
    assert alert["metric"] == "on_failure" and alert["session"] == "down"
    env = json.loads(env_file.read_text())
    assert env["TOKENTOP_ALERT_SESSION"] == "down"
    assert env["TOKENTOP_ALERT_METRIC"] == "on_failure"
    assert env["TOKENTOP_ALERT_RUN_ID"] == alert["run_id"]
    assert env["TOKENTOP_ALERT_MESSAGE"] == alert["message"]
    assert env["TOKENTOP_ALERT_VALUE"] == "" and env["TOKENTOP_ALERT_THRESHOLD"] == ""
    assert "alerts: 1 fired" in proc.stderr
    (stored,) = await stored_alerts(db)
    assert (stored.run_id, stored.metric, stored.message) == (
        alert["run_id"],
        "on_failure",
        alert["message"],
    )
