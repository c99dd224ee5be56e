"""Shared helpers for the store tests: sessions, one event of every kind, an open store."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tui.config import SessionConfig
from tui.store import Store
from tui.stream.events import (
    EVENT_TYPES,
    Api,
    Connecting,
    Finished,
    Notice,
    RawEvent,
    ReasoningDelta,
    ResponseInfo,
    Resumed,
    Retrying,
    RunError,
    RunEvent,
    Started,
    TextDelta,
    ToolCallDelta,
    Usage,
)


def make_session(
    name: str = "poem",
    model: str = "gpt-test",
    *,
    prompt: str = "Write a poem.",
    api: Api = "responses",
    api_key_env: str | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
) -> SessionConfig:
    """A simulator session with the given overrides."""
    return SessionConfig(
        name=name,
        model=model,
        prompt=prompt,
        api=api,
        api_key_env=api_key_env,
        headers=headers or {},
        params=params or {},
    )


def every_kind_events() -> list[RunEvent]:
    """A plausible run that uses every event kind in tui.stream.events, odd values included."""
    events: list[RunEvent] = [
        Connecting(0.0, 1, "POST", "http://127.0.0.1:1/v1/responses"),
        Started(0.012, 1, 200, "req_1", (("x-request-id", "req_1"), ("server", "sim"))),
        ResponseInfo(0.013, "resp_abc", "gpt-test-2025"),
        RawEvent(0.0131, 1, "response.created", '{"type":"response.created"}', "1"),
        ReasoningDelta(0.02, "thinking…"),
        TextDelta(0.05, "Hello"),
        TextDelta(0.06, " wörld \u2028 한국어 ✓"),
        ToolCallDelta(0.07, 0, '{"city": ', "get_weather", "call_1"),
        ToolCallDelta(0.08, 0, '"Seoul"}'),
        Notice(0.081, "empty_stop", "stop with no content"),
        Retrying(
            0.09, 1, 4, 0.5, "resume", RunError("dropped", "connection reset", None, None, None)
        ),
        Connecting(0.6, 2, "GET", "http://127.0.0.1:1/v1/responses/resp_abc?stream=true"),
        Started(0.61, 2, 200, None),
        Resumed(0.611, 2, 7, None),
        RawEvent(0.62, 2, None, "data without event name", None),
        TextDelta(0.63, "!"),
        Usage(0.64, 12, 5, 1, 3, 17),
        Finished(
            0.65,
            "failed",
            "error",
            None,
            RunError("server", "in-band error", 500, "req_2", "server_error"),
        ),
    ]
    assert {type(e).__name__ for e in events} == set(EVENT_TYPES)
    return events


def completed_events(text: str, *, start: float = 0.0, step: float = 0.01) -> list[RunEvent]:
    """A completed run streaming ``text`` word by word."""
    words = text.split(" ")
    events: list[RunEvent] = [
        Connecting(start, 1, "POST", "http://x/v1/responses"),
        Started(start + 0.001, 1, 200, "req"),
    ]
    t = start + 0.1
    for i, word in enumerate(words):
        events.append(TextDelta(t, word if i == 0 else " " + word))
        t += step
    events.append(Finished(t, "completed", "stop", "completed"))
    return events


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test database lives."""
    return tmp_path / "data" / "tokentop.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Store]:
    """An open store on a fresh file, closed after the test."""
    s = await Store.open(db_path)
    try:
        yield s
    finally:
        await s.close()


async def record(store: Store, events: list[RunEvent], session: SessionConfig | None = None) -> str:
    """Store one run of ``session`` (default: :func:`make_session`) with ``events``."""
    session = session or make_session()
    run_id = await store.start_run(session, prompt=session.prompt)
    for event in events:
        store.add_event(run_id, event)
    await store.flush()
    return run_id


def as_older_records(record: dict[str, Any]) -> dict[str, Any]:
    """A run's JSON export without the keys issue 13 added (the per-chunk figures under their
    own name, ``tokens_source``, ``tpot_ms``, the client's lag), checked first: what an older
    tokentop wrote reads the same, plus these (its client lag unknown: None)."""
    record = dict(record)
    assert record.pop("inter_chunk_ms") == record["itl_ms"]
    assert record.pop("tokens_source") in ("usage", "estimated", "chunks")
    record.pop("tpot_ms")
    assert record.pop("client_lag_p99_ms") is None
    assert record.pop("client_bound") is None
    return record


def as_older_jsonl(text: str) -> str:
    """A run's JSON-lines export as before the Responses response's ``previous_response_id``
    was read: a ``ResponseInfo`` had no ``continues`` nor ``names_previous`` (older runs
    read them as their defaults; checked as it goes)."""
    added = ', "continues": null, "names_previous": false}'
    lines = []
    for line in text.splitlines(keepends=True):
        if '"kind": "ResponseInfo"' in line:
            assert added in line, line
            line = line.replace(added, "}")
        lines.append(line)
    return "".join(lines)


def as_older_markdown(text: str) -> str:
    """A run's Markdown export as before issue 13 named its figures (checked as it goes):
    the inter-chunk latency was "ITL", there was no TPOT row nor client-bound row, and
    estimated counts and chunk counts were both "N (estimated)" output tokens."""
    assert "| Inter-chunk p50 / p95 / p99 |" in text
    text = text.replace("| Inter-chunk p50 / p95 / p99 |", "| ITL p50 / p95 / p99 |")
    text, tpot = re.subn(r"^\| TPOT \(per output token\) \|.*\n", "", text, flags=re.M)
    assert tpot == 1
    text = re.sub(r"^\| Client-bound \|.*\n", "", text, flags=re.M)
    text = text.replace("| Chunks/s |", "| Tokens/s |")
    text = re.sub(
        r"^\| Output chunks \| (\d+) chunks \(no usage, no tokenizer\) \|$",
        r"| Output tokens | \1 (estimated) |",
        text,
        flags=re.M,
    )
    return re.sub(
        r"^\| Output tokens \| ~(\d+) \(estimated\) \|$",
        r"| Output tokens | \1 (estimated) |",
        text,
        flags=re.M,
    )
