"""The schema-7 columns on a real SQLite file: time per output token, what the token count
counts, and tokentop's own loop lag (a session run's, stored with its final row), read back
in the records, ``tokentop history --runs`` and the exports."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import click
from click.testing import CliRunner, Result

from tests.store.conftest import completed_events, make_session
from tests.store.test_migrations import older_tokentop_holding
from tui.cli_store import export_command, history_command
from tui.session.loop_lag import CLIENT_BOUND_LAG_MS, ClientLag
from tui.session.run import SessionRun
from tui.store import Store, result_record
from tui.store.export import to_markdown
from tui.store.schema import SCHEMA_VERSION
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import Finished, RunEvent, Usage


async def _record(store: Store, events: list[RunEvent], lag: ClientLag | None) -> str:
    """One run as the session layer records it: its accumulator shared with the store, the
    session run as the lag source, the lag set before the Finished is handed over."""
    session = make_session()
    acc = RunAccumulator("", session.name, session.api, session.model, session.prompt)
    run = SessionRun(run_id="", prompt=session.prompt, accumulator=acc, started_at=time.time())
    run.run_id = await store.start_run(
        session, prompt=session.prompt, accumulator=acc, lag_source=run
    )
    for event in events:
        if isinstance(event, Finished) and lag is not None:
            run.record_client_lag(lag)
        acc.apply(event)
        store.add_events(run.run_id, [event])
    await store.flush()
    return run.run_id


async def _cli(command: click.Command, args: list[str]) -> Result:
    """Run a command as a user does (in a thread: it runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, command, args)


def _with_usage(text: str) -> list[RunEvent]:
    events = completed_events(text, step=0.02)
    return [*events[:-1], Usage(events[-1].t, 5, len(text.split())), events[-1]]


async def test_a_client_bound_run_is_stored_and_shown_so(db_path: Path) -> None:
    bound = ClientLag(CLIENT_BOUND_LAG_MS * 2, 180.0, 40)
    async with await Store.open(db_path) as store:
        slow = await _record(store, _with_usage("one two three four five"), bound)
        fine = await _record(store, _with_usage("six seven eight"), ClientLag(2.5, 4.0, 40))
        unmeasured = await _record(store, _with_usage("nine ten"), None)
        runs = {r.run_id: r for r in await store.list_runs()}
        detail = await store.get_run(slow)
    assert (runs[slow].client_lag_p99_ms, runs[slow].client_bound) == (100.0, True)
    assert (runs[fine].client_lag_p99_ms, runs[fine].client_bound) == (2.5, False)
    # no engine measured it: the session run's record says p99 None, not bound
    assert (runs[unmeasured].client_lag_p99_ms, runs[unmeasured].client_bound) == (None, False)
    record = result_record(detail)
    assert (record["client_lag_p99_ms"], record["client_bound"]) == (100.0, True)
    assert record["tokens_source"] == "usage" and detail.tokens_source == "usage"
    # 5 tokens, the first at 0.1 s, the end at 0.2 s: (0.2 - 0.1) s / 4 = 25 ms per token
    assert detail.tpot_ms is not None and abs(detail.tpot_ms - 25.0) < 1e-6
    assert record["tpot_ms"] == round(detail.tpot_ms, 3)
    md = to_markdown(detail)
    assert "| Client-bound | client-bound (engine lag p99 100.0 ms) |" in md
    assert "| TPOT (per output token) | 25.00 ms |" in md
    table = await _cli(history_command, ["--runs", "--db", str(db_path)])
    lines = {line.split()[-1]: line for line in table.stdout.splitlines()[1:]}
    assert "client-bound" in lines[slow[:14]]
    assert "client-bound" not in lines[fine[:14]] + lines[unmeasured[:14]]
    out = await _cli(history_command, ["--runs", "--json", "--db", str(db_path)])
    found = {r["run_id"]: r for r in map(json.loads, out.stdout.splitlines())}
    assert found[slow]["client_bound"] is True and found[fine]["client_bound"] is False


async def test_counts_without_usage_say_what_they_count(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        run_id = await _record(store, completed_events("a few words of answer"), None)
        run = await store.get_run(run_id)
    # no usage: the tokenizer's estimate, named so everywhere it is shown
    assert run.tokens_source == "estimated" and run.tokens_estimated
    md = to_markdown(run)
    assert f"| Output tokens | ~{run.output_tokens} (estimated) |" in md
    table = await _cli(history_command, ["--runs", "--db", str(db_path)])
    assert f"~{run.output_tokens}" in table.stdout.split()
    assert "~N: estimated by a tokenizer" in table.stderr
    # where no tokenizer served, the stored figures are chunks, and say so
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "UPDATE runs SET tokens_source = 'chunks', output_tokens = chunks, tpot_ms = NULL"
        )
    table = await _cli(history_command, ["--runs", "--db", str(db_path)])
    assert f"{run.chunks}ch" in table.stdout.split()
    assert "Nch: content chunks, not tokens" in table.stderr
    exported = await _cli(export_command, [run_id, "--db", str(db_path)])
    assert f"| Output chunks | {run.chunks} chunks (no usage, no tokenizer) |" in exported.stdout
    assert "| Chunks/s |" in exported.stdout and "| Tokens/s |" not in exported.stdout
    assert "| TPOT (per output token) | – |" in exported.stdout
    jsonl = await _cli(export_command, [run_id, "--format", "jsonl", "--db", str(db_path)])
    head = json.loads(jsonl.stdout.splitlines()[0])
    assert head["tokens_source"] == "chunks" and head["tpot_ms"] is None


async def test_a_schema_6_file_reads_its_runs_figures_as_unknown(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        run_id = await _record(store, _with_usage("one two three"), ClientLag(3.0, 5.0, 9))
    with sqlite3.connect(db_path) as conn:  # the file as schema 6 left it
        conn.execute("DROP INDEX runs_by_broadcast")  # schema 8's, then 7's columns
        measured = ("tpot_ms", "tokens_source", "client_lag_p99_ms", "client_bound")
        for column in ("broadcast_id", *measured):
            conn.execute(f"ALTER TABLE runs DROP COLUMN {column}")
        conn.execute("PRAGMA user_version = 6")
    with older_tokentop_holding(db_path):  # read as it is: no upgrade
        async with await Store.open(db_path, readonly=True) as reader:
            assert await reader.schema_version() == 6
            run = await reader.get_run(run_id)
    assert (run.tpot_ms, run.tokens_source, run.client_lag_p99_ms, run.client_bound) == (
        None,
        None,
        None,
        None,
    )
    record = result_record(run)
    assert record["tokens_source"] == "usage" and record["client_bound"] is None
    assert record["tpot_ms"] is not None  # the record's formula over the stored figures
    async with await Store.open(db_path) as store:  # upgrades: no row rewritten
        assert await store.schema_version() == SCHEMA_VERSION
        upgraded = await store.get_run(run_id)
    assert (upgraded.tpot_ms, upgraded.tokens_source, upgraded.client_bound) == (None, None, None)
    assert to_markdown(upgraded).count("| TPOT (per output token) |") == 1
    assert "Client-bound" not in to_markdown(upgraded)
