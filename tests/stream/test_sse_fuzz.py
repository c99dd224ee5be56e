"""Property-based fuzz of the SSE decoder against a small reference decoder written here
straight from the WHATWG algorithm (html.spec.whatwg.org, "Server-sent events", 9.2.6
"Interpreting an event stream"): random byte streams (a BOM, CR / LF / CRLF anywhere,
comments, fields with and without values, huge numbers, invalid UTF-8, NULs), split at random
points across reads. No exception may escape, and the events (type, data, id) and the final
``retry`` must equal the reference's.

Bounded for CI (about a few seconds); ``HYPOTHESIS_PROFILE=long`` (or ``TOKENTOP_FUZZ=long``)
runs many more examples. The profiles are applied to these tests only (no global profile is
loaded) and never write an example database into the tree.
"""

from __future__ import annotations

import itertools
import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui.stream import sse
from tui.stream.sse import BOM, SSEDecoder, data_text

MAX_RETRY_MS: int = getattr(sse, "MAX_RETRY_MS", 86_400_000)

settings.register_profile(
    "sse-ci",
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "sse-long",
    max_examples=20_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
LONG = "long" in (os.environ.get("HYPOTHESIS_PROFILE"), os.environ.get("TOKENTOP_FUZZ"))
PROFILE = settings.get_profile("sse-long" if LONG else "sse-ci")

Event = tuple[str | None, str, str]
"""(type, data, last event id): the default type is None, no id yet is ""."""

_LINE_END = re.compile(r"\r\n|\r|\n")


def reference(stream: bytes) -> tuple[list[Event], int | None]:
    """The WHATWG algorithm, literally: UTF-8 decode (one leading BOM stripped, errors
    replaced), split into lines, and interpret them field by field."""
    if stream.startswith(BOM):
        stream = stream[3:]
    text = stream.decode("utf-8", "replace")
    pieces = _LINE_END.split(text)
    lines = pieces[:-1]  # the last piece has no line end: discarded at EOF
    events: list[Event] = []
    data, event_type, last_id = "", "", ""
    retry: int | None = None
    for line in lines:
        if line == "":
            if data == "":
                event_type = ""
                continue
            if data.endswith("\n"):
                data = data[:-1]
            events.append((event_type or None, data, last_id))
            data, event_type = "", ""
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            name, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            name, value = line, ""
        if name == "event":
            event_type = value
        elif name == "data":
            data += value + "\n"
        elif name == "id":
            if "\0" not in value:
                last_id = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            # int() of thousands of digits raises in Python: compare clamped values
            retry = MAX_RETRY_MS if len(value) > 12 else min(int(value), MAX_RETRY_MS)
    return events, retry


def decoded(chunks: list[bytes]) -> tuple[list[Event], int | None]:
    """The decoder's events over ``chunks``, in the reference's shape."""
    decoder = SSEDecoder()
    events: list[Event] = []
    for chunk in chunks:
        for e in decoder.feed(chunk):
            events.append((e.event, data_text(e.data), e.id or ""))
    return events, decoder.retry_ms


# -- streams ------------------------------------------------------------------------------------
_NAMES = st.sampled_from(
    [b"data", b"event", b"id", b"retry", b"", b"dat", b"DATA", b"data ", b" data", b"x"]
)
_SEPARATORS = st.sampled_from([b":", b": ", b":  ", b"", b"::"])
_ENDS = st.sampled_from([b"\n", b"\r", b"\r\n"])
_ODD = st.sampled_from(
    [b"\x00", b"\xff", b"\xc3", b"\xe2\x82", b"\xef\xbb\xbf", b"\xed\xa0\x80", b"\r", b"\n"]
)
_VALUES = st.one_of(
    st.binary(max_size=12),
    st.text(max_size=8).map(lambda s: s.encode("utf-8")),
    st.integers(min_value=0, max_value=10**12).map(lambda n: str(n).encode()),
    st.sampled_from([b"9" * 400, b"1" * 5000, b"-5", b"5 ", b"\xef\xbc\x91\xef\xbc\x92", b"0"]),
    st.lists(_ODD, max_size=4).map(b"".join),
)
_FIELD = st.tuples(_NAMES, _SEPARATORS, _VALUES, _ENDS).map(lambda t: b"".join(t))
_HUGE_RETRY = st.sampled_from(
    [b"retry: " + b"1" * 5000 + b"\n", b"retry:" + b"9" * 400 + b"\r", b"retry: 0" * 3 + b"\n"]
)
_ATOM = st.one_of(
    _HUGE_RETRY,
    _FIELD,
    _FIELD,
    _FIELD,
    _ENDS,  # blank lines dispatch
    st.tuples(st.just(b":"), st.binary(max_size=8), _ENDS).map(lambda t: b"".join(t)),
    _ODD,
    st.binary(max_size=6),
)
STREAMS = st.tuples(
    st.sampled_from([b"", BOM, BOM + BOM, BOM[:2]]),
    st.lists(_ATOM, max_size=40).map(b"".join),
).map(lambda t: t[0] + t[1])


@st.composite
def split(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A stream and the reads it arrives in (cut at random points, empty reads too)."""
    stream = draw(STREAMS)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    bounds = [0, *cuts, len(stream)]
    return stream, [stream[a:b] for a, b in itertools.pairwise(bounds)]


@PROFILE
@given(split())
def test_decoder_equals_the_reference(case: tuple[bytes, list[bytes]]) -> None:
    stream, chunks = case
    assert decoded(chunks) == reference(stream)


@PROFILE
@given(STREAMS)
def test_byte_by_byte_equals_whole(stream: bytes) -> None:
    one = [stream[i : i + 1] for i in range(len(stream))]
    assert decoded(one) == decoded([stream]) == reference(stream)


def test_the_reference_reads_the_spec_examples() -> None:
    """The reference itself, on the spec's own examples (so it is no copy of the decoder)."""
    spec = b"data: YHOO\ndata: +2\ndata: 10\n\n"
    assert reference(spec) == ([(None, "YHOO\n+2\n10", "")], None)
    spec = b": test stream\n\ndata: first event\nid: 1\n\n"
    spec += b"data:second event\nid\n\ndata:  third event\n"
    assert reference(spec) == ([(None, "first event", "1"), (None, "second event", "")], None)
    spec = b"data\n\ndata\ndata\n\ndata:"
    assert reference(spec) == ([(None, "", ""), (None, "\n", "")], None)
    assert reference(b"retry: 12\nretry: x\n") == ([], 12)
