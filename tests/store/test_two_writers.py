"""Two writer processes, one database, and a busy database never drops an event.

Each child process records its own runs while a thread of it holds write transactions
longer than the store's busy timeout (so that the other process's flushes, and its own,
find the database busy again and again); afterwards every event of both is in the file
and neither reported an error.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import textwrap
from pathlib import Path

from tui.store import Store

ROOT = Path(__file__).resolve().parents[2]

EVENTS = 6_000
"""Events per run (three runs per process)."""

CHILD = textwrap.dedent(
    """
    import asyncio, json, sqlite3, sys, threading, time

    import tui.store.connection as connection
    connection.BUSY_TIMEOUT_MS = 50  # give up waiting soon: SQLITE_BUSY comes often
    from tui.config import SessionConfig
    from tui.store import Store
    from tui.stream.events import Finished, TextDelta

    db, tag, events = sys.argv[1], sys.argv[2], int(sys.argv[3])
    stop = threading.Event()
    holds = 0

    def hold():
        # another writer of this database, holding each write transaction for 150 ms
        global holds
        con = sqlite3.connect(db, isolation_level=None, timeout=5)
        while not stop.is_set():
            con.execute("BEGIN IMMEDIATE")
            time.sleep(0.15)
            con.execute("COMMIT")
            holds += 1
            time.sleep(0.02)
        con.close()

    async def main():
        store = await Store.open(db)
        errors = []
        store.on_error = errors.append
        store.flush_period = 0.02
        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        session = SessionConfig(name=tag, model="m", prompt="p", base_url="http://x/v1")
        runs = []
        for r in range(3):
            run_id = await store.start_run(session, prompt=f"{tag} {r}")
            runs.append(run_id)
            for i in range(events):
                store.add_event(run_id, TextDelta(i * 1e-4, f"{tag}{r}.{i} "))
                if i % 200 == 0:
                    await asyncio.sleep(0.002)
            store.add_event(run_id, Finished(events * 1e-4, "completed", "stop", "stop"))
        stop.set()
        holder.join()
        await store.close()
        print(json.dumps({"runs": runs, "errors": errors, "dropped": store.events_dropped,
                          "retries": getattr(store, "busy_retries", 0), "holds": holds}))

    asyncio.run(main())
    """
)


async def test_two_processes_writing_one_database_lose_no_event(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    async with await Store.open(db):  # created before: the children only write
        pass
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            str(db),
            tag,
            str(EVENTS),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for tag in ("a", "b")
    ]
    reports = []
    for child in children:
        out, err = await asyncio.wait_for(child.communicate(), 120)
        assert child.returncode == 0, err.decode()
        reports.append(json.loads(out))
    for report in reports:
        assert report["errors"] == [] and report["dropped"] == 0, report
    # the contention was real: flushes found the database busy and were retried
    assert sum(r["retries"] for r in reports) > 0, reports
    con = sqlite3.connect(db)
    try:
        for tag, report in zip("ab", reports, strict=True):
            for r, run_id in enumerate(report["runs"]):
                (rowid, status, text) = con.execute(
                    "SELECT id, status, output_text FROM runs WHERE run_id = ?", (run_id,)
                ).fetchone()
                count, seqs = con.execute(
                    "SELECT count(*), max(seq) FROM events WHERE run = ?", (rowid,)
                ).fetchone()
                (deltas,) = con.execute(
                    "SELECT sum(count) FROM deltas WHERE run = ?", (rowid,)
                ).fetchone()  # the text deltas, in their compact rows
                assert (status, count + deltas, seqs) == ("completed", EVENTS + 1, EVENTS)
                assert text == "".join(f"{tag}{r}.{i} " for i in range(EVENTS))
    finally:
        con.close()
