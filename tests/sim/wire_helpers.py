"""Raw-HTTP helpers for the simulator tests: requests by API and a strict SSE reader."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import h11
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
    headers_at: float = 0.0
    """When the response headers arrived, seconds after the request was sent: the simulator
    sends them when it takes the request, so a schedule counts from no later than this."""

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
        cap = Capture(resp.status_code, resp.headers, headers_at=time.perf_counter() - start)
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


WAIT_S = 20.0
"""Bound of every wait for something that must come (generous: two shared cores, CPU hogs)."""


class LagProbe:
    """How late this process's threads were woken while it ran: a thread sleeps ``period``
    seconds over and over and keeps the worst overshoot. The simulator of the tests runs in
    this process, so what delays it (no free core, a busy GIL) delays the probe as well; an
    upper bound on a schedule is then judged against :meth:`slack`, not against an idle box.
    """

    BASE_S = 0.1
    """What a schedule may be late by on an idle machine (loopback, parsing, wake-ups)."""

    def __init__(self, period: float = 0.002) -> None:
        self.period = period
        self.worst = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-probe", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            time.sleep(self.period)
            self.worst = max(self.worst, time.perf_counter() - start - self.period)

    def slack(self) -> float:
        """How late an event may be: the idle allowance plus three times the worst wake-up
        delay seen (the event's wake-up, the write and the reader's wake-up each can be that
        late)."""
        return self.BASE_S + 3 * self.worst

    def __enter__(self) -> LagProbe:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()


class RawStream:
    """A streaming request over a plain socket (h11 for the HTTP framing), so that each read
    has its own bound: waiting for what must come is generous (:data:`WAIT_S`), while a
    silence is checked for exactly as long as asked, whatever the load."""

    def __init__(self, url: str, api: Api, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        self._sock = socket.create_connection((host, port), timeout=WAIT_S)
        self._conn = h11.Connection(h11.CLIENT)
        body = json.dumps(body_for(api)).encode()
        fields = [("host", f"{host}:{port}"), ("content-type", "application/json")]
        fields += [("content-length", str(len(body))), *headers.items()]
        for event in (
            h11.Request(method="POST", target=parts.path + path_for(api), headers=fields),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self._sock.sendall(self._conn.send(event) or b"")
        self.status = 0
        self.body = b""
        self.closed = False
        """The stream has ended (its last chunk, a close, or a cut)."""

    def _read(self, timeout: float) -> bool:
        """Take in what arrives within ``timeout`` seconds: False when nothing did."""
        self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(65536)
        except TimeoutError:
            return False
        self._conn.receive_data(data)
        while True:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError:  # cut inside the body
                self.closed = True
                return True
            if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self.closed = True
            if event is h11.NEED_DATA or self.closed:
                return True
            if isinstance(event, h11.Response):
                self.status = event.status_code
            elif isinstance(event, h11.Data):
                self.body += bytes(event.data)

    def events(self) -> list[SseEvent]:
        """The SSE events received so far."""
        return parse_sse(self.body)

    def read_until(self, done: Callable[[RawStream], bool], what: str) -> None:
        """Read until ``done(self)`` holds; fail naming ``what`` after :data:`WAIT_S`."""
        deadline = time.monotonic() + WAIT_S
        while not done(self):
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                raise AssertionError(f"{what}: not seen (closed={self.closed}, {self.body!r})")
            self._read(left)

    def read_more(self, what: str) -> None:
        """Read until more of the body arrives; fail naming ``what`` after :data:`WAIT_S`."""
        had = len(self.body)
        self.read_until(lambda r: len(r.body) > had, what)

    def silent_for(self, seconds: float) -> bool:
        """Nothing arrived for ``seconds`` seconds and the connection is still open."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self._read(left):
                return False
        return not self.closed

    def __enter__(self) -> RawStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._sock.close()
