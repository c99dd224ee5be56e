"""``tokentop stats``: the table, --json, --since, --session, CONFIG and the errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.store.test_stats import Row, insert_runs, new_database
from tests.test_headless import tokentop
from tui.cli_monitor import stats_command
from tui.vocab import MISSING


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    """A database with two sessions: ``api`` (old and recent runs, a failure) and ``web``."""
    path = await new_database(tmp_path / "runs.db")
    now = dt.datetime.now(dt.UTC)
    insert_runs(
        path,
        [
            Row("api", now - dt.timedelta(hours=5), ttft_ms=1000.0, tokens_per_s=10.0),
            Row("api", now - dt.timedelta(minutes=20), ttft_ms=100.0, tokens_per_s=40.0),
            Row("api", now - dt.timedelta(minutes=10), ttft_ms=300.0, tokens_per_s=60.0),
            Row(
                "api",
                now - dt.timedelta(minutes=5),
                "failed",
                "error",
                error_kind="http",
                error_status=503,
                error_message="Service Unavailable",
            ),
            Row("api", now - dt.timedelta(minutes=4), "cancelled", "cancelled"),
            Row("web", now - dt.timedelta(hours=3), ttft_ms=None, tokens_per_s=None),
        ],
    )
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(stats_command, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_the_table(db: Path) -> None:
    code, out, err = invoke("--db", str(db))
    assert code == 0, err
    header, api, web, failure = out.splitlines()
    assert header.split()[:5] == ["SESSION", "RUNS", "OK", "%", "FAILED"]
    assert api.split()[:4] == ["api", "5", "75.0", "1"]
    assert "http" in api and "300 / 930" in api  # p50 / p95 of 1000, 100, 300 (linear)
    # web has no TTFT or rate: the missing mark, never a number or a hyphen
    assert web.split()[:4] == ["web", "1", "100.0", "0"] and MISSING in web
    assert failure == "api: last failure (http 503): Service Unavailable"
    # right-aligned numbers end under their header
    assert api[header.index("RUNS") + len("RUNS") - 1] == "5"
    assert web[header.index("FAILED") + len("FAILED") - 1] == "0"


def test_json_has_every_field_as_numbers(db: Path) -> None:
    code, out, _ = invoke("--db", str(db), "--json")
    assert code == 0
    api, web = json.loads(out)
    assert api["session"] == "api" and web["session"] == "web"
    assert (api["runs"], api["cancelled"], api["failures"]) == (5, 1, 1)
    assert api["success_rate"] == 0.75
    assert api["ttft_ms"] == {"count": 3, "p50": 300.0, "p95": pytest.approx(930.0)}
    assert api["last_failure"]["error_status"] == 503
    assert api["last_failure"]["message"] == "Service Unavailable"
    assert web["ttft_ms"] == {"count": 0, "p50": None, "p95": None}
    assert dt.datetime.fromisoformat(api["first_run_at"]).tzinfo is not None


def test_since_and_session(db: Path) -> None:
    code, out, _ = invoke("--db", str(db), "--since", "1h", "--json")
    assert code == 0
    (api,) = json.loads(out)
    assert api["runs"] == 4 and api["ttft_ms"]["p50"] == 200.0
    code, out, _ = invoke("--db", str(db), "--session", "web", "--session", "api", "--json")
    assert [s["session"] for s in json.loads(out)] == ["api", "web"]
    code, out, _ = invoke("--db", str(db), "--since", "all", "--session", "web")
    assert code == 0 and out.splitlines()[1].split()[:2] == ["web", "1"]
    # a known session with no runs in the window: said plainly, with its empty row
    code, out, err = invoke("--db", str(db), "--session", "web", "--since", "30m")
    assert code == 0 and "no runs in the last 30m" in err
    assert out.splitlines()[1].split()[:3] == ["web", "0", MISSING]


def test_bad_arguments(db: Path) -> None:
    code, _, err = invoke("--db", str(db), "--since", "yesterday")
    assert code == 2
    assert "'yesterday' is not a time span" in err and "1h" in err and "all" in err
    code, _, err = invoke("--db", str(db), "--session", "nope")
    assert code == 2 and "'nope'" in err and "sessions with runs: api, web" in err


@pytest.fixture
async def empty(tmp_path: Path) -> Path:
    """A new database without runs."""
    return await new_database(tmp_path / "empty.db")


def test_empty_and_missing_databases(empty: Path, tmp_path: Path) -> None:
    code, out, err = invoke("--db", str(empty))
    assert (code, out) == (0, "") and "no runs yet" in err
    code, out, _ = invoke("--db", str(empty), "--json")
    assert (code, json.loads(out)) == (0, [])
    code, out, err = invoke("--db", str(tmp_path / "missing.db"))
    assert code == 1 and out == ""
    assert err.startswith("Error: no database at")


def test_config_lists_its_sessions(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "s.toml"
    config.write_text(
        '[[sessions]]\nname = "api"\nmodel = "m"\nprompt = "p"\n'
        '[[sessions]]\nname = "new"\nmodel = "m"\nprompt = "p"\n'
    )
    code, out, _ = invoke(str(config), "--db", str(db), "--json")
    assert code == 0
    assert [(s["session"], s["runs"]) for s in json.loads(out)] == [("api", 5), ("new", 0)]
    (tmp_path / "bad.toml").write_text("[[sessions]]\nname = 3\n")
    code, _, err = invoke(str(tmp_path / "bad.toml"), "--db", str(db))
    assert code == 2 and "bad.toml" in err


def test_the_command_line_reaches_it(db: Path, tmp_path: Path) -> None:
    proc = tokentop(tmp_path, "--db", str(db), "stats", "--json", "--session", "api")
    assert proc.returncode == 0, proc.stderr
    assert [s["runs"] for s in json.loads(proc.stdout)] == [5]
