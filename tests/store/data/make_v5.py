"""How ``v5.db.gz`` and ``v5_expected.json`` were made: with the schema-5 store of commit
4b963e9 (its tree exported with ``git archive 4b963e9 | tar -x -C DIR``, then in DIR
``PYTHONPATH=. python tests/store/data/make_v5.py && gzip -9n tests/store/data/v5.db``).
Six simulator runs (both APIs, a reasoning run, a tool call, an in-band error, a
dropped-and-resumed stream; deltas in the compact form, raw events kept only for the failed
run), an alert, a compare round of two columns that ended, and a seventh run and a second
round left ``running`` by a writer that died; the JSON holds what that code read back from
it (after re-folding the dead writer's run and interrupting its round). Kept for the
record: run against a later store it would no longer build a V5 file."""

import asyncio
import dataclasses
import json
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import httpx

from tests.store.conftest import make_session
from tui.sim.server import Simulator
from tui.store import Store, export
from tui.store.records import round_fields
from tui.stream.events import Api, Finished
from tui.stream.runner import StreamRun

OUT = Path("tests/store/data")
RUNS: tuple[tuple[Api, str, str | None, str, str | None], ...] = (
    # api, model, fault, prompt, round (the finished round's column, or "dead")
    ("responses", "sim-think", None, "Write about the sea.", None),
    ("chat", "sim", None, "Write about 바다.", "done"),
    ("responses", "sim", None, "Write about 바다, too.", "done"),
    ("chat", "sim-tools", None, "What is the weather in Seoul?", None),
    ("chat", "sim", "error=8", "Write and fail.", None),
    ("responses", "sim", "drop=8", "Write and resume.", None),
    ("chat", "sim", None, "Left running by a writer that died.", "dead"),
)


async def main(url: str) -> None:
    """Write the fixture and its expectations."""
    work = Path(tempfile.mkdtemp())
    db = work / "tokentop.db"
    store = await Store.open(db)
    assert await store.schema_version() == 5
    await store.start_round(
        "0000round0done",
        prompt="Write about 바다.",
        count=1,
        order="interleaved",
        sessions=["v5-chat-round", "v5-responses-round"],
    )
    await store.start_round(
        "0000round1dead",
        prompt="Left running by a writer that died.",
        count=2,
        order="sequential",
        sessions=["v5-chat-dead"],
    )
    async with httpx.AsyncClient(timeout=None) as client:
        for i, (api, model, fault, prompt, in_round) in enumerate(RUNS):
            headers = {"X-Sim-Timing": "ttft=0,tps=2000,tokens=12"}
            if fault:
                headers["X-Sim-Fault"] = fault
            name = f"v5-{api}"
            if in_round:
                name += "-round" if in_round == "done" else "-dead"
            s = make_session(name=name, api=api, model=model, headers=headers, prompt=prompt)
            run = StreamRun(s, client=client, base_url=url, prompt=prompt)
            rid = await store.start_run(s, prompt=prompt)
            if in_round:
                round_id = "0000round0done" if in_round == "done" else "0000round1dead"
                store.add_round_run(round_id, session=name, index=1, run_id=rid)
            async for batch in run.batches():
                if i == len(RUNS) - 1:
                    batch = [e for e in batch if not isinstance(e, Finished)]
                store.add_events(rid, batch)
            if fault == "error=8":
                store.record_alert(
                    session=s.name,
                    run_id=rid,
                    metric="on_failure",
                    value=None,
                    threshold=None,
                    message=f"{s.name}: the run failed",
                    at=1_767_225_600.0,
                )
            await store.flush()
            if i == 2:
                await store.end_round("0000round0done", status="done")
    # the file as it is while the writer is alive (its last run and round still running)
    fixture = OUT / "v5.db"
    fixture.unlink(missing_ok=True)
    src = sqlite3.connect(db)
    dst = sqlite3.connect(fixture)
    src.backup(dst)
    src.close()
    dst.execute("PRAGMA journal_mode=DELETE")
    dst.execute("PRAGMA page_size=1024")
    dst.execute("VACUUM")
    dst.close()
    await store.close()
    # what the V5 code reads from it, once a V5 writer has re-folded the dead writer's run
    check = work / "check" / "tokentop.db"
    check.parent.mkdir()
    shutil.copy(fixture, check)
    expected: dict[str, dict[str, str]] = {}
    async with await Store.open(check) as reader:
        for r in await reader.list_runs():
            events = await reader.run_events(r.run_id)
            detail = await reader.get_run(r.run_id)
            expected[r.run_id] = {
                "status": detail.status,
                "jsonl": "".join(export.to_jsonl(events)),
                "json": export.to_json(detail),
                "md": export.to_markdown(detail),
            }
        alerts = [dataclasses.asdict(a) for a in await reader.list_alerts()]
        rounds = [round_fields(r) for r in await reader.list_rounds()]
    for alert in alerts:
        alert["at"] = alert["at"].isoformat()
    result = {"runs": expected, "alerts": alerts, "rounds": rounds}
    (OUT / "v5_expected.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    print(
        {k: v["status"] for k, v in expected.items()},
        [(r["round_id"], r["status"], len(r["runs"])) for r in rounds],
        os.path.getsize(fixture),  # noqa: ASYNC240
    )


if __name__ == "__main__":
    sim = Simulator(seed=0)
    asyncio.run(main(sim.start()))
    sim.stop()
