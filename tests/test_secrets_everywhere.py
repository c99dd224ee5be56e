"""The canary over every output path: a server that echoes the API key (whole, split over
two and three deltas at every offset, as a long fragment, in tool arguments, reasoning, SSE
ids, response headers, response ids, and error bodies long enough to be cut), run through
``tokentop run`` as a real subprocess (stdout, stderr, ``--jsonl``), in process with the
logs captured, into the store (the database file and its WAL, as bytes) and out of it
(``tokentop export`` in every format, ``tokentop history``): neither the key nor any
8-character fragment of it appears anywhere. Both APIs."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import os
import secrets
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.stream.canned import CannedServer, response
from tui import headless
from tui.cli_store import export_command, history_command
from tui.config import load_config
from tui.headless import RunOptions, run_sessions
from tui.session.redact import (
    HOLD_PIECE,
    REDACTED,
    Redactor,
    RunRedactor,
    fragment_length,
    install_log_filter,
)
from tui.stream.events import (
    Finished,
    RawEvent,
    ReasoningDelta,
    RunError,
    RunEvent,
    Started,
    TextDelta,
    ToolCallDelta,
    Usage,
)

KEY_ENV = "TT_CANARY_KEY"


def canary_key() -> str:
    """A fresh key of 40 characters (``sk-proj-`` and 32 URL-safe ones)."""
    return "sk-proj-" + secrets.token_urlsafe(24)


def fragments(key: str, n: int = 8) -> list[str]:
    """Every run of ``n`` consecutive characters of ``key``."""
    return [key[i : i + n] for i in range(len(key) - n + 1)]


def leaks(key: str, blob: str | bytes) -> list[str]:
    """The 8-character fragments of ``key`` found in ``blob``."""
    if isinstance(blob, bytes):
        return [f for f in fragments(key) if f.encode() in blob]
    return [f for f in fragments(key) if f in blob]


def assert_clean(key: str, blob: str | bytes, where: str) -> None:
    found = leaks(key, blob)
    assert not found, f"{len(found)} fragments of the key in {where}: {found[:3]}"


# -- what the server says ----------------------------------------------------------------


def text_pieces(key: str, *, every_pair: bool = True) -> list[str]:
    """Deltas echoing the key whole, split in two at every offset, in three (at every pair
    of offsets, or a sample), and as a long fragment."""
    pieces = [f"whole {key} end. "]
    for i in range(1, len(key)):
        pieces += [f"two {key[:i]}", f"{key[i:]} ok. "]
    pairs = itertools.combinations(range(1, len(key)), 2)
    for i, j in pairs if every_pair else [(1, 2), (3, 20), (8, 16), (19, 39), (38, 39)]:
        pieces += [f"three {key[:i]}", key[i:j], f"{key[j:]} ok. "]
    pieces.append(f"fragment {key[5:33]} done.")
    return pieces


def _sse(data: str, *, event: str | None = None, sid: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    ident = f"id: {sid}\n" if sid else ""
    return f"{head}{ident}data: {data}\n\n"


def _parts(body: bytes, size: int = 4093) -> list[bytes | float]:
    """The body in several writes, so that deltas also straddle network reads."""
    return [body[i : i + size] for i in range(0, len(body), size)]


def echo_headers(key: str) -> dict[str, str]:
    return {
        "x-request-id": f"req-{key}",
        "openai-organization": key,
        "x-ratelimit-remaining-tokens": key[:20],
    }


def chat_body(key: str, *, every_pair: bool = True) -> bytes:
    """Chat Completions chunks: text, reasoning and tool arguments echoing the key."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return json.dumps({"id": "c1", "model": "m", "choices": [choice]})

    out = [f": comment {key}\n\n"]
    for n, piece in enumerate(text_pieces(key, every_pair=every_pair)):
        out.append(_sse(chunk({"content": piece}), sid=f"{key}-{n}" if n % 50 == 0 else None))
    for i in (1, 7, 8, 20, 39):
        out.append(_sse(chunk({"reasoning_content": f"think {key[:i]}"})))
        out.append(_sse(chunk({"reasoning_content": f"{key[i:]} so. "})))
    call = {"index": 0, "id": f"call_{key}", "function": {"name": "lookup", "arguments": ""}}
    out.append(_sse(chunk({"tool_calls": [call]})))
    for i in range(1, len(key)):
        for args in (f'{{"k{i}": "{key[:i]}', f'{key[i:]}"}} '):
            out.append(_sse(chunk({"tool_calls": [{"index": 0, "function": {"arguments": args}}]})))
    out.append(_sse(chunk({}, "stop")))
    out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def responses_body(key: str, *, every_pair: bool = True) -> bytes:
    """Responses events: text and function-call arguments echoing the key, and ids."""
    seq = itertools.count()

    def ev(kind: str, **fields: Any) -> str:
        return _sse(json.dumps({"type": kind, "sequence_number": next(seq), **fields}), event=kind)

    resp = {"id": f"resp_{key}", "status": "in_progress", "model": f"m-{key}"}
    out = [ev("response.created", response=resp)]
    for piece in text_pieces(key, every_pair=every_pair):
        out.append(ev("response.output_text.delta", output_index=0, delta=piece))
    item = {"type": "function_call", "name": "lookup", "call_id": f"call_{key}", "arguments": ""}
    out.append(ev("response.output_item.added", output_index=1, item=item))
    for i in range(1, len(key), 3):
        for args in (f'{{"k": "{key[:i]}', f'{key[i:]}"}}'):
            out.append(ev("response.function_call_arguments.delta", output_index=1, delta=args))
    done = {"id": f"resp_{key}", "status": "completed", "output": []}
    out.append(ev("response.completed", response=done))
    return "".join(out).encode()


def long_error_body(key: str) -> bytes:
    """A plain-text 500 whose key starts at character 131: an error snippet cut at 160
    characters keeps 28 characters of it."""
    lead = "upstream gateway error: "
    return (lead + "x" * (131 - len(lead)) + key + " and more text" * 20).encode()


def json_error_body(key: str) -> bytes:
    message = f"Incorrect API key provided: {key}. You can find your key at https://example"
    return json.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "code": key}}
    ).encode()


class EchoServers:
    """One canned server per scenario (each answers every request the same way)."""

    def __init__(self, key: str, *, every_pair: bool = True) -> None:
        self.key = key
        headers = echo_headers(key)
        self.servers = {
            "chat-echo": CannedServer(
                [_parts(response(body=chat_body(key, every_pair=every_pair), headers=headers))]
            ),
            "responses-echo": CannedServer(
                [_parts(response(body=responses_body(key, every_pair=every_pair), headers=headers))]
            ),
            "responses-error": CannedServer(
                [
                    [
                        response(
                            500,
                            long_error_body(key),
                            reason="Internal Server Error",
                            content_type="text/plain",
                            headers=headers,
                            length=True,
                        )
                    ]
                ]
            ),
            "chat-error": CannedServer(
                [
                    [
                        response(
                            400,
                            json_error_body(key),
                            reason="Bad Request",
                            content_type="application/json",
                            headers=headers,
                            length=True,
                        )
                    ]
                ]
            ),
        }

    async def __aenter__(self) -> EchoServers:
        for server in self.servers.values():
            await server.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for server in self.servers.values():
            await server.__aexit__(None, None, None)

    def config_text(self) -> str:
        apis = {"chat-echo": "chat", "responses-echo": "responses"}
        apis |= {"responses-error": "responses", "chat-error": "chat"}
        blocks = [
            f"""
            [[sessions]]
            name = "{name}"
            api = "{apis[name]}"
            model = "m"
            prompt = "echo it{f" {self.key[2:30]}" if name == "chat-echo" else ""}"
            base_url = "{server.base_url}"
            api_key_env = "{KEY_ENV}"
            reconnect = {{ max_retries = 0 }}
            """
            for name, server in self.servers.items()
        ]
        return textwrap.dedent("".join(textwrap.dedent(b) for b in blocks))


EXPECTED = {
    "chat-echo": "completed",
    "responses-echo": "completed",
    "responses-error": "failed",
    "chat-error": "failed",
}


def _env(tmp_path: Path, key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TOKENTOP_DB"}
    env.update(
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
        PYTHONUNBUFFERED="1",
        **{KEY_ENV: key},
    )
    return env


async def _tokentop(tmp_path: Path, key: str, *args: str) -> tuple[int, str, str]:
    """``tokentop ARGS`` as a real subprocess while this loop serves the canned servers."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tui",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(tmp_path, key),
        cwd=tmp_path,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _db_files(tmp_path: Path) -> Iterator[tuple[Path, bytes]]:
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file() and path.suffix != ".toml":
            yield path, path.read_bytes()


# -- the canary --------------------------------------------------------------------------


async def test_tokentop_run_export_and_history_never_show_the_key(tmp_path: Path) -> None:
    key = canary_key()
    db = tmp_path / "runs.db"
    async with EchoServers(key) as echo:
        config = tmp_path / "sessions.toml"
        config.write_text(echo.config_text(), encoding="utf-8")
        code, out, err = await _tokentop(
            tmp_path, key, "run", str(config), "--jsonl", "--db", str(db)
        )
        # the servers really echoed the key to the client
        for server in echo.servers.values():
            assert (
                server.requests and server.requests[0].headers["authorization"] == f"Bearer {key}"
            )
        code2, out2, err2 = await _tokentop(tmp_path, key, "run", str(config), "--db", str(db))
    assert code == code2 == 1, err  # two sessions fail
    assert_clean(key, out, "run --jsonl stdout")
    assert_clean(key, err, "run --jsonl stderr")
    assert_clean(key, out2, "run stdout (the summary table)")
    assert_clean(key, err2, "run stderr")
    results = {r["session"]: r for r in map(json.loads, out.splitlines()) if r["type"] == "result"}
    assert {name: r["status"] for name, r in results.items()} == EXPECTED
    chat = results["chat-echo"]
    # the text around the key is all there; the key's place is marked
    assert chat["output_text"].count("two ") == len(key) - 1
    assert chat["output_text"].startswith(f"whole {REDACTED} end. ")
    assert chat["output_text"].endswith(f"fragment {REDACTED} done.")
    assert REDACTED in chat["tool_calls"][0]["arguments"]
    assert "failed: " in err and "HTTP 500" in err and "HTTP 400" in err
    # the cut error snippet keeps no fragment either (it is redacted at the session layer)
    assert REDACTED in results["responses-error"]["error"]["message"]
    for path, data in _db_files(tmp_path):
        assert_clean(key, data, str(path))

    # the stored runs, out again (the commands in process: their output is stdout's)
    runner = CliRunner()
    for name, result in results.items():
        for fmt in ("md", "json", "jsonl"):
            args = [result["run_id"], "--format", fmt, "--db", str(db)]
            got = await asyncio.to_thread(runner.invoke, export_command, args)
            assert got.exit_code == 0, got.output
            assert_clean(key, got.output, f"export --format {fmt} of {name}")
            assert REDACTED in got.output or name == "chat-error"  # that one says ***
    for args in (["--json"], [], ["--search", key[:10]]):
        got = await asyncio.to_thread(runner.invoke, history_command, [*args, "--db", str(db)])
        assert got.exit_code == 0, got.output
        assert_clean(key, got.output, f"history {args}")


async def test_in_process_run_and_its_logs_never_show_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    key = canary_key()
    monkeypatch.setenv(KEY_ENV, key)
    caplog.set_level(logging.DEBUG)
    async with EchoServers(key, every_pair=False) as echo:
        config_path = tmp_path / "sessions.toml"
        config_path.write_text(echo.config_text(), encoding="utf-8")
        sessions = load_config(config_path).sessions
        out, err = io.StringIO(), io.StringIO()

        careless = logging.getLogger("tui.test.careless")
        careless.warning("before the run: %s", key)

        def run_started(self: object, controller: object, run: object) -> None:
            # as a careless library would, while the runs are on
            careless.warning("started with %s", key)
            try:
                raise ValueError(key)
            except ValueError:
                careless.exception("and failed: %s", key[4:30])

        monkeypatch.setattr(headless._Printer, "run_started", run_started)
        code = await run_sessions(
            sessions, RunOptions(jsonl=True, db_path=tmp_path / "runs.db"), out=out, err=err
        )
    assert code == 1
    assert_clean(key, out.getvalue(), "stdout")
    assert_clean(key, err.getvalue(), "stderr")
    for path, data in _db_files(tmp_path):
        assert_clean(key, data, str(path))
    during = [r for r in caplog.records if r.name == "tui.test.careless"]
    assert len(during) == 1 + 2 * len(sessions)
    # the record logged before the run (no filter yet) is the control: it holds the key
    assert key in during[0].getMessage()
    text = "".join(r.getMessage() + (r.exc_text or "") for r in during[1:])
    assert "ValueError" in text
    assert_clean(key, text + caplog.text.split("before the run")[-1].split("\n", 1)[-1], "logs")


def test_the_log_filter_redacts_messages_arguments_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = canary_key()
    uninstall = install_log_filter(Redactor([key]))
    try:
        log = logging.getLogger("tui.test.secrets")
        with caplog.at_level(logging.INFO):
            log.warning("the key is %s and half %s", key, key[:20])
            log.info(f"inline {key[10:]}")
            try:
                raise RuntimeError(f"server said {key}")
            except RuntimeError:
                log.exception("failed with %r", {"k": key})
        text = caplog.text + "".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
        assert len(caplog.records) == 3 and "RuntimeError" in text
        assert_clean(key, text, "log records")
    finally:
        uninstall()


# -- the redactor itself -----------------------------------------------------------------


def _stream(redactor: Redactor, batches: list[list[RunEvent]]) -> list[RunEvent]:
    run = RunRedactor(redactor)
    out: list[RunEvent] = []
    for batch in batches:
        out += run.events(batch)
    return out


def _joined(events: list[RunEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def _near(got: str, expected: str, key: str) -> bool:
    """``got`` is ``expected`` but for up to HOLD_PIECE - 1 characters of the key before a
    marker (the start of a piece from the key's middle, released with its delta)."""
    got_parts, parts = got.split(REDACTED), expected.split(REDACTED)
    return len(got_parts) == len(parts) and all(
        g == e or (g.startswith(e) and len(g) - len(e) < HOLD_PIECE and g[len(e) :] in key)
        for g, e in zip(got_parts, parts, strict=True)
    )


def test_a_key_split_over_deltas_at_every_offset_is_redacted() -> None:
    key = canary_key()
    redactor = Redactor([key])
    text = f"a {key} b {key[:12]} c {key[20:]}."
    end = Finished(9.0, "completed", "stop", None)
    for n in (2, 3):
        for cuts in itertools.combinations(range(1, len(text)), n - 1):
            if n == 3 and cuts[0] % 4:
                continue
            bounds = [0, *cuts, len(text)]
            deltas: list[RunEvent] = [
                TextDelta(float(i), text[bounds[i] : bounds[i + 1]]) for i in range(n)
            ]
            for batches in ([[d] for d in deltas] + [[end]], [[*deltas, end]]):
                out = _stream(redactor, batches)
                assert_clean(key, _joined(out), f"deltas {cuts}")
                # as the whole text redacted at once, but for up to HOLD_PIECE - 1
                # characters before a marker (a piece from the middle of the key)
                assert _near(_joined(out), redactor.redact(text), key)
                assert out[-1] is end
                times = [e.t for e in out if isinstance(e, TextDelta)]
                assert times == sorted(times) and set(times) <= {float(i) for i in range(n)}


def test_clean_deltas_pass_as_the_same_objects_and_a_suspicious_end_waits() -> None:
    key = canary_key()
    redactor = Redactor([key])
    clean: list[RunEvent] = [TextDelta(0.1, "Hello, "), TextDelta(0.2, "world!")]
    assert all(a is b for a, b in zip(_stream(redactor, [clean]), clean, strict=True))
    # a delta ending with the key's first characters is held back until the next delta
    run = RunRedactor(redactor)
    first = TextDelta(0.3, f"see {key[:5]}")
    assert run.events([first]) == []
    second = TextDelta(0.4, " nothing.")  # "." is never in the key
    assert run.events([second]) == [first, second]  # not a fragment: released unchanged
    assert run.events([TextDelta(0.5, key[:6])]) == []
    assert run.events([Finished(0.6, "completed", "stop", None)])[0] == TextDelta(0.5, key[:6])


def test_every_string_of_every_event_kind_is_redacted() -> None:
    key = canary_key()
    redactor = Redactor([key])
    events: list[RunEvent] = [
        Started(0.0, 1, 200, f"req-{key}", (("x-request-id", f"req-{key}"),)),
        RawEvent(0.1, 1, f"ev-{key}", json.dumps({"delta": key}), key[3:30]),
        ToolCallDelta(0.2, 0, f'{{"a": "{key}"}}', f"fn{key}", f"call_{key}"),
        ReasoningDelta(0.3, f"think {key}."),
        Usage(0.35, 1, 2),
        Finished(0.4, "failed", "error", key, RunError("http", f"bad {key[:28]}…", 500, key, key)),
    ]
    out = _stream(redactor, [events])
    assert len(out) == len(events) and out[4] is events[4]
    assert_clean(key, repr(out), "events")


def test_fragment_lengths() -> None:
    assert fragment_length(40) == fragment_length(16) == 8
    assert fragment_length(15) == 8 and fragment_length(10) == 5
    assert fragment_length(6) == 4 and fragment_length(4) == 4
    short = "abcdefghij"
    assert Redactor([short]).redact("x abcde y abcd z") == f"x {REDACTED} y abcd z"
    assert Redactor(["abc"]).redact("abc") == "abc"  # too short to search
    assert not Redactor([])
