"""A gateway that takes ``previous_response_id`` and ignores it (aimock and Hugging Face
``transformers serve`` do: no error, an answer with no history, a response object that names
no previous response). ``auto`` sees it in the first event, before any content, and sends
the turn again at once with the turns as items, once, and remembers it for the session;
``server`` says so and goes on; a server that names the id it continued from is trusted."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from tests.session.helpers import Follower, controller_for, count_requests
from tests.session.test_conversations import SCRIPT, bodies, marker, talker
from tui.stream.events import Notice
from tui.stream.request import HISTORY_FALLBACK


def notices(follower: Follower, code: str) -> list[list[str]]:
    """Per run, the messages of the notices with ``code``."""
    return [
        [e.message for e in follower.events[run.run_id] if isinstance(e, Notice) and e.code == code]
        for run in follower.runs
    ]


@pytest.mark.parametrize(
    "timing",
    [
        "ttft=0.01,tps=0,tokens=30",  # response.created read before the answer
        "ttft=0,tps=0,tokens=30",  # the answer in the same reads as response.created
    ],
)
async def test_auto_sends_the_items_at_once_when_the_server_ignored_the_id(
    client: httpx.AsyncClient, sim_url: str, sim_key: str, timing: str
) -> None:
    controller = controller_for(
        talker("responses", sim_key, model="sim-no-history", timing=timing), client, sim_url
    )
    follower = Follower()
    controller.subscribe(follower)
    sent = count_requests(client)
    await controller.start()

    view = controller.conversation
    assert all(t.kept for t in view.turns) and len(view.turns) == 3
    # every turn answered with its history: the simulator's markers name the turn before
    assert view.turns[1].answer.startswith(marker(2, SCRIPT[0]))
    assert view.turns[2].answer.startswith(marker(3, SCRIPT[1]))
    assert view.fell_back and view.mode == "client"
    said = notices(follower, HISTORY_FALLBACK)
    assert [len(m) for m in said] == [0, 1, 0]
    assert "names no previous_response_id" in said[1][0] or "continues no" in said[1][0]
    assert "input items" in said[1][0]
    posted = bodies(sent)
    # turn 2: the id once (given up at response.created), then the items; turn 3: items
    assert ["previous_response_id" in b for b in posted] == [False, True, False, False]
    # the given-up attempt streamed no text into the turn: its answer is the items' one
    assert view.turns[1].answer.count("(turn 2)") == 1


async def test_server_mode_says_the_server_ignored_the_id_and_goes_on(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    session = talker("responses", sim_key, model="sim-no-history", history="server")
    controller = controller_for(replace(session, turns=SCRIPT[:2]), client, sim_url)
    follower = Follower()
    controller.subscribe(follower)
    sent = count_requests(client)
    await controller.start()

    view = controller.conversation
    assert [t.status for t in view.turns] == ["completed", "completed"]
    said = notices(follower, "history_unconfirmed")
    assert [len(m) for m in said] == [0, 1] and 'history = "server"' in said[1][0]
    assert not view.turns[1].answer.startswith("(turn 2)")  # answered without its history
    assert ["previous_response_id" in b for b in bodies(sent)] == [False, True]


async def test_a_server_that_names_the_id_it_continued_from_is_trusted(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    controller = controller_for(talker("responses", sim_key), client, sim_url)
    follower = Follower()
    controller.subscribe(follower)
    sent = count_requests(client)
    await controller.start()

    view = controller.conversation
    assert not view.fell_back and view.mode == "auto"
    assert all(not m for m in notices(follower, HISTORY_FALLBACK))
    posted: list[dict[str, Any]] = bodies(sent)
    assert ["previous_response_id" in b for b in posted] == [False, True, True]


def test_what_counts_as_continuing_the_id_sent() -> None:
    from tests.stream.helpers import make_session
    from tui.stream.events import ResponseInfo
    from tui.stream.history import Conversation, Turn
    from tui.stream.request import RequestPlan

    history = Conversation(turns=(Turn("hi", "hello", response_id="resp_1"),), mode="auto")
    plan = RequestPlan(make_session("responses"), "http://127.0.0.1:1/v1", "more", history)

    def said(continues: str | None, named: bool) -> str | None:
        return plan.continuation_ignored(ResponseInfo(0.0, "resp_2", "m", continues, named))

    assert said("resp_1", True) is None  # OpenAI: names the id it continued
    assert "names no previous_response_id" in (said(None, False) or "")  # aimock's objects
    assert "continues no earlier response" in (said(None, True) or "")  # a null echo
    assert "continues 'resp_0'" in (said("resp_0", True) or "")
    first = RequestPlan(make_session("responses"), "http://127.0.0.1:1/v1", "hi", None)
    assert first.continuation_ignored(ResponseInfo(0.0, "r", "m")) is None  # nothing sent
    items = RequestPlan(
        make_session("responses"), "http://127.0.0.1:1/v1", "more", history.as_items()
    )
    assert items.continuation_ignored(ResponseInfo(0.0, "r", "m")) is None
