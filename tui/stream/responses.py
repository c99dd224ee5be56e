"""Responses API (``POST /v1/responses``, ``stream: true``): the request body and the event ->
normalized events adapter.

The stream ends at its terminal event (``response.completed`` / ``.incomplete`` /
``.failed`` / ``.cancelled`` or ``error``); there is no ``[DONE]``. The ``error`` event is
read in both shapes (flat as documented, nested as sent). Unknown event types only become
``RawEvent``.

- The ``response`` object's ``status`` says how the response ended, not the event's name
  (a ``response.completed`` with ``status: "incomplete"`` is a cut).
- The final objects (``output_text.done``, ``content_part.done``, ``output_item.done``, the
  terminal ``response.output``) are compared with the deltas at the terminal event: text
  that only they carry is added (all of it when no deltas came), and when they show that
  deltas were lost from the middle, a ``Notice`` carries the final text, which the fold
  takes. Function calls and reasoning are completed the same way (by appending).
- ``sequence_number`` is trusted while it strictly increases within an attempt: then a
  resumed background stream drops the events it already delivered (``last_seq`` is the
  resume cursor). Once it repeats or goes back, a ``Notice`` says so, every event is kept
  and ``last_seq`` becomes None for the rest of the run (a drop restarts, never resumes).
- An event that does not decode into the strict types is read again leniently
  (:class:`tui.stream.adapter.Lenient`), as in the chat adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from tui.config import SessionConfig
from tui.stream.adapter import (
    INDEX_MAX,
    INT64_MAX,
    ErrorBody,
    Lenient,
    NoticeLog,
    Outcome,
    Unreadable,
    counts_ok,
    decode_loose,
    error_outcome,
    protocol_outcome,
)
from tui.stream.construct import raw_event, reasoning_delta, text_delta
from tui.stream.events import (
    FinishReason,
    RawEvent,
    ReasoningDelta,
    ResponseInfo,
    RunEvent,
    RunStatus,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from tui.stream.sse import SSEEvent

__all__ = ["ResponsesAdapter", "build_responses_body", "normalize_incomplete"]


def build_responses_body(session: SessionConfig, prompt: str | None = None) -> dict[str, Any]:
    """The streaming request body for ``session`` (``prompt`` overrides the session's)."""
    body: dict[str, Any] = {
        "model": session.model,
        "input": session.prompt if prompt is None else prompt,
        "stream": True,
    }
    if session.system:
        body["instructions"] = session.system
    if session.max_output_tokens is not None:
        body["max_output_tokens"] = session.max_output_tokens
    if session.temperature is not None:
        body["temperature"] = session.temperature
    if session.background:
        body["background"] = True
    body.update(session.params)
    return body


_INCOMPLETE: dict[str, FinishReason] = {
    "max_output_tokens": "length",
    "max_tokens": "length",
    "content_filter": "content_filter",
}


def normalize_incomplete(raw: str | None) -> FinishReason:
    """Normalized reason of ``incomplete_details.reason`` (a filter or safety cut of any
    spelling: content_filter; anything else: length)."""
    known = _INCOMPLETE.get(raw or "")
    if known is not None:
        return known
    word = (raw or "").lower()
    if any(stem in word for stem in ("filter", "safety", "block", "moderat", "recitation")):
        return "content_filter"
    return "length"


class _Part(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    refusal: str | None = None


class _Item(msgspec.Struct):
    type: str | None = None
    id: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    content: list[_Part] | None = None
    summary: list[_Part] | None = None


class _Incomplete(msgspec.Struct):
    reason: str | None = None


class _InputDetails(msgspec.Struct):
    cached_tokens: int | None = None


class _OutputDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    input_tokens_details: _InputDetails | None = None
    output_tokens_details: _OutputDetails | None = None


class _Response(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    status: str | None = None
    background: bool | None = None
    output: list[_Item] | None = None
    usage: _Usage | None = None
    error: ErrorBody | None = None
    incomplete_details: _Incomplete | None = None


class _Event(msgspec.Struct):
    type: str = ""
    sequence_number: int | None = None
    delta: str | None = None
    output_index: int | None = None
    item: _Item | None = None
    response: _Response | None = None
    error: ErrorBody | None = None
    # the documented flat ``error`` event shape
    message: str | None = None
    code: str | int | None = None
    # the final objects: ``*.done`` events
    text: str | None = None
    part: _Part | None = None
    refusal: str | None = None
    arguments: str | None = None
    name: str | None = None


_decode_event = msgspec.json.Decoder(_Event).decode

_TEXT = "response.output_text.delta"
_REASONING = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
_TERMINAL: dict[str, RunStatus] = {
    "response.completed": "completed",
    "response.incomplete": "incomplete",
    "response.failed": "failed",
    "response.cancelled": "cancelled",
}
_STATUSES: dict[str, RunStatus] = {
    "completed": "completed",
    "incomplete": "incomplete",
    "failed": "failed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}


class _Call:
    """What the stream said so far about one function call."""

    __slots__ = ("arguments", "call_id", "name")

    def __init__(self, arguments: str, name: str | None, call_id: str | None) -> None:
        self.arguments = [arguments] if arguments else []
        self.name = name
        self.call_id = call_id


class ResponsesAdapter:
    """Responses events -> normalized events (one adapter per run; see :class:`Adapter`)."""

    __slots__ = (
        "_attempt",
        "_attempt_seq",
        "_call_at",
        "_calls",
        "_dispatch",
        "_final",
        "_final_reasoning",
        "_notices",
        "_reasoned",
        "_seq_trusted",
        "_streamed",
        "_tool_last",
        "background",
        "content_seen",
        "count",
        "last_seq",
        "outcome",
        "response_id",
        "tool_calls_seen",
    )

    def __init__(self) -> None:
        self._attempt = 1
        self.count = 0
        """Events handled in the current attempt (1-based numbers in messages)."""
        self.outcome: Outcome | None = None
        self.content_seen = False
        self.tool_calls_seen = False
        self.last_seq: int | None = None
        """The last ``sequence_number`` delivered (the resume cursor); None before one, and
        for the rest of the run once the numbering proved unusable (repeats, goes back)."""
        self._attempt_seq: int | None = None
        self._seq_trusted = True
        self.response_id: str | None = None
        self.background = False
        """The server confirmed (or the request asked for) a background response."""
        self._notices = NoticeLog()
        self._forget_output()
        self._dispatch: dict[str, Callable[[_Event, float, list[RunEvent]], None]] = {
            "response.created": self._created,
            "response.queued": self._created,
            "response.in_progress": self._created,
            "response.output_item.added": self._item_added,
            "response.output_item.done": self._item_done,
            "response.content_part.done": self._part_done,
            "response.output_text.done": self._text_done,
            "response.refusal.done": self._refusal_done,
            "response.reasoning_summary_text.done": self._reasoning_done,
            "response.reasoning_text.done": self._reasoning_done,
            "response.reasoning_summary_part.done": self._reasoning_part_done,
            "response.function_call_arguments.delta": self._arguments,
            "response.function_call_arguments.done": self._arguments_done,
            "response.refusal.delta": self._refusal,
            "response.completed": self._terminal,
            "response.incomplete": self._terminal,
            "response.failed": self._terminal,
            "response.cancelled": self._terminal,
            "error": self._error,
        }

    def _forget_output(self) -> None:
        self._streamed: list[str] = []
        """The answer text the deltas gave (as the fold has it)."""
        self._reasoned: list[str] = []
        self._final: dict[str, list[str]] = {}
        """Answer text by the kind of final object that gave it (each kind in order)."""
        self._final_reasoning: dict[str, list[str]] = {}
        self._calls: dict[int, _Call] = {}
        self._call_at: dict[str, int] = {}
        """Function-call item id or call id -> its index (``output_index``)."""
        self._tool_last: int | None = None

    def begin_attempt(self, attempt: int, *, restart: bool) -> None:
        """A new attempt; ``restart`` forgets the response (a resume keeps the cursor)."""
        self._attempt = attempt
        self.count = 0
        self.outcome = None
        self._attempt_seq = None
        if restart:
            self.content_seen = self.tool_calls_seen = False
            self.last_seq = None
            self._seq_trusted = True
            self.response_id = None
            self._forget_output()

    def handle(self, event: SSEEvent, t: float, out: list[RunEvent]) -> None:
        """Decode one event into ``out`` (RawEvent first, for every event received); a
        duplicate (sequence number not above the cursor) yields nothing else."""
        data = event.data
        self.count += 1
        out.append(self._raw(event, t))
        if data[:6] == b"[DONE]":
            return  # a gateway's chat habit: not an end (only a terminal event is)
        try:
            ev: _Event | None = _decode_event(data)
        except msgspec.ValidationError:
            ev = self._lenient(data, event, t, out)
        except msgspec.DecodeError as exc:
            ev = self._lenient(data, event, t, out, exc)
        except RecursionError:
            self._unreadable("nested too deeply", t, out)
            return
        if ev is None:
            return
        seq = ev.sequence_number
        if seq is not None and self._seq_trusted:
            prev = self._attempt_seq
            if (prev < seq <= INT64_MAX) if prev is not None else (0 <= seq <= INT64_MAX):
                self._attempt_seq = seq
                last = self.last_seq
                if last is not None and seq <= last:
                    return  # already delivered before the stream was resumed
                self.last_seq = seq
            else:
                self._distrust(seq, prev, t, out)
        kind = ev.type or event.event or ""
        if kind == _TEXT:
            delta = ev.delta
            if delta:
                self.content_seen = True
                self._streamed.append(delta)
                out.append(text_delta(t, delta))
        elif kind in _REASONING:
            delta = ev.delta
            if delta:
                self._reasoned.append(delta)
                out.append(reasoning_delta(t, delta))
        else:
            handler = self._dispatch.get(kind)
            if handler is not None:
                handler(ev, t, out)

    def _raw(self, event: SSEEvent, t: float) -> RawEvent:
        return raw_event(
            t, self._attempt, event.event, event.data.decode("utf-8", "replace"), event.id
        )

    def _distrust(self, seq: int, prev: int | None, t: float, out: list[RunEvent]) -> None:
        """The numbering repeats or goes back: keep every event from now on, and give up
        the resume cursor (``starting_after`` would point nowhere)."""
        self._seq_trusted = False
        self.last_seq = None
        what = f"{seq} after {prev}" if prev is not None else f"{seq}"
        self._notices.say(
            "sequence_unusable",
            "sequence_unusable",
            f"sequence_number does not increase ({what}): the numbering is unusable, every "
            "event is kept and a dropped stream is restarted, not resumed",
            t,
            out,
        )

    # -- lenient reading -----------------------------------------------------------------
    def _lenient(
        self,
        data: bytes,
        event: SSEEvent,
        t: float,
        out: list[RunEvent],
        malformed: msgspec.DecodeError | None = None,
    ) -> _Event | None:
        """An event the strict types do not fit: decode it leniently and read what it has
        (None: nothing to read; events of unknown types are never looked into)."""
        try:
            value, note = decode_loose(data)
        except Unreadable as exc:
            self._unreadable(str(exc), t, out)
            return None
        except msgspec.DecodeError as exc:
            self.outcome = protocol_outcome(
                f"malformed JSON in event {self.count} of attempt {self._attempt}: "
                f"{malformed or exc}"
            )
            return None
        if note is not None:
            self._notices.say(f"json:{note}", "odd_json", f"an event has {note}", t, out)
        if not isinstance(value, dict):
            return None
        kind = value.get("type")
        if not isinstance(kind, str) or not kind:
            kind = event.event or ""
        if kind not in self._dispatch and kind != _TEXT and kind not in _REASONING:
            return None
        reader = Lenient()
        ev = _read_event(value, kind, reader)
        self._notices.flush(reader, t, out)
        return ev

    def _unreadable(self, why: str, t: float, out: list[RunEvent]) -> None:
        self._notices.say(
            "unreadable_event",
            "unreadable_event",
            f"event {self.count} of attempt {self._attempt} could not be decoded ({why}): "
            "skipped (it is in the raw log)",
            t,
            out,
        )

    # -- handlers ------------------------------------------------------------------------
    def _created(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        resp = ev.response
        if resp is None:
            return
        if resp.background:
            self.background = True
        if resp.id is not None and resp.id != self.response_id:
            self.response_id = resp.id
            out.append(ResponseInfo(t, resp.id, resp.model))

    def _index(self, ev: _Event) -> int:
        index = ev.output_index
        if index is not None and 0 <= index <= INDEX_MAX:
            return index
        return self._tool_last if self._tool_last is not None else 0

    def _item_added(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        item = ev.item
        if item is not None and item.type == "function_call":
            index = self._index(ev)
            self._tool_last = index
            for key in (item.id, item.call_id):
                if key is not None:
                    self._call_at[key] = index
            self._call(index, item.arguments, item.name, item.call_id, t, out)

    def _call(
        self,
        index: int,
        arguments: str | None,
        name: str | None,
        call_id: str | None,
        t: float,
        out: list[RunEvent],
        final: bool = False,
    ) -> None:
        """A function call as an ``output_item`` or a final object tells it: new ones are
        emitted whole; of known ones only what the deltas did not give (a name, an id, the
        missing end of the arguments) is added."""
        self.content_seen = self.tool_calls_seen = True
        call = self._calls.get(index)
        if call is None:
            self._calls[index] = _Call(arguments or "", name, call_id)
            out.append(ToolCallDelta(t, index, arguments or "", name, call_id))
            return
        add_name = name if call.name is None else None
        add_id = call_id if call.call_id is None else None
        call.name = call.name or name
        call.call_id = call.call_id or call_id
        rest = ""
        streamed = "".join(call.arguments)
        if arguments and arguments != streamed:
            if arguments.startswith(streamed):
                rest = arguments[len(streamed) :]
                call.arguments = [arguments]
                if streamed:
                    self._notices.say(
                        "deltas_lost:arguments",
                        "deltas_lost",
                        f"the end of the arguments of tool call {index} came only in the final "
                        "objects (argument deltas were lost): added",
                        t,
                        out,
                    )
            elif final:
                self._notices.say(
                    "final_differs:arguments",
                    "final_differs",
                    f"the final arguments of tool call {index} differ from the streamed ones: "
                    "the streamed ones are kept (the final ones are in the raw log)",
                    t,
                    out,
                )
        if rest or add_name is not None or add_id is not None:
            out.append(ToolCallDelta(t, index, rest, add_name, add_id))

    def _arguments(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        if ev.delta:
            self.content_seen = self.tool_calls_seen = True
            index = self._index(ev)
            call = self._calls.get(index)
            if call is None:
                self._calls[index] = _Call(ev.delta, None, None)
            else:
                call.arguments.append(ev.delta)
            out.append(ToolCallDelta(t, index, ev.delta))

    def _arguments_done(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        self._call(self._index(ev), ev.arguments, ev.name, None, t, out, final=True)

    def _refusal(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        if ev.delta:
            self.content_seen = True
            self._streamed.append(ev.delta)
            out.append(TextDelta(t, ev.delta))

    def _text_done(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        if ev.text is not None:
            self._final.setdefault("done", []).append(ev.text)

    def _refusal_done(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        if ev.refusal is not None:
            self._final.setdefault("done", []).append(ev.refusal)

    def _part_done(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        part = ev.part
        if part is None:
            return
        if part.type == "reasoning_text":
            if part.text is not None:
                self._final_reasoning.setdefault("part", []).append(part.text)
        else:
            text = part.refusal if part.type == "refusal" else part.text
            if text is not None:
                self._final.setdefault("part", []).append(text)

    def _reasoning_done(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        if ev.text is not None:
            self._final_reasoning.setdefault("done", []).append(ev.text)

    def _reasoning_part_done(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        if ev.part is not None and ev.part.text is not None:
            self._final_reasoning.setdefault("summary part", []).append(ev.part.text)

    def _item_done(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        if ev.item is not None:
            self._final_item(ev.item, self._index(ev), "item", t, out)

    def _final_item(
        self, item: _Item, index: int, level: str, t: float, out: list[RunEvent]
    ) -> None:
        """One item of the final objects (``output_item.done`` or ``response.output``)."""
        if item.type == "function_call":
            for key in (item.id, item.call_id):
                if key is not None and key in self._call_at:
                    index = self._call_at[key]
                    break
            self._call(index, item.arguments, item.name, item.call_id, t, out, final=True)
        elif item.type == "reasoning":
            texts = [p.text for p in (item.summary or ()) if p.text is not None]
            texts += [p.text for p in (item.content or ()) if p.text is not None]
            self._final_reasoning.setdefault(level, []).extend(texts)
        elif item.type in (None, "message"):
            for part in item.content or ():
                text = part.refusal if part.type == "refusal" else part.text
                if text is not None:
                    self._final.setdefault(level, []).append(text)

    def _reconcile(self, t: float, out: list[RunEvent]) -> None:
        """At the terminal event: what the final objects say beyond the deltas."""
        final = max(("".join(v) for v in self._final.values()), key=len, default="")
        streamed = "".join(self._streamed)
        if final and final != streamed:
            if final.startswith(streamed):
                self._streamed = [final]
                self.content_seen = True
                out.append(TextDelta(t, final[len(streamed) :]))
                if streamed:
                    self._notices.say(
                        "deltas_lost:text",
                        "deltas_lost",
                        f"{len(final) - len(streamed)} characters at the end of the answer came "
                        "only in the final text (text deltas were lost): added",
                        t,
                        out,
                    )
                else:
                    self._notices.say(
                        "final_only:text",
                        "final_text_only",
                        "the answer came only in the final objects (no text deltas)",
                        t,
                        out,
                    )
            elif _within(self._streamed, final):
                self._streamed = [final]
                self._notices.say(
                    "deltas_lost:text",
                    "deltas_lost",
                    f"text deltas were lost from the answer: the final text ({len(final)} "
                    f"characters) replaces the streamed one ({len(streamed)})",
                    t,
                    out,
                    answer=final,
                )
            elif not streamed.startswith(final):
                self._notices.say(
                    "final_differs:text",
                    "final_differs",
                    "the final text differs from the streamed deltas: the streamed text is kept "
                    "(the final one is in the raw log)",
                    t,
                    out,
                )
        final = max(("".join(v) for v in self._final_reasoning.values()), key=len, default="")
        reasoned = "".join(self._reasoned)
        if final and final != reasoned and final.startswith(reasoned):
            self._reasoned = [final]
            out.append(ReasoningDelta(t, final[len(reasoned) :]))

    def _usage(self, resp: _Response, t: float, out: list[RunEvent]) -> None:
        u = resp.usage
        if u is None:
            return
        ind, outd = u.input_tokens_details, u.output_tokens_details
        counts = (
            u.input_tokens,
            u.output_tokens,
            outd.reasoning_tokens if outd is not None else None,
            ind.cached_tokens if ind is not None else None,
            u.total_tokens,
        )
        if not counts_ok(*counts):
            reader = Lenient()
            counts = tuple(  # type: ignore[assignment]
                reader.count(v, f"response.usage.{n}")
                for v, n in zip(counts, _USAGE_FIELDS, strict=True)
            )
            self._notices.flush(reader, t, out)
        out.append(Usage(t, *counts))

    def _terminal(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        """A terminal event: the ``response``'s own ``status`` says how it ended."""
        kind = ev.type
        named = _TERMINAL.get(kind, "completed")
        resp = ev.response
        status = named
        if resp is not None:
            said = _STATUSES.get((resp.status or "").lower())
            if said is not None and said != named:
                status = said
                self._notices.say(
                    f"status:{kind}:{said}",
                    "status_mismatch",
                    f"{kind} carried status {resp.status!r}: read as {said}",
                    t,
                    out,
                )
            self._usage(resp, t, out)
            for i, item in enumerate(resp.output or ()):
                self._final_item(item, i, "response", t, out)
        if status != "cancelled":
            self._reconcile(t, out)
        if status == "completed":
            tools = self.tool_calls_seen
            self.outcome = Outcome("completed", "tool_calls" if tools else "stop", "completed")
        elif status == "incomplete":
            details = resp.incomplete_details if resp is not None else None
            raw = details.reason if details is not None else None
            self.outcome = Outcome("incomplete", normalize_incomplete(raw), raw or "incomplete")
        elif status == "failed":
            err = (resp.error if resp is not None else None) or ev.error
            if err is not None:
                failure = error_outcome(err.message, err.code, err.type, where=f"({kind})")
            else:
                failure = error_outcome(ev.message, ev.code, None, where=f"({kind})")
            self.outcome = Outcome("failed", "error", "failed", failure.error)
        else:
            self.outcome = Outcome("cancelled", "cancelled", "cancelled")

    def _error(self, ev: _Event, t: float, out: list[RunEvent]) -> None:
        err = ev.error
        if err is not None:  # nested, as OpenAI sends it
            self.outcome = error_outcome(err.message, err.code, err.type, where="(error event)")
        else:  # flat, as documented
            self.outcome = error_outcome(ev.message, ev.code, None, where="(error event)")

    def eof_outcome(self, pending: bytes | None) -> Outcome | None:
        """Responses has no ``[DONE]``: a clean EOF before a terminal event is truncation."""
        return None


def _within(pieces: list[str], final: str) -> bool:
    """Whether the streamed pieces appear in ``final`` in order (deltas were lost between
    them) and ``final`` is longer."""
    pos = 0
    for piece in pieces:
        found = final.find(piece, pos)
        if found < 0:
            return False
        pos = found + len(piece)
    return len(final) > sum(map(len, pieces))


_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "output_tokens_details.reasoning_tokens",
    "input_tokens_details.cached_tokens",
    "total_tokens",
)


def _read_event(value: dict[str, Any], kind: str, reader: Lenient) -> _Event:
    """An event from leniently decoded JSON: every field the adapter reads, in its type."""
    seq: int | None = None
    if value.get("sequence_number") is not None:
        seq = reader.whole(value["sequence_number"], "sequence_number", INT64_MAX, "a number")
        if seq is None:
            seq = -1  # present but unusable: the numbering cannot be trusted
    item = reader.obj(value.get("item"), "item")
    resp = reader.obj(value.get("response"), "response")
    part = value.get("part")
    err = value.get("error")
    return _Event(
        type=kind,
        sequence_number=seq,
        delta=reader.text(value.get("delta"), "delta"),
        output_index=reader.index(value.get("output_index"), "output_index"),
        item=_read_item(item, reader, "item") if item is not None else None,
        response=_read_response(resp, reader) if resp is not None else None,
        error=reader.error(err) if err else None,
        message=reader.text(value.get("message"), "message"),
        code=_code(value.get("code")),
        text=reader.text(value.get("text"), "text"),
        part=_read_part(part, reader, "part") if part is not None else None,
        refusal=reader.text(value.get("refusal"), "refusal"),
        arguments=reader.arguments(value.get("arguments"), "arguments"),
        name=reader.ident(value.get("name"), "name"),
    )


def _code(value: Any) -> str | int | None:
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _read_part(value: Any, reader: Lenient, field: str) -> _Part | None:
    if isinstance(value, str):
        reader.odd(field, "a string where a content part belongs: read as its text")
        return _Part("output_text", value)
    part = reader.obj(value, field)
    if part is None:
        return None
    return _Part(
        reader.ident(part.get("type"), f"{field}.type"),
        reader.text(part.get("text"), f"{field}.text"),
        reader.text(part.get("refusal"), f"{field}.refusal"),
    )


def _read_parts(value: Any, reader: Lenient, field: str) -> list[_Part]:
    if isinstance(value, str):
        return [_Part("output_text", value)]
    parts = (_read_part(p, reader, f"{field}[]") for p in reader.items(value, field))
    return [p for p in parts if p is not None]


def _read_item(item: dict[str, Any], reader: Lenient, field: str) -> _Item:
    return _Item(
        type=reader.ident(item.get("type"), f"{field}.type"),
        id=reader.ident(item.get("id"), f"{field}.id"),
        call_id=reader.ident(item.get("call_id"), f"{field}.call_id"),
        name=reader.ident(item.get("name"), f"{field}.name"),
        arguments=reader.arguments(item.get("arguments"), f"{field}.arguments"),
        content=_read_parts(item.get("content"), reader, f"{field}.content"),
        summary=_read_parts(item.get("summary"), reader, f"{field}.summary"),
    )


def _read_response(resp: dict[str, Any], reader: Lenient) -> _Response:
    output: list[_Item] = []
    for raw in reader.items(resp.get("output"), "response.output"):
        item = reader.obj(raw, "response.output[]")
        if item is not None:
            output.append(_read_item(item, reader, "response.output[]"))
    usage = reader.obj(resp.get("usage"), "response.usage")
    details = resp.get("incomplete_details")
    reason: str | None = None
    if isinstance(details, dict):
        reason = reader.ident(details.get("reason"), "response.incomplete_details.reason")
    elif isinstance(details, str):
        reader.odd("response.incomplete_details", "a string: read as the reason")
        reason = details
    err = resp.get("error")
    return _Response(
        id=reader.ident(resp.get("id"), "response.id"),
        model=reader.ident(resp.get("model"), "response.model"),
        status=reader.ident(resp.get("status"), "response.status"),
        background=resp.get("background") is True,
        output=output,
        usage=_read_usage(usage, reader) if usage is not None else None,
        error=reader.error(err) if err else None,
        incomplete_details=_Incomplete(reason) if details is not None else None,
    )


def _read_usage(usage: dict[str, Any], reader: Lenient) -> _Usage:
    ind = reader.obj(usage.get("input_tokens_details"), "response.usage.input_tokens_details")
    outd = reader.obj(usage.get("output_tokens_details"), "response.usage.output_tokens_details")
    return _Usage(
        reader.count(usage.get("input_tokens"), "response.usage.input_tokens"),
        reader.count(usage.get("output_tokens"), "response.usage.output_tokens"),
        reader.count(usage.get("total_tokens"), "response.usage.total_tokens"),
        _InputDetails(
            reader.count(
                ind.get("cached_tokens"), "response.usage.input_tokens_details.cached_tokens"
            )
        )
        if ind is not None
        else None,
        _OutputDetails(
            reader.count(
                outd.get("reasoning_tokens"),
                "response.usage.output_tokens_details.reasoning_tokens",
            )
        )
        if outd is not None
        else None,
    )
