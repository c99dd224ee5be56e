"""A resume the server does not honour never leaves the text doubled: a server that ignores
``Last-Event-ID`` and replays the stream from the start (same ids, new ids, the same text),
ids that go backwards, a new response instead of the old one, the last event sent again;
and a background Responses resume that ignores ``starting_after``. Real loopback sockets
(tests/stream/hostile.py); chat and Responses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.stream.helpers import make_session, of_type, run_session
from tests.stream.hostile import HostileServer, Script, chat_events, head, parts, responses_events
from tui.config import SessionConfig
from tui.stream.accumulate import RunAccumulator
from tui.stream.events import Api, Resumed, Retrying, RunEvent
from tui.stream.transport import make_client

WORDS = ["Hello", " there", ", river", " of", " words", "."]
TEXT = "".join(WORDS)
LIMIT_S = 10.0


@pytest.fixture
async def engine() -> AsyncIterator[httpx.AsyncClient]:
    """The engine's client."""
    async with make_client() as http:
        yield http


def session(api: Api = "chat", *, background: bool = False, retries: int = 4) -> SessionConfig:
    """on_drop = resume (the default), quick backoff."""
    return make_session(
        api,
        timing=None,
        background=background,
        max_retries=retries,
        backoff_initial_s=0.01,
        backoff_max_s=0.02,
        idle_timeout_s=2.0,
        connect_timeout_s=2.0,
    )


def stream(events: list[bytes]) -> Script:
    """One response carrying ``events``; the connection then closes (a clean EOF)."""
    return parts(head() + b"".join(events))


async def run(
    scripts: list[Script], cfg: SessionConfig, client: httpx.AsyncClient
) -> tuple[list[RunEvent], RunAccumulator, HostileServer]:
    """Run ``cfg`` against the scripts, bounded by :data:`LIMIT_S`."""
    async with HostileServer(scripts) as server:
        events, acc = await asyncio.wait_for(
            run_session(cfg, server.base_url, client=client), LIMIT_S
        )
    assert acc.error is None or "internal error" not in acc.error.message
    return events, acc, server


def modes(events: list[RunEvent]) -> list[str]:
    """The modes of the run's retries, in order."""
    return [r.mode for r in of_type(events, Retrying)]


def sent_ids(server: HostileServer) -> list[str | None]:
    """The Last-Event-ID of each request (None: not sent)."""
    return [r.headers.get("last-event-id") for r in server.requests]


# -- chat: Last-Event-ID ignored ----------------------------------------------------------------
IDS = [str(i) for i in range(len(WORDS))]


async def test_chat_replay_from_the_start_with_the_same_ids(engine: httpx.AsyncClient) -> None:
    first = chat_events(WORDS[:3], ids=IDS[:3], done=False)
    replay = chat_events(WORDS, ids=IDS)
    events, acc, server = await run([stream(first), stream(replay)], session(), engine)
    assert acc.status == "completed" and acc.output_text == TEXT  # not doubled
    assert modes(events) == ["resume", "restart"]
    restart = of_type(events, Retrying)[1]
    assert "ignored Last-Event-ID '2'" in restart.cause.message
    assert sent_ids(server) == [None, "2", None]


async def test_chat_replay_with_new_ids_is_caught_by_the_text(engine: httpx.AsyncClient) -> None:
    """Fresh ids on every send (e.g. timestamps, here growing numbers): the text repeats."""
    first = chat_events(WORDS[:3], ids=["1000", "1001", "1002"], done=False)
    replay = chat_events(WORDS, ids=[str(2000 + i) for i in range(len(WORDS))])
    events, acc, _ = await run([stream(first), stream(replay)], session(), engine)
    assert acc.status == "completed" and acc.output_text == TEXT
    assert modes(events) == ["resume", "restart"]
    assert "the text started again" in of_type(events, Retrying)[1].cause.message


async def test_chat_replay_without_ids_is_caught_by_the_text(engine: httpx.AsyncClient) -> None:
    first = chat_events(WORDS[:3], ids=["a", "b", "c"], done=False)
    replay = chat_events(WORDS)
    events, acc, _ = await run([stream(first), stream(replay)], session(), engine)
    assert acc.status == "completed" and acc.output_text == TEXT
    assert modes(events) == ["resume", "restart"]


async def test_chat_ids_going_backwards(engine: httpx.AsyncClient) -> None:
    ids = [str(10 + i) for i in range(len(WORDS))]
    first = chat_events(WORDS[:4], ids=ids[:4], done=False)
    middle = chat_events(WORDS[1:], ids=ids[1:])  # from id 11 again: " there" ... twice
    full = chat_events(WORDS, ids=ids)
    events, acc, server = await run(
        [stream(first), stream(middle), stream(full)], session(), engine
    )
    assert acc.status == "completed" and acc.output_text == TEXT
    assert modes(events) == ["resume", "restart"]
    assert "went back from 13 to 11" in of_type(events, Retrying)[1].cause.message
    assert sent_ids(server) == [None, "13", None]


async def test_chat_last_event_sent_again_is_dropped(engine: httpx.AsyncClient) -> None:
    """A server that resumes *from* the last id instead of after it: one duplicate."""
    first = chat_events(WORDS[:3], ids=IDS[:3], done=False)
    rest = chat_events(WORDS[2:], ids=IDS[2:])  # starts with id 2 again
    events, acc, _ = await run([stream(first), stream(rest)], session(), engine)
    assert acc.status == "completed" and acc.output_text == TEXT
    assert modes(events) == ["resume"] and len(of_type(events, Resumed)) == 1


async def test_chat_true_resume_is_kept(engine: httpx.AsyncClient) -> None:
    ids = ["k1", "k2", "k3", "k4", "k5", "k6"]
    first = chat_events(WORDS[:3], ids=ids[:3], done=False)
    rest = chat_events(WORDS[3:], ids=ids[3:])
    events, acc, server = await run([stream(first), stream(rest)], session(), engine)
    assert acc.status == "completed" and acc.output_text == TEXT
    assert modes(events) == ["resume"] and sent_ids(server) == [None, "k3"]


async def test_chat_resume_whose_text_starts_like_the_answer(engine: httpx.AsyncClient) -> None:
    """A true continuation that happens to begin with the answer's first word is kept."""
    words = ["Hello", " there", " Hello", " again"]
    first = chat_events(words[:2], ids=["1", "2"], done=False)
    rest = chat_events(words[2:], ids=["3", "4"])
    events, acc, _ = await run([stream(first), stream(rest)], session(), engine)
    assert acc.status == "completed" and acc.output_text == "".join(words)
    assert modes(events) == ["resume"]


async def test_after_a_replay_ids_are_not_trusted_again(engine: httpx.AsyncClient) -> None:
    first = chat_events(WORDS[:3], ids=IDS[:3], done=False)
    replay_cut = chat_events(WORDS[:4], ids=IDS[:4], done=False)
    full = chat_events(WORDS, ids=IDS)
    scripts = [stream(first), stream(replay_cut), stream(replay_cut), stream(full)]
    events, acc, server = await run(scripts, session(), engine)
    assert acc.status == "completed" and acc.output_text == TEXT
    assert modes(events) == ["resume", "restart", "restart"]
    assert sent_ids(server) == [None, "2", None, None]


# -- Responses -----------------------------------------------------------------------------------
@pytest.mark.parametrize("new_ids", [True, False], ids=["ids again", "no ids"])
async def test_responses_last_event_id_ignored_new_response(
    new_ids: bool, engine: httpx.AsyncClient
) -> None:
    """Resent with Last-Event-ID, the server starts a new response (its own text)."""
    other = ["Quite", " another", " answer", " here", " now", "!"]
    first = responses_events(WORDS, ids=True)[:4]  # created + 3 deltas, then EOF
    new = responses_events(other, response_id="resp_2", ids=new_ids)
    events, acc, server = await run([stream(first), stream(new)], session("responses"), engine)
    assert acc.status == "completed" and acc.output_text == "".join(other)  # no mix
    assert modes(events) == ["resume", "restart"]
    assert "began again with response.created" in of_type(events, Retrying)[1].cause.message
    assert sent_ids(server) == [None, "3", None]


async def test_responses_last_event_id_ignored_same_replay(engine: httpx.AsyncClient) -> None:
    first = responses_events(WORDS, ids=True)[:4]
    replay = responses_events(WORDS, ids=True)
    events, acc, _ = await run([stream(first), stream(replay)], session("responses"), engine)
    assert acc.status == "completed" and acc.output_text == TEXT
    assert modes(events)[0] == "resume"


@pytest.mark.parametrize("start", [0, 2], ids=["from the start", "backwards"])
async def test_background_resume_ignoring_starting_after(
    start: int, engine: httpx.AsyncClient
) -> None:
    """GET ...?starting_after=3 answered from sequence number 0 (or 2): duplicates dropped."""
    events_all = responses_events(WORDS, background=True)
    first = events_all[:4]
    events, acc, server = await run(
        [stream(first), stream(events_all[start:])], session("responses", background=True), engine
    )
    assert acc.status == "completed" and acc.output_text == TEXT
    assert modes(events) == ["resume"]
    assert server.requests[1].method == "GET" and "starting_after=3" in server.requests[1].path
