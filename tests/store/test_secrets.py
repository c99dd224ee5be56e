"""The canary: an API key held in the environment and sent in auth headers must not reach
the database file (nor its WAL), nor any export or history output."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.store.conftest import completed_events, make_session
from tui.cli_store import export_command, history_command
from tui.config import StoreConfig
from tui.store import Store
from tui.stream.events import (
    Connecting,
    Finished,
    RawEvent,
    RunError,
    Started,
    TextDelta,
)


def _files_bytes(db: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(db.parent)): p.read_bytes()
        for p in sorted(db.parent.rglob("*"))
        # the db, -wal, -shm, .lock and the writers' lock files
        if p.is_file() and p.relative_to(db.parent).parts[0].startswith(db.name)
    }


async def test_the_canary_key_never_reaches_the_db_or_an_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = f"sk-canary-{secrets.token_hex(12)}"
    monkeypatch.setenv("TT_CANARY_KEY", canary)
    session = make_session(
        "canary",
        api_key_env="TT_CANARY_KEY",
        headers={
            "Authorization": f"Bearer {canary}",
            "x-api-key": canary,
            "API-Key": canary,
            "Proxy-Authorization": f"Basic {canary}",
            "Cookie": f"session={canary}",
            "X-Team": "eval",
        },
        params={"top_p": 0.9, "api_key": canary, "metadata": {"note": f"key {canary}"}},
    )
    db = tmp_path / "secret.db"
    store = await Store.open(db)
    try:
        ok = await store.start_run(session, prompt="say hi")
        for event in completed_events("hi there"):
            store.add_event(ok, event)
        # a misbehaving gateway that echoes the key in a URL, a raw event and an error message
        bad = await store.start_run(session, prompt=f"the key is {canary}")
        for event in (
            Connecting(0.0, 1, "POST", f"https://gw.example/v1/responses?api-key={canary}"),
            Started(0.01, 1, 200, "req"),
            RawEvent(0.02, 1, "error", json.dumps({"error": f"bad key {canary}"})),
            TextDelta(0.03, f"echo {canary}"),
            Finished(
                0.04, "failed", "error", None, RunError("server", f"invalid key {canary}", 401)
            ),
        ):
            store.add_event(bad, event)
        await store.flush()
        files = await asyncio.to_thread(_files_bytes, db)
        assert {f"{db.name}", f"{db.name}-wal"} <= set(files)  # WAL in use while open
        for name, data in files.items():
            assert canary.encode() not in data, f"the key is in {name}"

        detail = await store.get_run(ok)
        assert set(detail.config["headers"]) == {"X-Team"}
        assert detail.config["api_key_env"] == "TT_CANARY_KEY"  # the variable's name is kept
        assert detail.config["headers"] == {"X-Team": "eval"}
        assert "headers.Authorization" in detail.config["redacted"]
        assert (await store.get_run(bad)).output_text == "echo [redacted]"
    finally:
        await store.close()

    for name, data in (await asyncio.to_thread(_files_bytes, db)).items():
        assert canary.encode() not in data, f"the key is in {name} after close"

    runner = CliRunner()
    outputs: list[str] = []
    for run_id in (ok, bad):
        for fmt in ("md", "json", "jsonl"):
            result = await asyncio.to_thread(
                runner.invoke, export_command, [run_id, "--format", fmt, "--db", str(db)]
            )
            assert result.exit_code == 0, result.output
            outputs.append(result.output)
            out_file = tmp_path / f"{run_id}.{fmt}"
            result = await asyncio.to_thread(
                runner.invoke,
                export_command,
                [run_id, "--format", fmt, "-o", str(out_file), "--db", str(db)],
            )
            assert result.exit_code == 0, result.output
            outputs.append(await asyncio.to_thread(out_file.read_text))
    for args in ([], ["--json"]):
        result = await asyncio.to_thread(runner.invoke, history_command, [*args, "--db", str(db)])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert all(outputs) and "[redacted]" in "".join(outputs)
    for output in outputs:
        assert canary not in output

    # and a copy of everything on disk, as a last check that nothing was missed
    copy = tmp_path / "copy"
    await asyncio.to_thread(shutil.copytree, db.parent, copy, ignore=shutil.ignore_patterns("copy"))
    for path in copy.rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path


async def test_the_snapshot_keeps_ordinary_settings(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TT_KEY", "sk-not-stored-0000")
    session = make_session(
        "settings",
        api_key_env="TT_KEY",
        headers={"X-Team": "eval", "X-Auth-Token": "t0ken", "X-Goog-Api-Key": "g"},
        params={"max_tokens": 50, "top_k": 3, "prompt_cache_key": "c", "hf_token": "h"},
    )
    run_id = await store.start_run(session, prompt="p")
    config = (await store.get_run(run_id)).config
    assert config["headers"] == {"X-Team": "eval"}
    assert config["params"] == {"max_tokens": 50, "top_k": 3, "prompt_cache_key": "c"}
    assert config["redacted"] == [
        "headers.X-Auth-Token",
        "headers.X-Goog-Api-Key",
        "params.hf_token",
    ]
    assert config["api_key_env"] == "TT_KEY" and config["model"] == "gpt-test"


async def test_a_key_with_json_escaped_characters_is_blanked_in_stored_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = 'sk-odd"key\\' + secrets.token_hex(6)  # a quote and a backslash: escaped in JSON
    monkeypatch.setenv("TT_ODD_KEY", key)
    session = make_session("odd", api_key_env="TT_ODD_KEY")
    db = tmp_path / "odd.db"
    keep_all = StoreConfig(keep_raw_events="all")  # the raw event must be stored, blanked
    async with await Store.open(db, retention=keep_all) as store:
        run_id = await store.start_run(session, prompt="p")
        store.add_events(
            run_id,
            [
                RawEvent(0.01, 1, "error", json.dumps({"error": f"bad key {key}"})),
                TextDelta(0.02, f"echo {key}"),
                Finished(0.03, "completed", "stop", "stop"),
            ],
        )
        await store.flush()
        stored = await store.run_events(run_id)
    encoded = {
        key.encode(),
        json.dumps(key)[1:-1].encode(),
        json.dumps(json.dumps(key)[1:-1])[1:-1].encode(),
    }
    for name, data in (await asyncio.to_thread(_files_bytes, db)).items():
        for form in encoded:
            assert form not in data, f"the key is in {name}"
    assert stored[1] == TextDelta(0.02, "echo [redacted]")
    assert key not in stored[0].data  # type: ignore[union-attr]
