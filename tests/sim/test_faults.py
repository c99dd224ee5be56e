"""Each fault really happens on the wire (checked with raw httpx)."""

from __future__ import annotations

import itertools
import json
import time

import httpx
import openai
import pytest

from tests.sim.wire_helpers import (
    Api,
    Capture,
    LagProbe,
    RawStream,
    answer_of,
    body_for,
    capture,
    parse_sse,
    path_for,
)

APIS: tuple[Api, ...] = ("chat", "responses")
FAST = "ttft=0,tps=0,tokens=40"


def _h(key: str, fault: str = "", timing: str = FAST) -> dict[str, str]:
    headers = {"X-Sim-Key": key, "X-Sim-Timing": timing}
    if fault:
        headers["X-Sim-Fault"] = fault
    return headers


def _is_terminal(api: Api, data: str) -> bool:
    if api == "chat":
        return data == "[DONE]"
    return str(json.loads(data)["type"]).startswith(("response.completed", "response.incomplete"))


@pytest.mark.parametrize("api", APIS)
def test_drop_closes_socket_then_next_attempt_is_whole(
    sim_url: str, sim_key: str, api: Api
) -> None:
    cap = capture(sim_url, api, headers=_h(sim_key, "drop=5"))
    assert isinstance(cap.error, httpx.RemoteProtocolError)
    events = cap.events()
    assert len(events) == 5
    again = capture(sim_url, api, headers=_h(sim_key, "drop=5"))
    assert again.error is None and again.headers["x-sim-attempt"] == "2"
    assert _is_terminal(api, again.events()[-1].data)


def test_drop_star_k_applies_to_first_k_attempts(sim_url: str, sim_key: str) -> None:
    errors = [capture(sim_url, "chat", headers=_h(sim_key, "drop=3*2")).error for _ in range(3)]
    assert [type(e) for e in errors] == [httpx.RemoteProtocolError] * 2 + [type(None)]


def test_drop_surfaces_in_openai_sdk(sim_url: str, sim_key: str) -> None:
    client = openai.OpenAI(base_url=sim_url, api_key="sk-sim", max_retries=0)
    stream = client.responses.create(
        model="sim", input="x", stream=True, extra_headers=_h(sim_key, "drop=4")
    )
    seen = 0
    # Newer SDKs wrap the transport error in APIConnectionError; older ones raise it raw.
    with pytest.raises(Exception) as info:
        for _ in stream:
            seen += 1
    cause = info.value.__cause__ or info.value
    assert "incomplete chunked read" in str(cause) or "peer closed" in str(cause)
    assert seen == 4


KEEPALIVE = b": keep-alive\n\n"


@pytest.mark.parametrize("api", APIS)
def test_stall_sends_nothing_but_keeps_connection(sim_url: str, sim_key: str, api: Api) -> None:
    with RawStream(sim_url, api, _h(sim_key, "stall=3")) as raw:
        raw.read_until(lambda r: len(r.events()) >= 3, "the 3 events before the stall")
        # Load can delay what is sent, never send what the simulator holds back.
        assert raw.silent_for(0.6)
        assert raw.status == 200 and len(raw.events()) == 3


def test_stall_with_keepalive_sends_only_comments(sim_url: str, sim_key: str) -> None:
    with (
        LagProbe() as probe,
        RawStream(sim_url, "responses", _h(sim_key, "stall=2,keepalive=0.1")) as raw,
    ):
        raw.read_until(lambda r: len(r.events()) >= 2, "the 2 events before the stall")
        stalled = len(raw.body)
        arrivals: list[float] = [time.perf_counter()]
        while raw.body[stalled:].count(KEEPALIVE) < 3:
            raw.read_more("a keep-alive")
            arrivals.append(time.perf_counter())
    # Keep-alives keep arriving (so a read timeout never fires), and nothing else does.
    assert not raw.closed and len(raw.events()) == 2
    assert raw.body[stalled:].replace(KEEPALIVE, b"") == b""
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert max(gaps) <= 0.1 + probe.slack(), (gaps, probe.worst)


def test_keepalive_comments_during_ttft(sim_url: str, sim_key: str) -> None:
    headers = _h(sim_key, "keepalive=0.1", "ttft=0.55,tps=0,tokens=5")
    with LagProbe() as probe:
        cap = capture(sim_url, "chat", headers=headers)
    assert cap.events()[-1].data == "[DONE]"
    first_event = next(i for i, piece in enumerate(cap.pieces) if b"data: " in piece)
    assert all(p.replace(KEEPALIVE, b"") == b"" for p in cap.pieces[:first_event])
    # The first event is due 0.55 s after the request; until then no silence lasts much
    # longer than the keep-alive interval (counted from the headers).
    waits = [cap.headers_at, *cap.times[: first_event + 1]]
    gaps = [b - a for a, b in itertools.pairwise(waits)]
    assert max(gaps) <= 0.1 + probe.slack(), (gaps, probe.worst)
    assert cap.raw.startswith(KEEPALIVE) or probe.slack() > 0.4


@pytest.mark.parametrize(
    ("fault", "status", "header", "value"),
    [
        ("status=429,retry_after=2", 429, "retry-after", "2"),
        ("status=429,retry_after_ms=1500", 429, "retry-after-ms", "1500"),
        ("status=401", 401, None, None),
        ("status=500", 500, None, None),
        ("status=503", 503, None, None),
    ],
)
def test_status_codes_with_json_error(
    sim_url: str, sim_key: str, fault: str, status: int, header: str | None, value: str | None
) -> None:
    cap = capture(sim_url, "responses", headers=_h(sim_key, fault))
    assert cap.status == status
    assert cap.headers["content-type"].startswith("application/json")
    error = json.loads(cap.raw)["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    if header is not None:
        assert cap.headers[header] == value
    assert capture(sim_url, "responses", headers=_h(sim_key, fault)).status == 200


def test_status_for_first_k_attempts(sim_url: str, sim_key: str) -> None:
    codes = [capture(sim_url, "chat", headers=_h(sim_key, "status=503*2")).status for _ in range(3)]
    assert codes == [503, 503, 200]


def test_html_502_and_not_sse(sim_url: str, sim_key: str) -> None:
    html = capture(sim_url, "chat", headers=_h(sim_key, "html"))
    assert html.status == 502 and html.headers["content-type"].startswith("text/html")
    assert b"<html>" in html.raw
    plain = capture(sim_url, "responses", headers=_h(sim_key + "b", "not_sse"))
    assert plain.status == 200 and plain.headers["content-type"] == "application/json"
    assert json.loads(plain.raw)["object"] == "response"


@pytest.mark.parametrize("api", APIS)
def test_bad_json_event(sim_url: str, sim_key: str, api: Api) -> None:
    events = capture(sim_url, api, headers=_h(sim_key, "bad_json=3")).events()
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[2].data)
    for e in events[:2] + events[3:-1]:
        json.loads(e.data)


def test_in_band_errors(sim_url: str, sim_key: str) -> None:
    chat = capture(sim_url, "chat", headers=_h(sim_key, "error=4")).events()
    assert len(chat) == 5 and json.loads(chat[4].data)["error"]["type"] == "server_error"
    nested = capture(sim_url, "responses", headers=_h(sim_key, "error=4")).events()
    last = json.loads(nested[-1].data)
    assert nested[-1].event == "error" and last["error"]["code"] == "server_error"
    assert last["sequence_number"] == 4
    flat = capture(sim_url, "responses", headers=_h(sim_key, "error=4,error_shape=flat")).events()
    last = json.loads(flat[-1].data)
    assert "error" not in last and last["code"] == "server_error" and last["message"]
    late = capture(sim_url, "chat", headers=_h(sim_key, "error=100000")).events()
    assert "error" in json.loads(late[-1].data) and json.loads(late[-2].data)["choices"] == []
    failed = capture(sim_url, "responses", headers=_h(sim_key, "fail=6")).events()
    last = json.loads(failed[-1].data)
    assert last["type"] == "response.failed" and last["sequence_number"] == 6
    assert last["response"]["status"] == "failed" and last["response"]["error"]["code"]
    client = openai.OpenAI(base_url=sim_url, api_key="sk-sim", max_retries=0)
    stream = client.chat.completions.create(
        model="sim",
        messages=[{"role": "user", "content": "x"}],
        stream=True,
        extra_headers=_h(sim_key, "error=3"),
    )
    with pytest.raises(openai.APIError):
        list(stream)


@pytest.mark.parametrize("api", APIS)
def test_bom_crlf_cr_comments(sim_url: str, sim_key: str, api: Api) -> None:
    plain = capture(sim_url, api, headers=_h(sim_key)).events()
    bom = capture(sim_url, api, headers=_h(sim_key, "bom"))
    assert bom.raw.startswith(b"\xef\xbb\xbf") and bom.raw[3:4] in (b"d", b"e")
    crlf = capture(sim_url, api, headers=_h(sim_key, "crlf"))
    assert b"\r\n\r\n" in crlf.raw and crlf.raw.count(b"\n") == crlf.raw.count(b"\r\n")
    cr = capture(sim_url, api, headers=_h(sim_key, "cr"))
    assert b"\n" not in cr.raw and b"\r\r" in cr.raw
    comments = capture(sim_url, api, headers=_h(sim_key, "comments"))
    assert comments.raw.count(b"\n: ") >= len(plain) - 1
    for cap in (bom, crlf, cr, comments):
        events = cap.events()
        assert [e.event for e in events] == [e.event for e in plain]
        assert len(events) == len(plain)


@pytest.mark.parametrize("api", APIS)
def test_multiline_data(sim_url: str, sim_key: str, api: Api) -> None:
    plain = capture(sim_url, api, headers=_h(sim_key)).events()
    cap = capture(sim_url, api, headers=_h(sim_key, "multiline"))
    assert b"\ndata: " in cap.raw.replace(b"\n\ndata: ", b"")
    events = cap.events()
    assert any("\n" in e.data for e in events)
    multi = [json.loads(e.data) for e in events if e.data != "[DONE]"]
    ref = [json.loads(e.data) for e in plain if e.data != "[DONE]"]
    assert [m.get("delta", m.get("choices")) for m in multi][2:-3] == [
        r.get("delta", r.get("choices")) for r in ref
    ][2:-3]


@pytest.mark.parametrize("api", APIS)
def test_ids_keepalives_and_last_event_id(sim_url: str, sim_key: str, api: Api) -> None:
    full = capture(sim_url, api, headers=_h(sim_key, "ids"))
    events = full.events()
    assert [e.id for e in events] == [str(i) for i in range(len(events))]
    assert full.raw.count(b": keep-alive\n\n") == len(events) - 1
    k = 6
    headers = _h(sim_key, "ids") | {"Last-Event-ID": str(k)}
    rest = capture(sim_url, api, headers=headers).events()
    assert [e.id for e in rest] == [str(i) for i in range(k + 1, len(events))]
    assert [e.data for e in rest] == [e.data for e in events[k + 1 :]]


def _cut_inside(cap: Capture) -> tuple[bool, bool]:
    """Whether a piece boundary falls inside a UTF-8 character, and inside a CRLF."""
    pairs = list(itertools.pairwise(cap.pieces))
    return (
        any(0x80 <= nxt[0] < 0xC0 for _, nxt in pairs),
        any(p.endswith(b"\r") and nxt.startswith(b"\n") for p, nxt in pairs),
    )


@pytest.mark.parametrize("api", APIS)
def test_split_arrives_in_pieces(sim_url: str, sim_key: str, api: Api) -> None:
    timing = "ttft=0,tps=100,tokens=15"
    plain = capture(sim_url, api, headers=_h(sim_key, "crlf", timing))
    # Whole-event writes are never cut inside a character or a CRLF; the split ones are,
    # when the reader keeps up with the 1 ms between pieces: a busy reader may join them,
    # so the cuts are looked for in up to three streams.
    for _ in range(3):
        cap = capture(sim_url, api, headers=_h(sim_key, "split,crlf", timing))
        assert answer_of(api, cap.events()) == answer_of(api, plain.events())
        assert len(cap.events()) == len(plain.events())
        if _cut_inside(cap) == (True, True):
            break
    assert _cut_inside(cap) == (True, True)
    assert _cut_inside(plain) == (False, False)


@pytest.mark.parametrize("api", APIS)
def test_no_done(sim_url: str, sim_key: str, api: Api) -> None:
    cap = capture(sim_url, api, headers=_h(sim_key, "no_done"))
    assert cap.error is None
    events = cap.events()
    assert not any(_is_terminal(api, e.data) for e in events)
    assert not any(e.data == "[DONE]" for e in events)


def test_content_filter_and_empty_stop(sim_url: str, sim_key: str) -> None:
    chat = capture(sim_url, "chat", headers=_h(sim_key, "content_filter")).events()
    assert json.loads(chat[-3].data)["choices"][0]["finish_reason"] == "content_filter"
    resp = capture(sim_url, "responses", headers=_h(sim_key, "content_filter")).events()
    last = json.loads(resp[-1].data)
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"]["reason"] == "content_filter"
    empty = capture(sim_url, "chat", headers=_h(sim_key, "empty_stop")).events()
    contents = [json.loads(e.data)["choices"] for e in empty[:-1]]
    assert all(not c or not c[0]["delta"].get("content") for c in contents)
    assert contents[-2][0]["finish_reason"] == "stop"


def test_presets(sim_url: str, sim_key: str) -> None:
    def body(model: str, api: Api = "chat") -> dict[str, object]:
        return body_for(api, model=model)

    flaky = [
        capture(sim_url, "chat", headers=_h(sim_key + "sim-flaky"), body=body("sim-flaky")).error
        for _ in range(2)
    ]
    assert isinstance(flaky[0], httpx.RemoteProtocolError) and flaky[1] is None
    limited = [
        capture(
            sim_url, "responses", headers=_h(sim_key + "sim-429"), body=body("sim-429", "responses")
        )
        for _ in range(2)
    ]
    assert limited[0].status == 429 and limited[0].headers["retry-after"] == "1"
    assert limited[1].status == 200
    broken = [
        capture(sim_url, "chat", headers=_h(sim_key + "sim-broken"), body=body("sim-broken")).status
        for _ in range(3)
    ]
    assert broken == [502, 502, 502]
    filtered = capture(
        sim_url, "chat", headers=_h(sim_key + "sim-filter"), body=body("sim-filter")
    ).events()
    assert json.loads(filtered[-3].data)["choices"][0]["finish_reason"] == "content_filter"


def test_bad_headers_are_400(sim_url: str) -> None:
    for headers in ({"X-Sim-Fault": "explode"}, {"X-Sim-Timing": "ttft=fast"}):
        resp = httpx.post(sim_url + path_for("chat"), json=body_for("chat"), headers=headers)
        assert resp.status_code == 400 and "error" in resp.json()


def test_background_drop_then_resume(sim_url: str, sim_key: str) -> None:
    headers = _h(sim_key, "drop=9", "ttft=0,tps=300,tokens=30")
    cap = capture(
        sim_url, "responses", headers=headers, body=body_for("responses", background=True)
    )
    assert isinstance(cap.error, httpx.RemoteProtocolError)
    events = cap.events()
    last_seq = json.loads(events[-1].data)["sequence_number"]
    rid = json.loads(events[0].data)["response"]["id"]
    with httpx.Client(timeout=10) as client:
        resp = client.get(
            f"{sim_url}/responses/{rid}",
            params={"stream": "true", "starting_after": last_seq},
            headers={"X-Sim-Fault": "drop=9"},
        )
    assert resp.headers["x-sim-attempt"] == "2"
    rest = parse_sse(resp.content)
    seqs = [json.loads(e.data)["sequence_number"] for e in rest]
    assert seqs[0] == last_seq + 1 and seqs == list(range(last_seq + 1, last_seq + 1 + len(seqs)))
    assert json.loads(rest[-1].data)["type"] == "response.completed"
