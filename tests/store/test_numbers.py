"""Numbers out of range never stop recording: ints beyond SQLite's int64 (a server's 2**70
token counts), inf and nan (in event times and in metrics) are stored clamped or NULL."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.store.conftest import make_session
from tui.store import Store
from tui.stream.events import (
    Connecting,
    Finished,
    Retrying,
    RunError,
    Started,
    TextDelta,
    Usage,
)

INT64_MAX = 2**63 - 1

HUGE = [2**70, -(2**70), 2**63, 10**30]
ODD_FLOATS = [math.inf, -math.inf, math.nan]


@pytest.mark.parametrize("value", HUGE)
async def test_huge_token_counts_are_stored_clamped(store: Store, value: int) -> None:
    run_id = await store.start_run(make_session(), prompt="p")
    store.add_events(
        run_id,
        [
            Connecting(0.0, 1, "POST", "http://x/v1/responses"),
            Started(0.01, 1, 200, None),
            TextDelta(0.02, "hi"),
            Usage(0.03, value, value, value, value, value),
            Finished(0.04, "completed", "stop", "stop"),
        ],
    )
    await store.flush()
    assert store.errors == []
    detail = await store.get_run(run_id)
    assert detail.status == "completed" and detail.output_text == "hi"
    for count in (detail.input_tokens, detail.output_tokens, detail.total_tokens):
        assert count is None or -INT64_MAX - 1 <= count <= INT64_MAX
    events = await store.run_events(run_id)
    assert len(events) == 5 and isinstance(events[3], Usage)


@pytest.mark.parametrize("value", ODD_FLOATS, ids=["inf", "-inf", "nan"])
async def test_inf_and_nan_times_are_stored_and_recording_goes_on(
    store: Store, value: float
) -> None:
    run_id = await store.start_run(make_session(), prompt="p")
    store.add_events(
        run_id,
        [
            Connecting(0.0, 1, "POST", "http://x/v1/responses"),
            Started(0.01, 1, 200, None),
            TextDelta(value, "a"),
            Retrying(0.02, 1, 3, value, "retry", RunError("http", "again", 500)),
            TextDelta(0.03, "b"),
        ],
    )
    await store.flush()
    store.add_events(run_id, [Finished(0.05, "completed", "stop", "stop")])
    await store.flush()
    assert store.errors == []
    detail = await store.get_run(run_id)
    assert detail.status == "completed"
    for metric in (detail.ttft_ms, detail.tokens_per_s, detail.itl_p50_ms, detail.duration_ms):
        assert metric is None or math.isfinite(metric)
    events = await store.run_events(run_id)
    assert len(events) == 6
    # a second run is still recorded: nothing stopped
    other = await store.start_run(make_session(), prompt="next")
    store.add_events(other, [Finished(0.0, "completed", "stop", "stop")])
    await store.flush()
    assert (await store.get_run(other)).status == "completed"


async def test_the_numbers_survive_a_reopen(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        run_id = await store.start_run(make_session(), prompt="p")
        store.add_events(
            run_id,
            [
                Usage(0.0, 2**70, math.nan, None, None, 2**64),  # type: ignore[arg-type]
                Finished(math.inf, "completed", "stop", None),
            ],
        )
    assert not store.errors
    async with await Store.open(db_path, readonly=True) as reader:
        detail = await reader.get_run(run_id)
        assert detail.status == "completed"
        assert len(await reader.run_events(run_id)) == 2
