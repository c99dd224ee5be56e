"""Part ``retention``: how many bytes a monitored run adds to the database, for each
``[store] keep_raw_events`` setting, against the schema-3 stored form measured in the same run.

The workload of issue 12: three sessions (chat, responses, responses with reasoning), each
repeating every second a 400-token answer from the simulator (another process; the
``sim-fast`` timing: 50 ms to the first token, 400 tokens/s), streamed by the engine's
``StreamRun`` through the real writer (one ``add_events`` per batch, as the session layer
does). Each configuration writes its own fresh database; the growth is the main file plus its
write-ahead log, checkpointed (``wal_checkpoint(TRUNCATE)``), after one warm-up run per session,
divided by the runs. The reference is the same store writing each delta as an ``events`` row
and keeping every raw event (``compact_deltas = False``, ``keep_raw_events = "all"``): what
schema 3 wrote. Bar: at most 25 KB per run with the defaults (``keep_raw_events = "failed"``).

It also answers how ``"failed"`` should treat a running run's raw events: holding them back
in memory (bounded, what the writer does) or writing them and deleting them when the run
completes. Both are measured on the same workload as the time spent in write transactions
(flushes, plus the deletes) per run, and the bytes written to the WAL.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import Figure, PartResult, fmt_ratio, part_main, simulator

BAR_BYTES = 25_000
SESSIONS = (
    ("chat", "chat", "sim-fast"),
    ("responses", "responses", "sim-fast"),
    ("reasoning", "responses", "sim-think"),
)
"""(name, api, model): sim-think reasons first (48 tokens), then answers."""
TIMING = "ttft=0.05,tps=400,tokens=400"
EVERY_S = 1.0
_ROWID_OF_RUN = "SELECT id FROM runs WHERE run_id = ?"


@dataclass(slots=True)
class Measured:
    """One configuration's figures."""

    label: str
    runs: int
    bytes_per_run: float
    write_ms_per_run: float
    wal_bytes_per_run: float


async def _workload(
    base_url: str, db: Path, *, keep: str, compact: bool, delete_after: bool, runs_each: int
) -> Measured:
    import httpx

    from tui.config import SessionConfig, StoreConfig
    from tui.store import Store
    from tui.store.queries import DELETE_RAW_EVENTS
    from tui.store.retention import file_bytes
    from tui.stream.runner import StreamRun

    store = await Store.open(db, retention=StoreConfig(keep_raw_events=keep))  # type: ignore[arg-type]
    store.queue.compact_deltas = compact
    write_s = [0.0]
    wal_bytes = [0]
    original = store._flush_batch

    async def timed_flush(*, closing: bool = False, checkpoint_s: float = 0.0) -> None:
        started = time.perf_counter()
        await original(closing=closing, checkpoint_s=checkpoint_s)
        write_s[0] += time.perf_counter() - started

    store._flush_batch = timed_flush  # type: ignore[method-assign]
    wal = db.with_name(db.name + "-wal")

    async def checkpoint() -> None:
        if wal.exists():
            wal_bytes[0] += wal.stat().st_size
        await store._measure()

    sessions = [
        SessionConfig(
            name=name,
            model=model,
            api=api,  # type: ignore[arg-type]
            prompt=f"Write about the sea for {name}.",
            headers={"X-Sim-Timing": TIMING},
        )
        for name, api, model in SESSIONS
    ]
    async with httpx.AsyncClient(timeout=60) as client:

        async def one_run(session: SessionConfig) -> None:
            run = StreamRun(session, client=client, base_url=base_url)
            run_id = await store.start_run(session, prompt=session.prompt)
            async for batch in run.batches():
                store.add_events(run_id, batch)
            if delete_after:  # the other way: every raw event written, deleted at the end
                await store.flush()
                # the run's row is written by a flush (start_run only queues it): its rowid
                # is read once it is stored, outside the timed transactions
                (rowid,) = next(iter(await store._conn.execute_fetchall(_ROWID_OF_RUN, (run_id,))))
                started = time.perf_counter()
                async with store._write_lock:
                    await store._conn.execute("BEGIN IMMEDIATE")
                    await store._conn.execute(DELETE_RAW_EVENTS, (rowid,))
                    await store._conn.execute("COMMIT")
                write_s[0] += time.perf_counter() - started

        async def repeat(session: SessionConfig, times: int) -> None:
            loop = asyncio.get_running_loop()
            for _ in range(times):
                started = loop.time()
                await one_run(session)
                await asyncio.sleep(max(0.0, started + EVERY_S - loop.time()))

        await asyncio.gather(*(repeat(s, 1) for s in sessions))  # schema, sessions rows
        await store.flush()
        await checkpoint()
        before = file_bytes(db)
        write_s[0], wal_bytes[0] = 0.0, 0
        await asyncio.gather(*(repeat(s, runs_each) for s in sessions))
        await store.flush()
        await checkpoint()
        after = file_bytes(db)
        stored = await store.list_runs(limit=10_000)
    await store.close()
    assert {r.status for r in stored} == {"completed"}, {r.status for r in stored}
    runs = len(sessions) * runs_each
    label = f"keep_raw_events={keep}" + ("" if compact else ", schema-3 form")
    if delete_after:
        label = "write raw events, delete on success"
    return Measured(
        label, runs, (after - before) / runs, write_s[0] * 1000 / runs, wal_bytes[0] / runs
    )


CONFIGS = (
    ("reference", "all", False, False),
    ("all", "all", True, False),
    ("failed", "failed", True, False),
    ("none", "none", True, False),
    ("write+delete", "all", True, True),
)


async def _measure(base_url: str, repeat: int, runs_each: int) -> dict[str, Measured]:
    best: dict[str, Measured] = {}
    with tempfile.TemporaryDirectory(prefix="tokentop-bench-") as tmp:
        for i in range(repeat):
            for name, keep, compact, delete_after in CONFIGS:
                db = Path(tmp) / f"{name}-{i}.db"
                m = await _workload(
                    base_url,
                    db,
                    keep=keep,
                    compact=compact,
                    delete_after=delete_after,
                    runs_each=runs_each,
                )
                if name not in best or m.bytes_per_run < best[name].bytes_per_run:
                    best[name] = m
    return best


def measure(repeat: int = 1, runs_each: int = 6) -> PartResult:
    """Run every configuration ``repeat`` times (best of, by bytes per run)."""
    with simulator() as base_url:
        got = asyncio.run(_measure(base_url, max(1, repeat), runs_each))
    ref = got["reference"]
    result = PartResult("retention")
    for name in ("all", "failed", "none"):
        m = got[name]
        bar = name == "failed"
        result.figures.append(
            Figure(
                "retention",
                f"bytes per 400-token run, keep_raw_events={name}" + (" (default)" if bar else ""),
                f"<= {BAR_BYTES / 1000:g} KB" if bar else "-",
                f"{m.bytes_per_run / 1000:.1f} KB",
                (m.bytes_per_run <= BAR_BYTES) if bar else None,
                f"schema-3 form {ref.bytes_per_run / 1000:.1f} KB per run "
                f"({fmt_ratio(ref.bytes_per_run / m.bytes_per_run)} smaller); {m.runs} runs",
            )
        )
    held, deleted = got["failed"], got["write+delete"]
    result.figures.append(
        Figure(
            "retention",
            "raw events of a completed run: write+delete / hold back (write ms per run)",
            "-",
            fmt_ratio(deleted.write_ms_per_run / max(held.write_ms_per_run, 1e-9)),
            None,
            f"hold back {held.write_ms_per_run:.1f} ms and {held.wal_bytes_per_run / 1000:.0f} "
            f"KB of WAL per run; write+delete {deleted.write_ms_per_run:.1f} ms and "
            f"{deleted.wal_bytes_per_run / 1000:.0f} KB of WAL per run",
        )
    )
    result.notes = [
        "write+delete's own growth is not comparable: its runs reuse the pages the deletes "
        "freed (those of the warm-up runs too); in steady state it settles where "
        "keep_raw_events=failed is, after writing every raw event once",
        f"three sessions repeating every {EVERY_S:g} s ({TIMING}; chat, responses, responses "
        f"with reasoning), {got['failed'].runs} measured runs per configuration, best of "
        f"{max(1, repeat)}; bytes per run: "
        + ", ".join(
            f"{got[n].label} {got[n].bytes_per_run / 1000:.1f} KB"
            for n in ("reference", "all", "failed", "none", "write+delete")
        )
        + "; write transactions per run: "
        + ", ".join(
            f"{got[n].label} {got[n].write_ms_per_run:.1f} ms"
            for n in ("reference", "all", "failed", "none", "write+delete")
        ),
    ]
    return result


if __name__ == "__main__":
    part_main("retention", measure)
