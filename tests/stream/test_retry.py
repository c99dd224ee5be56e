"""Retry policy helpers: Retry-After parsing, which statuses retry, backoff bounds, and the
one-sentence HTTP error (HTML stripped, key never shown)."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.config import ReconnectPolicy
from tui.stream.redaction import REDACTED, Redactor
from tui.stream.retry import (
    backoff_delay,
    describe_http_error,
    not_event_stream,
    retry_after_s,
    should_retry_status,
)


def test_retry_after_forms() -> None:
    now = 1_800_000_000.0
    assert retry_after_s({}) is None
    assert retry_after_s({"retry-after": "2"}) == 2.0
    assert retry_after_s({"retry-after": "1.5"}) == 1.5
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_s({"retry-after-ms": "soon", "retry-after": "9"}) == 9.0
    assert retry_after_s({"retry-after": formatdate(now + 42, usegmt=True)}, now) == 42.0
    assert retry_after_s({"retry-after": "not a date"}) is None
    assert retry_after_s({"retry-after": "inf"}) is None


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (408, {}, True),
        (409, {}, True),
        (429, {}, True),
        (500, {}, True),
        (503, {}, True),
        (503, {"x-should-retry": "false"}, False),
        (418, {"x-should-retry": "true"}, True),
        (418, {}, False),
        (400, {"x-should-retry": "true"}, False),
        (401, {}, False),
        (403, {}, False),
        (404, {}, False),
        (422, {}, False),
        (501, {}, False),  # the server does not implement it: the same answer again
        (505, {}, False),
        (502, {}, True),
    ],
)
def test_should_retry_status(status: int, headers: dict[str, str], expected: bool) -> None:
    assert should_retry_status(status, headers) is expected


def test_backoff_doubles_caps_and_jitters_down() -> None:
    policy = ReconnectPolicy(backoff_initial_s=0.5, backoff_max_s=8.0)
    rng = random.Random(3)
    for n, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)]:
        for _ in range(50):
            delay = backoff_delay(n, policy, rng)
            assert base * 0.75 <= delay <= base


def test_http_error_json_and_html() -> None:
    error = describe_http_error(
        429,
        "Too Many Requests",
        "application/json",
        b'{"error":{"message":"Slow down.","type":"requests","code":"rate_limit_exceeded"}}',
        api_key_env=None,
        api_key=None,
        request_id="req_1",
    )
    assert error.message == "HTTP 429 Too Many Requests: Slow down."
    assert (error.kind, error.code, error.request_id) == ("http", "rate_limit_exceeded", "req_1")
    page = b"<html><head><title>502</title><style>p{}</style></head><body><h1>Bad</h1>" + (
        b"<p>padding</p>" * 100
    )
    error = describe_http_error(
        502,
        "Bad Gateway",
        "text/html; charset=utf-8",
        page,
        api_key_env=None,
        api_key=None,
        request_id=None,
    )
    assert error.message.startswith("HTTP 502 Bad Gateway (text/html): 502 Bad padding")
    assert "<" not in error.message and "p{}" not in error.message and len(error.message) < 250
    flat = describe_http_error(
        400,
        "Bad Request",
        "application/json",
        b'{"object":"error","message":"bad","code":400}',
        api_key_env=None,
        api_key=None,
        request_id=None,
    )
    assert flat.message == "HTTP 400 Bad Request: bad" and flat.code == "400"


def test_auth_error_names_env_var_and_hides_the_key() -> None:
    body = b'{"error":{"message":"Incorrect API key provided: sk-live-abc123."}}'
    error = describe_http_error(
        401,
        "Unauthorized",
        "application/json",
        body,
        api_key_env="MY_KEY",
        api_key="sk-live-abc123",
        request_id=None,
    )
    assert error.kind == "auth" and error.http_status == 401
    assert "environment variable MY_KEY" in error.message
    assert "sk-live-abc123" not in error.message and REDACTED in error.message
    missing = describe_http_error(
        401,
        "Unauthorized",
        "application/json",
        b"{}",
        api_key_env=None,
        api_key=None,
        request_id=None,
    )
    assert "no API key was sent" in missing.message
    forbidden = describe_http_error(
        403,
        "Forbidden",
        "text/plain",
        b"nope",
        api_key_env="MY_KEY",
        api_key="k",
        request_id=None,
    )
    assert "MY_KEY is not allowed" in forbidden.message


def test_not_event_stream() -> None:
    error = not_event_stream("application/json", b'{"id": 1}', "r")
    assert error.kind == "protocol" and "application/json" in error.message
    assert '{"id": 1}' in error.message
    assert "no content type" in not_event_stream("", b"", None).message


# -- hostile values -------------------------------------------------------------------------
def test_absurd_retry_after_values() -> None:
    assert retry_after_s({"retry-after": "9" * 5000}) == float("inf")
    assert retry_after_s({"retry-after": "1e400"}) is None  # not a number of seconds
    assert retry_after_s({"retry-after": "\u0661\u0662"}) is None  # not ASCII digits
    assert retry_after_s({"retry-after": "1_0"}) is None
    assert retry_after_s({"retry-after": " 3 "}) == 3.0
    assert retry_after_s({"retry-after-ms": "-1e308"}) == -1e305
    assert retry_after_s({"retry-after": "Mon, 99 Foo 99999 99:99:99 GMT"}) is None


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.dictionaries(
        st.sampled_from(["retry-after", "retry-after-ms"]),
        st.one_of(
            st.text(max_size=40),
            st.from_regex(r"[+-]?[0-9]{0,400}(\.[0-9]*)?([eE][+-]?[0-9]{1,4})?", fullmatch=True),
            st.builds(
                lambda y, z: f"Fri, 31 Dec {y} 23:59:59 {z}",
                st.integers(-10, 10**6),
                st.sampled_from(["GMT", "+9999", "-2359", "XYZ", ""]),
            ),
        ),
    )
)
def test_retry_after_never_raises(headers: dict[str, str]) -> None:
    value = retry_after_s(headers, now=1_800_000_000.0)
    assert value is None or value == value  # never NaN


KEY = "sk-canary-0123456789abcdefghijklmnop"


@pytest.mark.parametrize("offset", [150, 155, 158, 159, 160, 165])
def test_error_snippets_blank_the_key_before_the_cut(offset: int) -> None:
    # a key that straddles the 160-character cut must not leave its first characters behind
    body = ("x" * offset + KEY + " and more text after it" * 10).encode()
    for ctype in ("text/plain", "text/html"):
        error = describe_http_error(
            500, "Oops", ctype, body, api_key_env="K", api_key=KEY, request_id=None
        )
        assert KEY[:6] not in error.message, error.message
        stream_error = not_event_stream(ctype, body, None, Redactor([KEY]))
        assert KEY[:6] not in stream_error.message, stream_error.message
    json_body = (
        b'{"error":{"message":"bad key ' + KEY.encode() + b'","code":"' + KEY.encode() + b'"}}'
    )
    error = describe_http_error(
        401,
        "Unauthorized",
        "application/json",
        json_body,
        api_key_env="K",
        api_key=KEY,
        request_id=None,
    )
    assert KEY[:8] not in error.message and KEY[:8] not in (error.code or "")
