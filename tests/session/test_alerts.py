"""Alerts: the rules (pure), the monitor's state and sinks, real runs on the simulator through
a SessionRuntime, and the ``on_alert`` command (real small programs)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.session.helpers import AlertKeeper, until
from tests.stream.helpers import make_session
from tui.config import AlertRules, Repeat, SessionConfig
from tui.session import SessionRuntime
from tui.session.alert_command import PER_SESSION, AlertCommands, alert_env
from tui.session.alerts import ACTIVE_LIMIT, Alert, AlertMonitor, RunOutcome, evaluate
from tui.stream.events import RunError
from tui.vocab import RunStatus

FAIL_ALWAYS = "status=500*999"
"""Every attempt of the key answers HTTP 500 (the run fails: no retries in these sessions)."""

AT = 1_700_000_000.0


def outcome(
    status: RunStatus = "completed",
    *,
    ttft_ms: float | None = 100.0,
    tokens_per_s: float | None = 50.0,
    duration_s: float | None = 1.0,
    error: RunError | None = None,
) -> RunOutcome:
    """A finished run of session ``s``."""
    if status == "failed" and error is None:
        error = RunError("http", "server error", http_status=500)
    return RunOutcome("s", "run-1", status, ttft_ms, tokens_per_s, duration_s, error)


def fired(rules: AlertRules, out: RunOutcome, failures: int = 0) -> list[str]:
    """The metrics of the alerts ``out`` raises."""
    alerts, _ = evaluate(rules, out, failures, at=AT)
    return [a.metric for a in alerts]


# -- the rules -----------------------------------------------------------------------------


def test_ttft_fires_only_above_the_bound() -> None:
    rules = AlertRules(ttft_ms=2000)
    (alert,), _ = evaluate(rules, outcome(ttft_ms=2340.4), 0, at=AT)
    assert (alert.metric, alert.value, alert.threshold) == ("ttft_ms", 2340.4, 2000)
    assert alert.message == "s: ttft 2,340 ms > 2,000 ms"
    assert (alert.session, alert.run_id, alert.at) == ("s", "run-1", AT)
    assert fired(rules, outcome(ttft_ms=2000)) == []  # at the bound: not above
    assert fired(rules, outcome(ttft_ms=1999)) == []
    assert fired(rules, outcome("failed", ttft_ms=None)) == []  # no first token: no TTFT
    # the TTFT was measured before the run ended, however it ended
    for status in ("failed", "incomplete", "cancelled"):
        assert fired(rules, outcome(status, ttft_ms=2500)) == ["ttft_ms"]
    # just above the bound never reads as equal to it
    (alert,), _ = evaluate(rules, outcome(ttft_ms=2000.4), 0, at=AT)
    assert alert.message == "s: ttft 2,000.4 ms > 2,000 ms"


def test_min_rate_fires_only_for_completed_runs_below_it() -> None:
    rules = AlertRules(min_tokens_per_s=10)
    (alert,), _ = evaluate(rules, outcome(tokens_per_s=4.23), 0, at=AT)
    assert alert.message == "s: 4.2 tok/s < 10 tok/s"
    assert (alert.value, alert.threshold) == (4.23, 10)
    assert fired(rules, outcome(tokens_per_s=10)) == []
    assert fired(rules, outcome(tokens_per_s=11)) == []
    assert fired(rules, outcome(tokens_per_s=None)) == []  # a rate not known is not slow
    for status in ("incomplete", "failed", "cancelled"):  # cut or failed: not "slow"
        assert fired(rules, outcome(status, tokens_per_s=1)) == [], status


def test_max_duration_fires_for_every_end_but_a_cancel() -> None:
    rules = AlertRules(max_duration_s=60)
    (alert,), _ = evaluate(rules, outcome(duration_s=75.31), 0, at=AT)
    assert alert.message == "s: duration 75.3 s > 60 s"
    for status in ("completed", "incomplete", "failed"):
        assert fired(rules, outcome(status, duration_s=61)) == ["max_duration_s"], status
    assert fired(rules, outcome("cancelled", duration_s=600)) == []
    assert fired(rules, outcome(duration_s=60)) == []
    assert fired(rules, outcome(duration_s=None)) == []


def test_on_failure_fires_for_failed_runs_only() -> None:
    rules = AlertRules(on_failure=True)
    (alert,), _ = evaluate(rules, outcome("failed"), 0, at=AT)
    assert (alert.metric, alert.value, alert.threshold) == ("on_failure", None, None)
    assert alert.message == "s: run failed: HTTP 500: server error"
    for status in ("completed", "incomplete", "cancelled"):
        assert fired(rules, outcome(status)) == [], status
    assert fired(AlertRules(), outcome("failed")) == []  # off by default


def test_the_failure_streak_over_cancelled_and_cut_runs() -> None:
    rules = AlertRules(consecutive_failures=3)
    sequence: list[RunStatus] = [
        "failed",
        "failed",
        "cancelled",  # neither counts nor resets
        "failed",  # 3 in a row: the alert
        "failed",  # the same streak: no second alert
        "cancelled",
        "failed",
        "completed",  # the streak is over
        "failed",
        "failed",
        "incomplete",  # a cut answer is not a failure: over too
        "failed",
        "failed",
        "failed",  # a new streak of 3
    ]
    failures = 0
    alerts: list[tuple[int, Alert]] = []
    streaks: list[int] = []
    for i, status in enumerate(sequence):
        new, failures = evaluate(rules, outcome(status), failures, at=AT)
        alerts.extend((i, a) for a in new)
        streaks.append(failures)
    assert [i for i, _ in alerts] == [3, 13]
    assert streaks == [1, 2, 2, 3, 4, 4, 5, 0, 1, 2, 0, 1, 2, 3]
    alert = alerts[0][1]
    assert (alert.metric, alert.value, alert.threshold) == ("consecutive_failures", 3, 3)
    assert alert.message == "s: 3 failures in a row: HTTP 500: server error"


def test_one_failure_with_a_streak_of_one_fires_both_rules() -> None:
    rules = AlertRules(on_failure=True, consecutive_failures=1)
    assert fired(rules, outcome("failed")) == ["on_failure", "consecutive_failures"]
    assert fired(rules, outcome("failed"), failures=1) == ["on_failure"]


def test_a_failure_reason_is_redacted_one_line_and_short() -> None:
    secret = "sk-test-0123456789abcdef"
    error = RunError("server", f"bad key {secret}\nsecond line\x00" + "x" * 300)
    rules = AlertRules(on_failure=True)
    (alert,), _ = evaluate(
        rules,
        outcome("failed", error=error),
        0,
        at=AT,
        redact=lambda text: text.replace(secret, "[redacted]"),
    )
    assert secret not in alert.message
    assert alert.message.startswith("s: run failed: bad key [redacted] second line x")
    assert "\n" not in alert.message and "\x00" not in alert.message
    assert len(alert.message) < 160 and alert.message.endswith("…")
    (none,), _ = evaluate(rules, outcome("failed", error=None), 0, at=AT)
    assert none.message.endswith("HTTP 500: server error")


# -- the monitor ---------------------------------------------------------------------------


def alert_of(session: str, n: int = 0) -> Alert:
    return Alert(session, f"run-{n}", "on_failure", None, None, f"{session}: run failed", AT)


def test_active_alerts_until_acknowledged() -> None:
    monitor = AlertMonitor()
    got: list[Alert] = []
    monitor.add_sink(got.append)
    v0 = monitor.version
    monitor.raise_alerts([alert_of("a", i) for i in range(ACTIVE_LIMIT + 3)])
    monitor.raise_alerts([alert_of("b")])
    assert monitor.version > v0
    assert monitor.total == ACTIVE_LIMIT + 4
    assert len(got) == ACTIVE_LIMIT + 4  # no loop: delivered at once
    kept = monitor.active("a")
    assert len(kept) == ACTIVE_LIMIT and kept[-1].run_id == f"run-{ACTIVE_LIMIT + 2}"
    assert monitor.count("a") == ACTIVE_LIMIT + 3 and monitor.count("b") == 1
    assert monitor.active("nobody") == () and monitor.count("nobody") == 0

    v1 = monitor.version
    monitor.acknowledge("a")
    assert monitor.active("a") == () and monitor.count("a") == 0
    assert monitor.active("b") != ()
    assert monitor.version > v1
    v2 = monitor.version
    monitor.acknowledge("a")  # nothing changed: no new version
    assert monitor.version == v2
    monitor.acknowledge()
    assert monitor.active("b") == () and monitor.version > v2
    assert monitor.total == ACTIVE_LIMIT + 4  # fired stays fired


async def test_sinks_run_after_the_turn_and_a_broken_sink_breaks_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = AlertMonitor()
    got: list[Alert] = []
    later: list[Alert] = []

    def broken(alert: Alert) -> None:
        raise RuntimeError("sink bug")

    monitor.add_sink(broken)
    monitor.add_sink(got.append)
    remove = monitor.add_sink(later.append)
    monitor.raise_alerts([alert_of("a")])
    assert got == [] and monitor.active("a") != ()  # the state at once, the sinks queued
    await monitor.drain()
    assert len(got) == 1 and len(later) == 1
    assert "an alert sink failed" in caplog.text
    remove()
    monitor.raise_alerts([alert_of("a", 1)])
    await until(lambda: len(got) == 2, "the next turn's delivery")
    assert len(later) == 1


# -- real runs -----------------------------------------------------------------------------


def sim_session(
    name: str,
    key: str,
    *,
    timing: str = "ttft=0.01,tps=0,tokens=20",
    fault: str | None = None,
    repeat: Repeat | None = None,
    **rules: Any,
) -> SessionConfig:
    """A ``sim`` session with alert ``rules`` (no retries: a fault fails the run)."""
    session = make_session(key=key, timing=timing, fault=fault, max_retries=0)
    return replace(session, name=name, repeat=repeat, alerts=AlertRules(**rules))


async def run_all(runtime: SessionRuntime) -> None:
    await runtime.start()
    for controller in runtime.controllers:
        controller.start()
    assert await runtime.wait_idle(20)


async def test_real_runs_fire_their_rules_and_healthy_ones_do_not(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    sessions = [
        sim_session("late", f"{sim_key}-1", timing="ttft=0.6,tps=0,tokens=5", ttft_ms=250),
        sim_session("quick", f"{sim_key}-2", ttft_ms=2500, max_duration_s=10, on_failure=True),
        sim_session(
            "slow", f"{sim_key}-3", timing="ttft=0.01,tps=25,tokens=8", min_tokens_per_s=1000
        ),
        sim_session("long", f"{sim_key}-4", timing="ttft=0.4,tps=0,tokens=5", max_duration_s=0.2),
        sim_session(
            "broken", f"{sim_key}-5", fault=FAIL_ALWAYS, on_failure=True, min_tokens_per_s=1000
        ),
    ]
    runtime = SessionRuntime(sessions, client=client, simulator=lambda: sim_url)
    keeper = AlertKeeper()
    runtime.use_store(keeper)
    await run_all(runtime)
    await runtime.close()

    def metrics(name: str) -> list[str]:
        return [a.metric for a in runtime.alerts.active(name)]

    assert metrics("late") == ["ttft_ms"]
    assert metrics("quick") == []
    assert metrics("slow") == ["min_tokens_per_s"]
    assert metrics("long") == ["max_duration_s"]
    assert metrics("broken") == ["on_failure"]  # a failed run is not "slow"
    assert runtime.alerts.total == 4
    (late,) = runtime.alerts.active("late")
    run = runtime.controller("late").current
    assert run is not None and late.run_id == run.run_id
    assert late.value is not None and late.value > 250 and late.threshold == 250
    assert late.message.startswith("late: ttft ") and late.message.endswith(" ms > 250 ms")
    (broken,) = runtime.alerts.active("broken")
    assert "HTTP 500" in broken.message
    # every alert reached the store before it closed
    assert sorted((a["session"], a["metric"]) for a in keeper.alerts) == [
        ("broken", "on_failure"),
        ("late", "ttft_ms"),
        ("long", "max_duration_s"),
        ("slow", "min_tokens_per_s"),
    ]
    stored = next(a for a in keeper.alerts if a["session"] == "late")
    assert stored == {
        "session": "late",
        "run_id": late.run_id,
        "metric": "ttft_ms",
        "value": late.value,
        "threshold": 250,
        "message": late.message,
        "at": late.at,
    }


async def test_a_repeating_failing_session_alerts_once_per_streak(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    session = sim_session(
        "flaky",
        sim_key,
        fault=FAIL_ALWAYS,
        repeat=Repeat(every_s=0.01, count=4),
        consecutive_failures=2,
    )
    runtime = SessionRuntime([session], client=client, simulator=lambda: sim_url)
    seen: list[Alert] = []
    runtime.alerts.add_sink(seen.append)
    await run_all(runtime)
    await runtime.close()
    controller = runtime.controller("flaky")
    assert controller.runs_finished == 4
    assert [a.metric for a in seen] == ["consecutive_failures"]
    (alert,) = seen
    assert alert.run_id == controller.history[1].run_id  # the second failure in a row
    assert alert.message.startswith("flaky: 2 failures in a row: HTTP 500")
    assert runtime.alerts.streak("flaky") == 4


async def test_no_rules_no_alerts(client: httpx.AsyncClient, sim_url: str, sim_key: str) -> None:
    runtime = SessionRuntime(
        [sim_session("plain", sim_key, fault=FAIL_ALWAYS)], client=client, simulator=lambda: sim_url
    )
    await run_all(runtime)
    await runtime.close()
    assert runtime.controller("plain").state == "failed"
    assert runtime.alerts.total == 0 and runtime.alerts.version == 0


# -- the on_alert command ------------------------------------------------------------------

DUMP_ENV = (
    "import json, os, sys\n"
    "env = {k: v for k, v in os.environ.items() if k.startswith('TOKENTOP_ALERT_')}\n"
    "env['PID'] = os.getpid()\n"
    "with open(sys.argv[1], 'a') as f: f.write(json.dumps(env) + '\\n')\n"
)
"""Appends the alert's variables (and its pid) as one JSON line to the file ``argv[1]``."""


def lines_of(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


async def test_on_alert_runs_the_program_with_the_alert_in_its_environment(
    client: httpx.AsyncClient, sim_url: str, sim_key: str, tmp_path: Path
) -> None:
    out = tmp_path / "env.jsonl"
    session = sim_session(
        "notify · me",
        sim_key,
        fault=FAIL_ALWAYS,
        consecutive_failures=1,
        on_alert=(sys.executable, "-c", DUMP_ENV, str(out)),
    )
    warnings: list[str] = []
    runtime = SessionRuntime(
        [session], client=client, simulator=lambda: sim_url, on_warning=warnings.append
    )
    await run_all(runtime)
    await runtime.close()  # waits for the command
    (alert,) = runtime.alerts.active("notify · me")
    (env,) = lines_of(out)
    env.pop("PID")
    assert env == {**alert_env(alert), "TOKENTOP_ALERT_COALESCED": "0"}
    assert env["TOKENTOP_ALERT_SESSION"] == "notify · me"
    assert env["TOKENTOP_ALERT_METRIC"] == "consecutive_failures"
    assert env["TOKENTOP_ALERT_VALUE"] == "1" and env["TOKENTOP_ALERT_THRESHOLD"] == "1"
    assert env["TOKENTOP_ALERT_RUN_ID"] == alert.run_id
    assert env["TOKENTOP_ALERT_MESSAGE"].startswith("notify · me: 1 failures in a row: HTTP 500")
    assert env["TOKENTOP_ALERT_AT"].endswith("+00:00")
    assert warnings == []


def commands_for(rules: AlertRules) -> tuple[AlertCommands, list[str]]:
    warnings: list[str] = []
    return AlertCommands(lambda name: rules if name == "s" else None, warnings.append), warnings


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


HANG = "import os, sys, time\nopen(sys.argv[1], 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
"""Writes its pid to ``argv[1]``, then hangs."""


async def test_a_hanging_command_is_killed_after_its_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    rules = AlertRules(on_alert=(sys.executable, "-c", HANG, str(pid_file)), command_timeout_s=0.5)
    commands, warnings = commands_for(rules)
    commands(alert_of("s"))
    await until(lambda: pid_file.exists() and pid_file.read_text() != "", "the command's pid")
    pid = int(pid_file.read_text())
    await until(lambda: commands.running == 0, "the killed command")
    assert gone(pid)
    assert warnings == [
        f"s: the on_alert command {sys.executable!r} was still running after 0.5 s and was killed"
    ]
    await commands.close(1)


async def test_close_kills_running_commands(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    rules = AlertRules(on_alert=(sys.executable, "-c", HANG, str(pid_file)), command_timeout_s=60)
    commands, _ = commands_for(rules)
    commands(alert_of("s"))
    await until(lambda: pid_file.exists() and pid_file.read_text() != "", "the command's pid")
    await asyncio.wait_for(commands.close(0.1), 10)
    assert gone(int(pid_file.read_text())) and commands.running == 0
    commands(alert_of("s", 1))  # closed: nothing more starts
    assert commands.running == 0 and commands.started == 1


async def test_a_program_that_cannot_start_is_one_clear_warning(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-notifier")
    commands, warnings = commands_for(AlertRules(on_alert=(missing, "tokentop")))
    commands(alert_of("s"))
    commands(alert_of("s", 1))
    await until(lambda: commands.started == 2 and commands.running == 0, "both attempts")
    assert warnings == [
        f"s: the on_alert command {missing!r} could not start: No such file or directory"
    ]
    await commands.close(1)


GATED = (
    "import json, os, sys, time\n"
    "while not os.path.exists(sys.argv[2]): time.sleep(0.01)\n"
    "env = {k: v for k, v in os.environ.items() if k.startswith('TOKENTOP_ALERT_')}\n"
    "with open(sys.argv[1], 'a') as f: f.write(json.dumps(env) + '\\n')\n"
)
"""Waits until the file ``argv[2]`` exists, then appends its alert variables to ``argv[1]``."""


async def test_a_flood_of_alerts_is_coalesced(tmp_path: Path) -> None:
    out, gate = tmp_path / "out.jsonl", tmp_path / "gate"
    rules = AlertRules(on_alert=(sys.executable, "-c", GATED, str(out), str(gate)))
    commands, warnings = commands_for(rules)
    flood = 20
    for i in range(flood):
        commands(alert_of("s", i))
    assert commands.running == PER_SESSION  # the rest wait as one
    assert len(warnings) == 1 and "coalesced" in warnings[0] and warnings[0].startswith("s: ")
    gate.touch()
    runs = PER_SESSION + 1
    await until(lambda: len(lines_of(out)) == runs and commands.running == 0, "the commands")
    assert commands.started == runs
    last = lines_of(out)[-1]
    coalesced = flood - PER_SESSION - 1
    assert last["TOKENTOP_ALERT_RUN_ID"] == f"run-{flood - 1}"  # the latest alert
    assert last["TOKENTOP_ALERT_COALESCED"] == str(coalesced)
    assert f"(and {coalesced} earlier alert(s)" in last["TOKENTOP_ALERT_MESSAGE"]
    assert len(warnings) == 1
    await commands.close(1)


async def test_a_failing_command_is_one_warning_with_its_status() -> None:
    commands, warnings = commands_for(
        AlertRules(on_alert=(sys.executable, "-c", "raise SystemExit(3)"))
    )
    commands(alert_of("s"))
    commands(alert_of("s", 1))
    await until(lambda: commands.started == 2 and commands.running == 0, "both commands")
    assert warnings == [f"s: the on_alert command {sys.executable!r} exited with status 3"]
    await commands.close(1)
