"""Faults: a locked, read-only or full database gives a clear message and damages nothing."""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from tests.store.conftest import completed_events, make_session, record
from tui.config import KeepRawEvents, StoreConfig
from tui.store import Store, StoreError
from tui.stream.events import Finished, RawEvent, RunEvent, TextDelta

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


DROP_PRIVILEGES = f"""
import os, asyncio, sqlite3, aiosqlite, msgspec
import tui.store.store, tui.store.records, tui.store.lock
if os.geteuid() == 0:  # root may write anything: become an ordinary user (imports done)
    os.setgroups([])
    os.setgid({NOBODY})
    os.setuid({NOBODY})
"""


def run_python(code: str, *, unprivileged: bool = False, timeout: float = 30) -> str:
    """Run ``code`` in a fresh interpreter (optionally without root's powers); its stdout."""
    source = (DROP_PRIVILEGES if unprivileged else "") + textwrap.dedent(code)
    proc = subprocess.run(
        [sys.executable, "-c", source],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


async def test_a_second_writer_in_this_process_is_a_writer_too(store: Store, db_path: Path) -> None:
    async with await Store.open(db_path) as second:
        assert not second.readonly and second.owner != store.owner
        first_run = await record(store, completed_events("from the first"))
        second_run = await record(second, completed_events("from the second"))
        assert (await second.get_run(first_run)).output_text == "from the first"
    assert (await store.get_run(second_run)).output_text == "from the second"


async def test_an_older_tokentop_holding_the_legacy_lock_is_named(db_path: Path) -> None:
    """tokentop before schema 3 locked ``<db>.lock`` exclusively and wrote its pid there."""
    db_path.parent.mkdir(parents=True)
    fd = os.open(db_path.with_name(db_path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, b"4242\n")
        with pytest.raises(StoreError) as err:
            await Store.open(db_path)
        assert f"database {db_path} is in use by an older tokentop (pid 4242)" in str(err.value)
    finally:
        os.close(fd)
    async with await Store.open(db_path) as store:  # and a new writer locks it shared
        assert not store.readonly
        legacy = os.open(db_path.with_name(db_path.name + ".lock"), os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(legacy, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(legacy)


async def test_a_writer_in_another_process_does_not_stop_this_one_or_readers(
    db_path: Path,
) -> None:
    async with await Store.open(db_path) as first:
        run_id = await record(first, completed_events("kept before the other process"))
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        textwrap.dedent(
            f"""
            import asyncio, sys
            from tui.store import Store
            async def main():
                store = await Store.open({str(db_path)!r})
                print("ready", flush=True)
                sys.stdin.readline()
                await store.close()
            asyncio.run(main())
            """
        ),
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        line = await asyncio.wait_for(holder.stdout.readline(), 30)
        assert line.strip() == b"ready"
        # `tokentop run` while the dashboard runs: both write
        async with await Store.open(db_path) as writer:
            assert not writer.readonly
            second = await record(writer, completed_events("written next to the dashboard"))
        # `tokentop history` while the dashboard runs
        async with await Store.open(db_path, readonly=True) as reader:
            assert reader.readonly
            assert [r.run_id for r in await reader.list_runs()] == [second, run_id]
            with pytest.raises(StoreError, match="open read-only"):
                await reader.start_run(make_session(), prompt="x")
        holder.stdin.write(b"\n")
        await holder.stdin.drain()
        assert await asyncio.wait_for(holder.wait(), 30) == 0
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
    async with await Store.open(db_path) as again:
        assert not again.readonly


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory outside pytest's private tmp tree, so that another user can reach it."""
    path = Path(tempfile.mkdtemp(prefix="tokentop-store-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for p in [path, *path.rglob("*")]:
            p.chmod(0o777) if p.is_dir() else p.chmod(0o666)
        shutil.rmtree(path)


def _make_db(path: Path) -> str:
    async def main() -> str:
        async with await Store.open(path) as store:
            return await record(store, completed_events("a stored answer"))

    return asyncio.run(main())


OPEN_AND_REPORT = """
    import asyncio
    from tui.store import Store, StoreError
    async def main():
        try:
            store = await Store.open({path!r}, readonly={readonly})
        except StoreError as exc:
            print("StoreError:", exc)
            return
        runs = await store.list_runs()
        print("opened", [r.output_text for r in runs])
        await store.close()
    asyncio.run(main())
"""


def _open_elsewhere(path: Path, *, readonly: bool) -> str:
    """Open ``path`` in a process that lacks write permission (an unprivileged user when
    the tests run as root, who may write anything)."""
    return run_python(OPEN_AND_REPORT.format(path=str(path), readonly=readonly), unprivileged=True)


def test_a_read_only_file_is_refused_for_writing_but_readable(shared_dir: Path) -> None:
    db = shared_dir / "tokentop.db"
    _make_db(db)
    shared_dir.chmod(0o777)  # the directory is writable: only the file is not
    for p in shared_dir.iterdir():
        p.chmod(0o444)
    before = db.read_bytes()
    out = _open_elsewhere(db, readonly=False)
    assert out.startswith("StoreError: database ") and "is read-only" in out, out
    assert _open_elsewhere(db, readonly=True).strip() == "opened ['a stored answer']"
    assert db.read_bytes() == before


def test_a_read_only_directory_is_refused_for_writing_but_readable(shared_dir: Path) -> None:
    sub = shared_dir / "ro"
    sub.mkdir()
    db = sub / "tokentop.db"
    _make_db(db)
    for p in sub.iterdir():
        p.chmod(0o666)  # the file is writable: only the directory is not
    sub.chmod(0o555)
    out = _open_elsewhere(db, readonly=False)
    assert out.startswith(f"StoreError: the directory {sub} is read-only"), out
    out = _open_elsewhere(sub / "new.db", readonly=False)
    assert "read-only" in out, out
    assert _open_elsewhere(db, readonly=True).strip() == "opened ['a stored answer']"


async def test_a_full_disk_stops_recording_visibly_and_damages_nothing(db_path: Path) -> None:
    store = await Store.open(db_path, retention=StoreConfig(keep_raw_events="all"))
    kept = await record(store, completed_events("this run was committed before the disk filled"))
    messages: list[str] = []
    store.on_error = messages.append
    run_id = await store.start_run(make_session(), prompt="big")
    store.add_event(run_id, TextDelta(0.01, "start "))
    await store.flush()
    # No room to grow: the next batch cannot be written (SQLITE_FULL).
    # (a test may reach into the store's connection: the limit is per connection)
    (pages,) = next(iter(await store._conn.execute_fetchall("PRAGMA page_count")))
    await store._conn.execute(f"PRAGMA max_page_count = {pages}")
    for i in range(20_000):
        store.add_event(run_id, RawEvent(0.02 + i * 1e-5, 1, "delta", "x" * 200))
    await store.flush()
    assert len(messages) == 1 and messages == store.errors
    assert store.last_error is not None and "full" in store.last_error
    assert "recording stopped" in store.last_error
    # the stream goes on: add_event keeps accepting (and dropping), start_run still answers
    store.add_event(run_id, TextDelta(0.5, "more"))
    store.add_event(run_id, Finished(0.6, "completed", "stop", "stop"))
    later = await store.start_run(make_session(), prompt="later")
    store.add_event(later, TextDelta(0.1, "unsaved"))
    await store.flush()
    assert store.events_dropped >= 20_003
    assert len(store.errors) == 1  # reported once
    await store.close()

    con = sqlite3.connect(db_path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    async with await Store.open(db_path) as again:
        assert (await again.get_run(kept)).output_text == (
            "this run was committed before the disk filled"
        )
        partial = await again.get_run(run_id)
        assert partial.status == "interrupted" and partial.output_text == "start "
        assert [type(e).__name__ for e in await again.run_events(run_id)] == ["TextDelta"]
        with pytest.raises(StoreError, match="no run"):
            await again.get_run(later)


async def test_close_marks_unfinished_runs_interrupted(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        run_id = await store.start_run(make_session(), prompt="p")
        store.add_event(run_id, TextDelta(0.25, "cut "))
        store.add_event(run_id, TextDelta(0.5, "short"))
    async with await Store.open(db_path, readonly=True) as reader:
        run = await reader.get_run(run_id)
    assert (run.status, run.output_text, run.ended_s) == ("interrupted", "cut short", 0.5)
    assert run.finish_reason is None and run.ttft_ms == 250.0


async def test_close_keeps_query_plans_good_after_a_successful_flush(db_path: Path) -> None:
    """``PRAGMA optimize`` (cheap, keeps SQLite's query plans good) runs whenever a writer
    closes, also when its last flush committed everything."""
    statements: list[str] = []
    store = await Store.open(db_path)
    await record(store, completed_events("kept"))
    await store._conn.set_trace_callback(statements.append)
    await store.close()
    assert store.events_dropped == 0 and store.errors == []
    assert any(s.strip().upper().startswith("PRAGMA OPTIMIZE") for s in statements), statements


async def test_misuse_is_reported(store: Store) -> None:
    with pytest.raises(StoreError, match="not started"):
        store.add_event("nope", TextDelta(0.1, "x"))
    run_id = await store.start_run(make_session(), prompt="p", run_id="custom-id-1")
    assert run_id == "custom-id-1"
    with pytest.raises(StoreError, match="already started"):
        await store.start_run(make_session(), prompt="p", run_id=run_id)
    store.add_event(run_id, Finished(0.1, "cancelled", "cancelled", None))
    store.add_event(run_id, TextDelta(0.2, "after the end"))  # dropped, not an error
    await store.flush()
    assert [type(e).__name__ for e in await store.run_events(run_id)] == ["Finished"]
    with pytest.raises(StoreError, match="ambiguous"):
        await record(store, completed_events("one"), make_session(name="x"))
        await store.start_run(make_session(), prompt="p", run_id="custom-id-2")
        await store.get_run("custom-id-")
    with pytest.raises(StoreError, match="no run 'zzz'"):
        await store.get_run("zzz")


async def test_a_reader_never_blocks_a_writer(db_path: Path) -> None:
    async with await Store.open(db_path) as first:
        run_id = await first.start_run(make_session(), prompt="left running")
        first.add_event(run_id, TextDelta(0.1, "partial"))
        await first.flush()
        # simulate a crash: the lock goes, the row stays `running`
        first._lock.release()  # type: ignore[union-attr]
        async with await Store.open(db_path, readonly=True) as reader:
            # the reader did the upkeep (nobody held the lock) and gave the lock back
            assert (await reader.get_run(run_id)).status == "interrupted"
            async with await Store.open(db_path) as writer:
                assert not writer.readonly
                second = await record(writer, completed_events("written while reading"))
            assert (await reader.get_run(second)).output_text == "written while reading"


@pytest.mark.parametrize(
    ("keep_raw", "bogus"),
    [
        ("all", RawEvent(0.2, 1, "x", cast(str, object()))),  # not JSON-encodable
        ("failed", RawEvent(0.2, 1, "x", cast(str, object()))),  # held, then written at once
        ("failed", TextDelta(0.2, cast(str, object()))),  # in a compact deltas row
    ],
)
async def test_an_event_that_cannot_be_saved_stops_recording_visibly(
    db_path: Path, keep_raw: KeepRawEvents, bogus: RunEvent
) -> None:
    store = await Store.open(db_path, retention=StoreConfig(keep_raw_events=keep_raw))
    kept = await record(store, completed_events("saved before the bad event"))
    run_id = await store.start_run(make_session(), prompt="p")
    store.add_event(run_id, TextDelta(0.1, "fine "))
    await store.flush()
    store.add_event(run_id, bogus)
    await store.flush()  # never raises: the error is reported instead
    assert store.last_error is not None and "internal error" in store.last_error
    store.add_event(run_id, TextDelta(0.3, "dropped"))
    await store.close()
    async with await Store.open(db_path) as again:
        assert (await again.get_run(kept)).status == "completed"
        run = await again.get_run(run_id)
        assert (run.status, run.output_text) == ("interrupted", "fine ")
