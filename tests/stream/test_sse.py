"""The SSE decoder against recorded byte streams, each also split at every byte position
(and fed byte by byte), for every WHATWG rule the reference lists."""

from __future__ import annotations

import msgspec
import pytest

from tui.stream.sse import BOM, SSEDecoder, SSEEvent, data_text

Triple = tuple[str | None, bytes, str | None]


def decode(chunks: list[bytes]) -> tuple[list[Triple], SSEDecoder]:
    """Decode chunks; return (event, data, id) triples and the decoder."""
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return [(e.event, e.data, e.id) for e in events], decoder


def every_split(stream: bytes) -> list[list[bytes]]:
    """The stream whole, byte by byte, and cut in two at every position."""
    ways = [[stream], [stream[i : i + 1] for i in range(len(stream))]]
    ways += [[stream[:i], stream[i:]] for i in range(len(stream) + 1)]
    return ways


CASES: dict[str, tuple[bytes, list[Triple]]] = {
    "lf": (b"data: a\n\ndata: b\n\n", [(None, b"a", None), (None, b"b", None)]),
    "crlf": (b"data: a\r\n\r\ndata: b\r\n\r\n", [(None, b"a", None), (None, b"b", None)]),
    "cr": (b"data: a\r\rdata: b\r\r", [(None, b"a", None), (None, b"b", None)]),
    "mixed line ends": (b"data: a\r\ndata: b\rdata: c\n\r\n", [(None, b"a\nb\nc", None)]),
    "crlf inside one event": (b"data: a\r\ndata: b\r\n\r\n", [(None, b"a\nb", None)]),
    "bom": (BOM + b"data: x\n\n", [(None, b"x", None)]),
    "only one bom stripped": (BOM + BOM + b"data: x\n\ndata: y\n\n", [(None, b"y", None)]),
    "comments ignored": (
        b": keep-alive\n:\ndata: a\n: inside\ndata: b\n\n",
        [(None, b"a\nb", None)],
    ),
    "one leading space stripped": (
        b"data:x\n\ndata:  y\n\n",
        [(None, b"x", None), (None, b" y", None)],
    ),
    "event type and reset": (
        b"event: response.created\ndata: {}\n\ndata: 2\n\n",
        [("response.created", b"{}", None), (None, b"2", None)],
    ),
    "empty data not dispatched": (b"event: ping\n\nid: 7\n\ndata: z\n\n", [(None, b"z", "7")]),
    "data without colon is empty data": (b"data\n\n", [(None, b"", None)]),
    "empty data value is dispatched": (b"data:\n\n", [(None, b"", None)]),
    "id persists": (
        b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n",
        [(None, b"a", "1"), (None, b"b", "1"), (None, b"c", "2")],
    ),
    "id with NUL ignored": (
        b"id: 1\ndata: a\n\nid: x\x00y\ndata: b\n\n",
        [
            (None, b"a", "1"),
            (None, b"b", "1"),
        ],
    ),
    "keep-alives after id dispatch nothing": (
        b"id: 5\ndata: a\n\n: ping\n\n: ping\n\n\n\ndata: b\n\n",
        [(None, b"a", "5"), (None, b"b", "5")],
    ),
    "unknown fields ignored": (
        b'error: {"message":"x"}\nfoo: bar\ndata: [DONE]\n\n',
        [(None, b"[DONE]", None)],
    ),
    "field names are case-sensitive": (b"DATA: a\nData: b\ndata: c\n\n", [(None, b"c", None)]),
    "utf-8 split safe": (
        "data: héllo 😀 ünïcode\n\n".encode(),
        [(None, "héllo 😀 ünïcode".encode(), None)],
    ),
    "u2028 is not a line break": (
        'data: {"t":"a\u2028b\u2029c\x85d"}\n\n'.encode(),
        [(None, '{"t":"a\u2028b\u2029c\x85d"}'.encode(), None)],
    ),
    "pending data at eof discarded": (b"data: a\n\ndata: b\n", [(None, b"a", None)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_recorded_stream_at_every_split(name: str) -> None:
    stream, expected = CASES[name]
    for chunks in every_split(stream):
        got, _ = decode(chunks)
        assert got == expected, (name, chunks)


def test_three_way_splits_of_bom_and_crlf() -> None:
    stream = BOM + b"data: \xc3\xa9\r\n\r\nid: 3\r\ndata: b\r\n\r\n"
    expected: list[Triple] = [(None, "é".encode(), None), (None, b"b", "3")]
    n = len(stream)
    for i in range(n + 1):
        for j in range(i, n + 1):
            got, _ = decode([stream[:i], stream[i:j], stream[j:]])
            assert got == expected, (i, j)


def test_trailing_cr_is_not_held_back() -> None:
    """A CR-only server's event is dispatched by the chunk that carries its CR."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [SSEEvent(None, b"a", None)]
    # the LF that follows a CR in the next chunk is not a second (blank) line
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r\n\r\n") == [SSEEvent(None, b"a\nb", None)]


def test_retry_only_ascii_digits() -> None:
    for value, expected in [
        (b"1000", 1000),
        (b"0", 0),
        (b" 5", None),
        (b"-1", None),
        (b"1_000", None),
        (b"5x", None),
        (b"", None),
        ("٣".encode(), None),  # a non-ASCII digit
    ]:
        _, decoder = decode([b"retry: " + value + b"\n\n"])
        assert decoder.retry_ms == expected, value


def test_retry_keeps_last_valid_value() -> None:
    _, decoder = decode([b"retry: 250\n\nretry: nope\n\n"])
    assert decoder.retry_ms == 250


def test_last_event_id_state() -> None:
    decoder = SSEDecoder()
    assert decoder.last_event_id is None and not decoder.saw_id
    decoder.feed(b"id: 9\n\n")  # not dispatched, but the id is kept
    assert decoder.last_event_id == "9" and decoder.saw_id
    decoder.feed(b"id\n\n")  # an empty id resets it
    assert decoder.last_event_id == ""


def test_pending_data_at_eof() -> None:
    """``data: [DONE]`` without its blank line (llama.cpp) is visible to the caller."""
    for stream in (
        b"data: x\n\ndata: [DONE]",
        b"data: x\n\ndata: [DONE]\n",
        b"data: x\n\ndata: [DONE]\r",
    ):
        for chunks in every_split(stream):
            decoder = SSEDecoder()
            events = [e for c in chunks for e in decoder.feed(c)]
            assert [e.data for e in events] == [b"x"]
            assert decoder.pending_data() == b"[DONE]"
    decoder = SSEDecoder()
    decoder.feed(b"data: x\n\n")
    assert decoder.pending_data() is None


def test_bom_prefix_that_is_not_a_bom() -> None:
    """Bytes that start like a BOM but are not one are kept."""
    got, _ = decode([b"\xef", b"\xbbX\ndata: a\n\n"])
    assert got == [(None, b"a", None)]
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef\xbb") == []  # still undecided
    assert decoder.feed(b"\xbf") == []
    assert decoder.feed(b"data: a\n\n") == [SSEEvent(None, b"a", None)]


def test_json_with_u2028_decodes() -> None:
    stream = 'data: {"t":"x\u2028y"}\n\n'.encode()
    (event,) = SSEDecoder().feed(stream)
    assert msgspec.json.decode(event.data) == {"t": "x\u2028y"}
    assert data_text(event.data) == '{"t":"x\u2028y"}'


def test_invalid_utf8_replaced_in_text() -> None:
    (event,) = SSEDecoder().feed(b"data: a\xffb\n\n")
    assert data_text(event.data) == "a\ufffdb"


def test_large_chunk_many_events() -> None:
    stream = b"".join(b"data: %d\n\n" % i for i in range(5000))
    got, _ = decode([stream[:7777], stream[7777:]])
    assert [d for _, d, _ in got] == [b"%d" % i for i in range(5000)]


def test_event_names_are_the_same_through_the_name_cache() -> None:
    """The ``event: `` fast path caches decoded names per line: the names stay exact (extra
    space, empty name, non-ASCII), across decoders, and past the cache's size."""
    from tui.stream import sse

    lines = [
        b"event: a",
        b"event:  spaced",
        b"event: ",
        b"event: \xec\x9d\xb4\xeb\xb2\xa4\xed\x8a\xb8",
    ]
    lines += [f"event: name-{i}".encode() for i in range(sse.EVENT_NAME_CACHE + 20)]
    want = ["a", " spaced", None, "이벤트"] + [
        f"name-{i}" for i in range(sse.EVENT_NAME_CACHE + 20)
    ]
    for _ in range(2):  # the second decoder reads the cached names
        decoder = sse.SSEDecoder()
        events = decoder.feed(b"".join(line + b"\ndata: x\n\n" for line in lines))
        assert [e.event for e in events] == want
    assert len(sse._EVENT_NAMES) <= sse.EVENT_NAME_CACHE


# -- bounds: linear lines, a size cap, absurd retry values ------------------------------------
def test_a_long_line_over_many_reads_is_linear() -> None:
    """6 MiB of one ``data:`` line in 1 KiB reads: each read only looks at its own bytes (a
    decoder that re-joins the carried line per read copies gigabytes here)."""
    import time

    from tui.stream import sse

    size = 6 * 1024 * 1024
    stream = b"data: " + b"x" * size + b"\n\n"
    decoder = sse.SSEDecoder()
    start = time.perf_counter()
    events = []
    for i in range(0, len(stream), 1024):
        events += decoder.feed(stream[i : i + 1024])
    took = time.perf_counter() - start
    assert [len(e.data) for e in events] == [size]
    assert took < 3.0  # about 10 ms when linear; far more when quadratic


@pytest.mark.parametrize("read", [65536, 9 * 1024 * 1024])
def test_a_line_past_the_limit_raises(read: int) -> None:
    from tui.stream import sse

    stream = b"data: " + b"x" * (sse.MAX_EVENT_BYTES + 10) + b"\n\n"
    decoder = sse.SSEDecoder()
    with pytest.raises(sse.SSELimitError, match="8 MiB limit"):
        for i in range(0, len(stream), read):
            decoder.feed(stream[i : i + read])


def test_an_event_of_many_lines_past_the_limit_raises() -> None:
    """No blank line ever: the pending event's data lines are bounded too."""
    from tui.stream import sse

    decoder = sse.SSEDecoder()
    line = b"data: " + b"y" * 1000 + b"\n"
    with pytest.raises(sse.SSELimitError, match="an event of"):
        for _ in range(sse.MAX_EVENT_BYTES // 1000 + 10):
            decoder.feed(line)


def test_an_event_just_under_the_limit_passes() -> None:
    from tui.stream import sse

    body = b"z" * (sse.MAX_EVENT_BYTES - 4096)
    half = len(body) // 2
    stream = b"data: " + body[:half] + b"\ndata: " + body[half:] + b"\n\n"
    events = []
    decoder = sse.SSEDecoder()
    for i in range(0, len(stream), 100_000):
        events += decoder.feed(stream[i : i + 100_000])
    assert [len(e.data) for e in events] == [len(body) + 1]


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (b"1500", 1500),
        (b"9" * 400, 86_400_000),
        (b"1" * 5000, 86_400_000),
        (b"86400001", 86_400_000),
        (b"-5", None),
        (b"5 ", None),
        (b"\xef\xbc\x91", None),  # a full-width digit: not ASCII
        (b"", None),
    ],
    ids=[
        "plain",
        "400 digits",
        "5000 digits",
        "over a day",
        "negative",
        "space",
        "fullwidth",
        "empty",
    ],
)
def test_retry_values(value: bytes, want: int | None) -> None:
    decoder = SSEDecoder()
    (event,) = decoder.feed(b"retry: " + value + b"\ndata: x\n\n")
    assert decoder.retry_ms == want and event.data == b"x"


def test_first_event_id_is_kept() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: a\ndata: 1\n\nid: b\ndata: 2\n\n")
    assert (decoder.first_event_id, decoder.last_event_id) == ("a", "b")


def test_long_event_names_are_not_cached() -> None:
    """The process-wide name cache never keeps a hostile server's huge names."""
    from tui.stream import sse

    before = dict(sse._EVENT_NAMES)
    sse._EVENT_NAMES.clear()
    try:
        name = b"n" * 100_000
        for i in range(3):
            (event,) = sse.SSEDecoder().feed(b"event: " + name + b"%d\ndata: x\n\n" % i)
            assert event.event == (name + b"%d" % i).decode()
        assert all(len(line) <= 128 for line in sse._EVENT_NAMES)
    finally:
        sse._EVENT_NAMES.clear()
        sse._EVENT_NAMES.update(before)
