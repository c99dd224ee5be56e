"""Full-text search (FTS5, trigram) over prompts and outputs, in English and Korean, and the
history filters."""

from __future__ import annotations

from tests.store.conftest import completed_events, make_session, record
from tui.store import Store
from tui.stream.events import Finished, TextDelta


async def _ids(store: Store, **filters: str) -> set[str]:
    return {r.run_id for r in await store.list_runs(**filters)}  # type: ignore[arg-type]


async def test_english_and_korean_search(store: Store) -> None:
    poem = await record(
        store,
        completed_events("The lighthouse keeper counts the waves at night"),
        make_session("poem", prompt="Write about a LIGHTHOUSE"),
    )
    korean = await record(
        store,
        completed_events("서울에서 부산까지 기차로 세 시간 걸립니다"),
        make_session("ko", model="ko-model", prompt="한국어로 여행 계획을 세워 주세요"),
    )
    other = await record(store, completed_events("Nothing relevant here"))
    # English words, case-insensitive, in the output or the prompt
    assert await _ids(store, search="lighthouse") == {poem}
    assert await _ids(store, search="counts waves") == {poem}
    assert await _ids(store, search="waves lighthouse keeper") == {poem}
    assert await _ids(store, search="lighthouse nothing") == set()
    # Korean: a word with a particle attached ("서울에서") is found by its stem, which
    # unicode61 word tokens would miss; two-syllable words use the LIKE fallback
    assert await _ids(store, search="서울") == {korean}
    assert await _ids(store, search="부산까지") == {korean}
    assert await _ids(store, search="여행 계획") == {korean}  # both in the prompt
    assert await _ids(store, search="기차로 걸립니다") == {korean}
    assert await _ids(store, search="기차 lighthouse") == set()
    assert await _ids(store, search="relevant") == {other}
    # quotes and FTS syntax in the search text are taken literally
    assert await _ids(store, search='"lighthouse" OR NEAR(') == set()
    assert await _ids(store, search="100%") == set()


async def test_search_finds_running_runs_by_their_checkpointed_text(store: Store) -> None:
    session = make_session(prompt="p")
    run_id = await store.start_run(session, prompt="still going")
    store.add_event(run_id, TextDelta(0.1, "partial marmalade text"))
    await store.flush()
    assert await _ids(store, search="marmalade") == {run_id}
    store.add_event(run_id, TextDelta(0.2, " and more"))
    store.add_event(run_id, Finished(0.3, "completed", "stop", "stop"))
    await store.flush()
    # once ended, the FTS index has it (and the final text)
    assert await _ids(store, search="marmalade more") == {run_id}
    assert await _ids(store, search="still going") == {run_id}


async def test_filters_combine(store: Store) -> None:
    a = await record(store, completed_events("alpha beta"), make_session("s1", model="m1"))
    b = await record(store, completed_events("alpha gamma"), make_session("s2", model="m1"))
    c = await record(
        store,
        [TextDelta(0.1, "alpha cut"), Finished(0.2, "incomplete", "length", "max_output_tokens")],
        make_session("s2", model="m2"),
    )
    assert await _ids(store, session="s2") == {b, c}
    assert await _ids(store, model="m1") == {a, b}
    assert await _ids(store, finish="length") == {c}
    assert await _ids(store, finish="stop", session="s2") == {b}
    assert await _ids(store, search="alpha", model="m2") == {c}
    assert await _ids(store, session="nobody") == set()
    assert [r.run_id for r in await store.list_runs(search="alpha", limit=2)] == [c, b]
