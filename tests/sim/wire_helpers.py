"""Raw-HTTP helpers for the simulator tests: requests by API and a strict SSE reader."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

Api = Literal["chat", "responses"]


def body_for(api: Api, prompt: str = "hello", **extra: Any) -> dict[str, Any]:
    """A streaming request body for ``api``."""
    body: dict[str, Any] = {"model": "sim", "stream": True}
    if api == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
        body["stream_options"] = {"include_usage": True}
    else:
        body["input"] = prompt
    body.update(extra)
    return body


def path_for(api: Api) -> str:
    """The create path of ``api``."""
    return "/chat/completions" if api == "chat" else "/responses"


@dataclass
class SseEvent:
    """One dispatched SSE event."""

    event: str | None
    data: str
    id: str | None


@dataclass
class Capture:
    """What a raw streaming request saw."""

    status: int
    headers: httpx.Headers
    pieces: list[bytes] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    """Arrival time of each piece, seconds after the request was sent."""
    error: Exception | None = None

    @property
    def raw(self) -> bytes:
        """All body bytes."""
        return b"".join(self.pieces)

    def events(self) -> list[SseEvent]:
        """The SSE events of the body (WHATWG rules: BOM, CR/LF/CRLF, comments, ids)."""
        return parse_sse(self.raw)


def capture(
    url: str,
    api: Api,
    *,
    headers: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
    timeout: float = 20.0,
    max_s: float | None = None,
) -> Capture:
    """POST a streaming request and record every raw piece with its arrival time
    (``max_s``: stop reading after that many seconds)."""
    start = time.perf_counter()
    with (
        httpx.Client(timeout=timeout) as client,
        client.stream(
            "POST", url + path_for(api), json=body or body_for(api), headers=headers or {}
        ) as resp,
    ):
        cap = Capture(resp.status_code, resp.headers)
        try:
            for piece in resp.iter_raw():
                cap.pieces.append(piece)
                cap.times.append(time.perf_counter() - start)
                if max_s is not None and cap.times[-1] > max_s:
                    break
        except (httpx.RemoteProtocolError, httpx.ReadTimeout) as exc:
            cap.error = exc
    return cap


_LINE = re.compile(rb"\r\n|\r|\n")


def parse_sse(raw: bytes) -> list[SseEvent]:
    """Decode an event stream (one leading BOM, any line ending, comments, ids, multi-line
    data); an unterminated last event is dropped, as the spec says."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    lines = _LINE.split(raw)
    events: list[SseEvent] = []
    name: str | None = None
    data: list[str] = []
    last_id: str | None = None
    for line_bytes in lines[:-1]:  # the last element is an unterminated line
        line = line_bytes.decode("utf-8")
        if line == "":
            if data:
                events.append(SseEvent(name, "\n".join(data), last_id))
            name, data = None, []
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "event":
            name = value
        elif key == "data":
            data.append(value)
        elif key == "id":
            last_id = value
    return events


def answer_of(api: Api, events: list[SseEvent]) -> str:
    """The answer text carried by the deltas of a chat or responses stream."""
    import json

    out: list[str] = []
    for e in events:
        if e.data == "[DONE]":
            continue
        obj = json.loads(e.data)
        if api == "chat":
            for choice in obj.get("choices") or []:
                out.append(choice["delta"].get("content") or "")
        elif obj.get("type") == "response.output_text.delta":
            out.append(obj["delta"])
    return "".join(out)
