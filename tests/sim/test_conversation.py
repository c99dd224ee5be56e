"""Conversations with the simulator, held by the official openai SDK as an independent client:
chat with the whole messages list, Responses with previous_response_id and with the items sent
as input; the turn markers prove the history arrived. Also the state modes (store false,
stateless gateways, a small context window), OpenAI's errors and faults inside turn 2, and
the same scripted conversation held by tokentop and by the SDK (the same answers)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response

from tests.session.helpers import controller_for
from tests.sim.wire_helpers import answer_of, capture
from tui.config import SessionConfig
from tui.sim import text
from tui.vocab import Api, HistoryMode

FAST = "ttft=0,tps=0"
PROMPTS = ("Explain streaming", "now shorter", "in Korean")
SYSTEM = "You answer briefly."


def _h(key: str, tokens: int | None = 60, fault: str = "") -> dict[str, str]:
    timing = FAST if tokens is None else f"{FAST},tokens={tokens}"
    headers = {"X-Sim-Key": key, "X-Sim-Timing": timing}
    if fault:
        headers["X-Sim-Fault"] = fault
    return headers


def expected(turn: int, tokens: int = 60) -> str:
    """The simulator's answer to turn ``turn`` of the PROMPTS conversation."""
    earlier = PROMPTS[turn - 2] if turn > 1 else ""
    return "".join(text.turn_answer_tokens(0, PROMPTS[turn - 1], tokens, turn, earlier))


@pytest.fixture
def client(sim_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim_url, api_key="sk-sim", max_retries=0)


def _chat_turn(
    client: openai.OpenAI, messages: list[Any], headers: dict[str, str], model: str = "sim"
) -> tuple[str, int]:
    """One streamed chat turn: its answer and prompt tokens."""
    stream = client.chat.completions.create(
        model=model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=headers,
    )
    chunks = list(stream)
    answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = chunks[-1].usage
    assert usage is not None
    return answer, usage.prompt_tokens


def _chat_conversation(
    client: openai.OpenAI, headers: dict[str, str], model: str = "sim"
) -> tuple[list[str], list[int]]:
    messages: list[Any] = [{"role": "system", "content": SYSTEM}]
    answers, inputs = [], []
    for prompt in PROMPTS:
        messages.append({"role": "user", "content": prompt})
        answer, tokens = _chat_turn(client, messages, headers, model)
        answers.append(answer)
        inputs.append(tokens)
        messages.append({"role": "assistant", "content": answer})
    return answers, inputs


def test_chat_three_turns_with_the_whole_messages_list(client: openai.OpenAI, sim_key: str) -> None:
    answers, inputs = _chat_conversation(client, _h(sim_key))
    assert answers == [expected(1), expected(2), expected(3)]
    assert not answers[0].startswith("(turn")  # a single turn answers as it always did
    assert answers[0] == "".join(text.answer_tokens(0, PROMPTS[0], 60))
    assert answers[1].startswith('(turn 2) Following up on "Explain streaming".\n\n## now shorter')
    assert answers[2].startswith('(turn 3) Following up on "now shorter".\n\n## in Korean')
    assert inputs[0] < inputs[1] < inputs[2]  # the context grows with the history


def _responses_chain(
    client: openai.OpenAI, headers: dict[str, str], model: str = "sim", **extra: Any
) -> list[Response]:
    out: list[Response] = []
    for prompt in PROMPTS:
        previous = out[-1].id if out else openai.omit
        out.append(
            client.responses.create(
                model=model,
                input=prompt,
                instructions=SYSTEM,
                previous_response_id=previous,
                extra_headers=headers,
                **extra,
            )
        )
    return out


def _responses_items(
    client: openai.OpenAI, headers: dict[str, str], model: str = "sim"
) -> list[Response]:
    items: list[Any] = []
    out: list[Response] = []
    for prompt in PROMPTS:
        items.append({"role": "user", "content": prompt})
        resp = client.responses.create(
            model=model, input=items, instructions=SYSTEM, store=False, extra_headers=headers
        )
        items += [o.model_dump(exclude_none=True) for o in resp.output]
        out.append(resp)
    return out


def test_responses_three_turns_with_previous_response_id(
    client: openai.OpenAI, sim_key: str
) -> None:
    chain = _responses_chain(client, _h(sim_key))
    assert [r.output_text for r in chain] == [expected(1), expected(2), expected(3)]
    assert [r.previous_response_id for r in chain] == [None, chain[0].id, chain[1].id]
    inputs = [r.usage.input_tokens for r in chain if r.usage]
    assert len(inputs) == 3 and inputs[0] < inputs[1] < inputs[2]
    # A stored turn is retrievable, and continuing an older turn branches from it.
    assert client.responses.retrieve(chain[1].id).output_text == expected(2)
    branch = client.responses.create(
        model="sim", input="in French", previous_response_id=chain[0].id, extra_headers=_h(sim_key)
    )
    assert branch.output_text.startswith('(turn 2) Following up on "Explain streaming".')


def test_responses_three_turns_with_the_items_as_input(client: openai.OpenAI, sim_key: str) -> None:
    by_items = _responses_items(client, _h(sim_key))
    chain = _responses_chain(client, _h(sim_key))
    assert [r.output_text for r in by_items] == [r.output_text for r in chain]
    # Both ways of carrying the history count the same context (turn 1 counts its input as
    # sent: a string, or a list of one item).
    inputs = [[r.usage.input_tokens for r in rs if r.usage] for rs in (by_items, chain)]
    assert inputs[0][1:] == inputs[1][1:] and inputs[0][0] > inputs[1][0]


def test_streamed_turns_match_and_resume_inside_turn_2(client: openai.OpenAI, sim_key: str) -> None:
    first = client.responses.create(model="sim", input=PROMPTS[0], extra_headers=_h(sim_key))
    stream = client.responses.create(
        model="sim",
        input=PROMPTS[1],
        previous_response_id=first.id,
        background=True,
        stream=True,
        extra_headers=_h(sim_key),
    )
    head: list[Any] = []
    for event in stream:
        head.append(event)
        if len(head) == 10:
            break
    stream.close()
    rid = head[0].response.id
    tail = list(client.responses.retrieve(rid, stream=True, starting_after=9))
    assert tail[0].sequence_number == 10 and tail[-1].type == "response.completed"
    deltas = [e.delta for e in head + tail if e.type == "response.output_text.delta"]
    assert "".join(deltas) == expected(2)
    # The resumed turn continues the conversation like any other.
    third = client.responses.create(
        model="sim", input=PROMPTS[2], previous_response_id=rid, extra_headers=_h(sim_key)
    )
    assert third.output_text == expected(3)


def test_chat_drop_and_resume_inside_turn_2(sim_url: str, sim_key: str) -> None:
    """Every turn's first attempt drops (attempts are counted per turn, under one key); a
    Last-Event-ID resume of turn 2 continues the same answer of turn 2."""
    messages: list[Any] = [{"role": "user", "content": PROMPTS[0]}]
    body = {"model": "sim", "messages": messages, "stream": True}
    headers = _h(sim_key, fault="ids,drop=12")
    turn1 = capture(sim_url, "chat", headers=headers, body=body)
    assert turn1.error is not None  # the drop
    whole1 = capture(sim_url, "chat", headers=headers, body=body)
    assert whole1.error is None and whole1.headers["x-sim-attempt"] == "2"
    messages += [
        {"role": "assistant", "content": answer_of("chat", whole1.events())},
        {"role": "user", "content": PROMPTS[1]},
    ]
    cut = capture(sim_url, "chat", headers=headers, body=body)
    assert cut.error is not None and cut.headers["x-sim-attempt"] == "1"
    events = cut.events()
    rest = capture(
        sim_url, "chat", headers=headers | {"Last-Event-ID": str(events[-1].id)}, body=body
    )
    assert rest.error is None
    assert answer_of("chat", events) + answer_of("chat", rest.events()) == expected(2)


def test_unknown_previous_response_id_is_openais_404(client: openai.OpenAI, sim_key: str) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(
            model="sim", input="x", previous_response_id="resp_nope", extra_headers=_h(sim_key)
        )
    assert info.value.code == "previous_response_not_found"
    assert info.value.body == {
        "message": "Previous response with id 'resp_nope' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }


def test_store_false_is_not_kept(client: openai.OpenAI, sim_key: str) -> None:
    kept = client.responses.create(model="sim", input=PROMPTS[0], extra_headers=_h(sim_key))
    # store=false continues a chain (the history is read) but is not kept itself.
    unkept = client.responses.create(
        model="sim",
        input=PROMPTS[1],
        previous_response_id=kept.id,
        store=False,
        extra_headers=_h(sim_key),
    )
    assert unkept.output_text == expected(2)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unkept.id)
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(
            model="sim", input="x", previous_response_id=unkept.id, extra_headers=_h(sim_key)
        )
    assert info.value.code == "previous_response_not_found"


@pytest.mark.parametrize(
    ("model", "fault", "error", "code"),
    [
        ("sim-stateless-400", "", openai.BadRequestError, "unsupported_parameter"),
        ("sim-stateless-404", "", openai.NotFoundError, "previous_response_not_found"),
        ("sim", "stateless=404", openai.NotFoundError, "previous_response_not_found"),
    ],
)
def test_stateless_gateways_refuse_previous_response_id(
    client: openai.OpenAI,
    sim_key: str,
    model: str,
    fault: str,
    error: type[openai.APIStatusError],
    code: str,
) -> None:
    headers = _h(sim_key, fault=fault)
    first = client.responses.create(model=model, input=PROMPTS[0], extra_headers=headers)
    with pytest.raises(error) as info:
        client.responses.create(
            model=model, input=PROMPTS[1], previous_response_id=first.id, extra_headers=headers
        )
    assert info.value.code == code
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError):  # it keeps nothing
        client.responses.retrieve(first.id)
    # The fallback works: the same conversation sent as items.
    by_items = _responses_items(client, headers, model=model)
    assert [r.output_text for r in by_items] == [expected(1), expected(2), expected(3)]


def test_small_context_window_on_both_apis(client: openai.OpenAI, sim_key: str) -> None:
    headers = _h(sim_key, tokens=None)  # the preset's default 160-token answers
    messages: list[Any] = []
    for prompt in PROMPTS[:2]:
        messages.append({"role": "user", "content": prompt})
        answer, _ = _chat_turn(client, messages, headers, "sim-small-context")
        messages.append({"role": "assistant", "content": answer})
    messages.append({"role": "user", "content": PROMPTS[2]})
    with pytest.raises(openai.BadRequestError) as chat_info:
        _chat_turn(client, messages, headers, "sim-small-context")
    assert chat_info.value.code == "context_length_exceeded"
    body = chat_info.value.body
    assert isinstance(body, dict) and body["param"] == "messages"
    assert str(body["message"]).startswith("This model's maximum context length is 320 tokens.")
    with pytest.raises(openai.BadRequestError) as resp_info:
        _responses_chain(client, headers, model="sim-small-context")
    assert resp_info.value.code == "context_length_exceeded"
    assert isinstance(resp_info.value.body, dict) and resp_info.value.body["param"] == "input"
    # The window is a header item too.
    with pytest.raises(openai.BadRequestError) as header_info:
        client.responses.create(
            model="sim", input="x" * 200, extra_headers=_h(sim_key, fault="context=40")
        )
    assert header_info.value.code == "context_length_exceeded"


def test_tool_results_continue_a_turn(client: openai.OpenAI, sim_key: str) -> None:
    call_turn = client.responses.create(
        model="sim-tools", input="weather?", extra_headers=_h(sim_key)
    )
    call = call_turn.output[0]
    assert call.type == "function_call"
    # A follow-up that leaves the call unanswered is OpenAI's 400.
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(
            model="sim-tools",
            input="and tomorrow?",
            previous_response_id=call_turn.id,
            extra_headers=_h(sim_key),
        )
    assert info.value.message.endswith(f"No tool output found for function call {call.call_id}.")
    answered = client.responses.create(
        model="sim-tools",
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        previous_response_id=call_turn.id,
        extra_headers=_h(sim_key),
    )
    # Still turn 1 (a tool result is not a user turn): the plain answer, no marker.
    assert answered.output_text == "".join(text.answer_tokens(0, "weather?", 60))
    chat = client.chat.completions.create(
        model="sim",
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "user", "content": "and tomorrow?"},
        ],
        extra_headers=_h(sim_key),
    )
    content = chat.choices[0].message.content or ""
    assert content.startswith('(turn 2) Following up on "weather?".')
    assert chat.usage is not None and chat.usage.prompt_tokens > 20


@pytest.mark.parametrize(
    ("api", "history"),
    [("chat", "auto"), ("responses", "server"), ("responses", "client")],
    ids=["chat-messages", "responses-previous-id", "responses-items"],
)
async def test_the_sdk_gets_what_tokentop_gets(
    client: openai.OpenAI, sim_url: str, sim_key: str, api: Api, history: HistoryMode
) -> None:
    """The same scripted conversation (system, three turns), held by tokentop's session
    layer over its own HTTP client and by the official SDK: the same answer per turn, so the
    same turn markers, and the same input tokens where both send the history alike."""
    headers = _h(sim_key)
    session = SessionConfig(
        name="parity",
        model="sim",
        turns=PROMPTS,
        system=SYSTEM,
        api=api,
        history=history,
        headers=headers,
    )
    async with httpx.AsyncClient(timeout=30) as http:
        controller = controller_for(session, http, sim_url)
        await controller.start()
    turns = controller.conversation.turns
    assert [t.status for t in turns] == ["completed"] * 3
    ours = [t.answer for t in turns]
    our_inputs = [t.input_tokens for t in turns]
    sdk_inputs: list[int | None]
    if api == "chat":
        sdk, chat_inputs = _chat_conversation(client, headers)
        sdk_inputs = list(chat_inputs)
    else:
        responses = (_responses_chain if history == "server" else _responses_items)(client, headers)
        sdk = [r.output_text for r in responses]
        sdk_inputs = [r.usage.input_tokens if r.usage else None for r in responses]
    assert ours == sdk == [expected(1), expected(2), expected(3)]
    markers = [f'(turn {n}) Following up on "{PROMPTS[n - 2]}".' for n in (2, 3)]
    for answers in (ours, sdk):
        assert not answers[0].startswith("(turn")
        assert [a.split("\n", 1)[0] for a in answers[1:]] == markers
    if history == "client":
        # the simulator counts the items' JSON: tokentop sends earlier answers as messages
        # with string content, the SDK's loop sends its output items back whole (ids,
        # status, parts), so only the growth compares
        for inputs in (our_inputs, sdk_inputs):
            counted = [n for n in inputs if n is not None]
            assert len(counted) == 3 and counted == sorted(counted)
    else:
        assert our_inputs == sdk_inputs
