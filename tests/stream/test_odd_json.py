"""JSON that a decoder can choke on (issue 15, part B, kind 2): nesting about 1,000 deep,
numbers too large for a float or too long for ``int()``, bytes that are not UTF-8, lone
surrogate escapes, ``NaN`` literals and duplicate keys. None of them may raise out of an
adapter (the runner would call that an internal error): what is readable is taken, an
event that cannot be decoded at all is skipped with a notice (it stays in the raw log)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.stream.canned import CannedServer, response
from tests.stream.helpers import feed, fold, make_session, of_type, run_session, texts
from tui.stream.adapter import Adapter, Outcome
from tui.stream.chat import ChatAdapter
from tui.stream.events import Notice, RawEvent, Usage
from tui.stream.responses import ResponsesAdapter

DEEP = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000
LONG_INT = "7" * 5000


def chat(content: str = '"x"', extra: str = "") -> bytes:
    """A chat chunk (raw JSON text pieces) framed as one SSE event."""
    return (
        b"data: "
        + (
            '{"id":"c1","choices":[{"index":0,"delta":{"content":' + content + "}}]" + extra + "}"
        ).encode()
        + b"\n\n"
    )


def resp_delta(delta: str = '"x"', extra: str = "", seq: int = 1) -> bytes:
    """A Responses text delta (raw JSON text pieces) framed as one SSE event."""
    return (
        b"event: response.output_text.delta\ndata: "
        + (
            '{"type":"response.output_text.delta","sequence_number":' + str(seq) + ","
            '"output_index":0,"content_index":0,"delta":' + delta + extra + "}"
        ).encode()
        + b"\n\n"
    )


CHAT_END = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
RESP_END = (
    b'event: response.completed\ndata: {"type":"response.completed","sequence_number":9,'
    b'"response":{"id":"r","status":"completed"}}\n\n'
)


def notice_codes(events: list[Any]) -> list[str]:
    """The notice codes among ``events``."""
    return [n.code for n in of_type(events, Notice)]


def run_both(chat_body: bytes, resp_body: bytes) -> list[tuple[list[Any], Outcome | None]]:
    """Feed the chat and the Responses stream through fresh adapters."""
    results = []
    adapter: Adapter
    for adapter, body in ((ChatAdapter(), chat_body), (ResponsesAdapter(), resp_body)):
        events, outcome, _ = feed(adapter, [body])
        results.append((events, outcome))
    return results


@pytest.mark.parametrize("deep", [DEEP, DEEP_OBJECT], ids=["lists", "objects"])
def test_nesting_1000_deep_in_an_unknown_field_is_a_notice_not_a_crash(deep: str) -> None:
    chat_body = chat('"a"') + chat('"b"', extra=',"debug":' + deep) + chat('"c"') + CHAT_END
    resp_body = resp_delta('"a"', seq=1) + resp_delta('"b"', ',"debug":' + deep, 2)
    resp_body += resp_delta('"c"', seq=3) + RESP_END
    results = run_both(chat_body, resp_body)
    for (events, outcome), body in zip(results, (chat_body, resp_body), strict=True):
        assert outcome is not None and outcome.status == "completed"
        assert texts(events) == "ac"  # the unreadable event is skipped, the rest is kept
        (notice,) = of_type(events, Notice)
        assert notice.code == "unreadable_event" and "nested too deeply" in notice.message
        assert "event 2" in notice.message
        assert len(of_type(events, RawEvent)) == body.count(b"\n\n")  # all in the raw log


def test_nesting_1000_deep_in_a_known_field_is_a_notice_not_a_crash() -> None:
    chat_body = chat(DEEP) + chat('"ok"') + CHAT_END
    resp_body = resp_delta(DEEP, seq=1) + resp_delta('"ok"', seq=2) + RESP_END
    for events, outcome in run_both(chat_body, resp_body):
        assert outcome is not None and outcome.status == "completed" and texts(events) == "ok"
        assert notice_codes(events) == ["unreadable_event"]


def test_numbers_beyond_a_float_and_too_long_for_int_are_dropped_counts() -> None:
    for count in ("1e999", "-1e999", LONG_INT, "-" + LONG_INT):
        usage = ',"usage":{"prompt_tokens":' + count + ',"completion_tokens":2}'
        chat_body = chat('"x"', extra=usage) + CHAT_END
        resp_usage = (
            b'event: response.completed\ndata: {"type":"response.completed","sequence_number":9,'
            b'"response":{"status":"completed","usage":{"input_tokens":'
            + count.encode()
            + b',"output_tokens":2}}}\n\n'
        )
        resp_body = resp_delta('"x"') + resp_usage
        for events, outcome in run_both(chat_body, resp_body):
            assert outcome is not None and outcome.status == "completed", count
            assert texts(events) == "x"
            (usage_event,) = of_type(events, Usage)
            assert (usage_event.input_tokens, usage_event.output_tokens) == (None, 2)
            assert "odd_number" in notice_codes(events)
    # a long integer in a field nobody reads loses nothing either
    chat_body = chat('"x"', extra=',"seed":' + LONG_INT) + CHAT_END
    resp_body = resp_delta('"x"', extra=',"seed":' + LONG_INT) + RESP_END
    for events, outcome in run_both(chat_body, resp_body):
        assert outcome is not None and outcome.status == "completed" and texts(events) == "x"


def test_bytes_that_are_not_utf8_are_replaced_not_fatal() -> None:
    chat_body = chat('"café ok"').replace("café".encode(), b"caf\xe9") + CHAT_END
    resp_body = resp_delta('"café ok"').replace("café".encode(), b"caf\xe9") + RESP_END
    for events, outcome in run_both(chat_body, resp_body):
        assert outcome is not None and outcome.status == "completed"
        assert texts(events) == "caf\ufffd ok"
        assert notice_codes(events) == ["odd_json"]
    # while JSON that is truly malformed is still a protocol error
    for adapter, body in (
        (ChatAdapter(), chat('"x"') + b'data: {"choices": [\n\n'),
        (ResponsesAdapter(), resp_delta() + b'data: {"type": \n\n'),
    ):
        events, outcome, _ = feed(adapter, [body])
        assert outcome is not None and outcome.error is not None
        assert outcome.error.kind == "protocol" and "event 2" in outcome.error.message
        assert texts(events) == "x"


def test_lone_surrogate_escapes_and_nan_literals_are_read() -> None:
    chat_body = chat('"a\\ud800b"') + chat('"c"', extra=',"temperature":NaN') + CHAT_END
    resp_body = resp_delta('"a\\ud800b"', seq=1) + resp_delta('"c"', ',"t":NaN', 2) + RESP_END
    for events, outcome in run_both(chat_body, resp_body):
        assert outcome is not None and outcome.status == "completed"
        assert texts(events) == "a\ufffdbc"
        texts(events).encode("utf-8")  # nothing that cannot be stored
        assert notice_codes(events) == ["odd_json"]


def test_duplicate_keys_last_wins_on_the_strict_and_the_lenient_path() -> None:
    """RFC 8259 leaves duplicate names undefined; like every mainstream JSON parser (and
    both of our decode paths) the last one wins."""
    strict = b'data: {"choices":[{"index":0,"delta":{"content":"a","content":"b"}}]}\n\n'
    lenient = (
        b'data: {"choices":[{"index":0,"delta":{"content":"c"}}],'
        b'"usage":{"completion_tokens":1,"completion_tokens":5.0}}\n\n'
    )
    events, outcome, _ = feed(ChatAdapter(), [strict + lenient + CHAT_END])
    assert texts(events) == "bc" and outcome == Outcome("completed", "stop", "stop")
    assert [u.output_tokens for u in of_type(events, Usage)] == [5]
    resp = (
        b'event: x\ndata: {"type":"response.output_text.delta","delta":"a","delta":"b",'
        b'"sequence_number":1}\n\n'
        b'event: x\ndata: {"type":"response.output_text.delta","delta":["c"],'
        b'"sequence_number":3,"sequence_number":2}\n\n'
    )
    events, _, _ = feed(ResponsesAdapter(), [resp + RESP_END])
    assert texts(events) == "bc"


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_odd_json_end_to_end(api: str) -> None:
    if api == "chat":
        body = (
            chat('"A"', extra=',"debug":' + DEEP)
            + chat('"B"')
            + chat('"caf\xe9"').replace("caf\xe9".encode(), b"caf\xe9")
            + chat('"D"', extra=',"usage":{"prompt_tokens":' + LONG_INT + ',"completion_tokens":3}')
            + CHAT_END
        )
    else:
        body = (
            resp_delta('"A"', ',"debug":' + DEEP, seq=1)
            + resp_delta('"B"', seq=2)
            + resp_delta('"caf\xe9"', seq=3).replace("caf\xe9".encode(), b"caf\xe9")
            + resp_delta('"D"', seq=4)
            + RESP_END.replace(b'"completed"}', b'"completed","usage":{"input_tokens":1e999}}')
        )
    async with CannedServer([[response(body=body)]]) as server:
        session = make_session(api, timing=None)  # type: ignore[arg-type]
        events, acc = await run_session(session, server.base_url)
    assert (acc.status, acc.finish_reason) == ("completed", "stop")
    assert acc.error is None
    assert acc.output_text == "Bcaf\ufffdD"
    assert {"unreadable_event", "odd_json"} <= set(acc.notices)
    assert fold(events, api).output_text == acc.output_text  # type: ignore[arg-type]
    assert json.dumps(acc.result())  # the record is storable
