"""Chat Completions (``POST /v1/chat/completions``, ``stream: true``): the chunk ->
normalized events adapter.

The request body, the strict chunk types and the finish-reason mapping are in
:mod:`tui.stream.chat_types`, the lenient reading of an odd chunk in
:mod:`tui.stream.chat_lenient`; ``build_chat_body`` and ``normalize_chat_finish`` are
re-exported here.

Deviations handled (see the protocol reference, sections 3 and 6): usage on a separate
``choices: []`` chunk, on every chunk (vLLM continuous usage) or missing; ``finish_reason``
on its own chunk; a role chunk with ``content`` ``""`` or null; ``reasoning_content``
(llama.cpp, vLLM) and ``reasoning`` (Ollama) deltas; tool-call fragments; errors in both the
nested ``{"error": {...}}`` and the flat ``{"object": "error", ...}`` shape (and Ollama's
``{"error": "text"}``) anywhere in the stream; ``[DONE]`` also without its blank line at EOF.

A chunk that does not decode into the strict types (a count sent as ``123.0``, ``index:
null``, arguments as an object, ``choices`` as one object, ``content`` as a list of parts,
...) is read again leniently (:func:`tui.stream.chat_lenient.read_chunk`): what is usable
is taken, and a ``Notice`` says once per run what was odd. Tool calls are kept apart by their
ids when the server leaves out or reuses ``index``. Finish reasons of unknown spelling map to
the nearest known one (the raw one is kept).
"""

from __future__ import annotations

import msgspec

from tui.stream.adapter import (
    INDEX_MAX,
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
from tui.stream.chat_lenient import USAGE_FIELDS, read_chunk
from tui.stream.chat_types import (
    KNOWN_FINISH,
    Chunk,
    Delta,
    ToolCall,
    build_chat_body,
    decode_chunk,
    normalize_chat_finish,
)
from tui.stream.construct import raw_event, reasoning_delta, text_delta
from tui.stream.events import (
    ResponseInfo,
    RunError,
    RunEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from tui.stream.sse import SSEEvent

__all__ = ["ChatAdapter", "build_chat_body", "normalize_chat_finish"]


class ChatAdapter:
    """Chat chunks -> normalized events (one adapter per run; see :class:`Adapter`)."""

    __slots__ = (
        "_attempt",
        "_info_sent",
        "_notices",
        "_tool_by_id",
        "_tool_by_wire",
        "_tool_ids",
        "_tool_last",
        "content_seen",
        "count",
        "finish_raw",
        "outcome",
        "response_id",
    )

    def __init__(self) -> None:
        self._attempt = 1
        self._info_sent = False
        self._notices = NoticeLog()
        self.count = 0
        """Events handled in the current attempt (1-based numbers in messages)."""
        self.outcome: Outcome | None = None
        self.content_seen = False
        self.finish_raw: str | None = None
        self.response_id: str | None = None
        self._forget_tools()

    def _forget_tools(self) -> None:
        self._tool_ids: dict[int, str | None] = {}
        """Our tool-call index -> its call id (None until one came)."""
        self._tool_by_id: dict[str, int] = {}
        self._tool_by_wire: dict[int, int] = {}
        """The server's ``index`` -> ours (they differ when the server reuses an index)."""
        self._tool_last: int | None = None

    def begin_attempt(self, attempt: int, *, restart: bool) -> None:
        """A new attempt: chat cannot resume, so any retry starts over."""
        self._attempt = attempt
        self.count = 0
        self.outcome = None
        if restart:
            self.content_seen = False
            self.finish_raw = None
            self._info_sent = False
            self._forget_tools()

    def handle(self, event: SSEEvent, t: float, out: list[RunEvent]) -> None:
        """Decode one chunk into ``out`` (RawEvent first, then the normalized events)."""
        data = event.data
        self.count += 1
        out.append(
            raw_event(t, self._attempt, event.event, data.decode("utf-8", "replace"), event.id)
        )
        if data[:6] == b"[DONE]":
            self.outcome = self._done_outcome()
            return
        try:
            chunk = decode_chunk(data)
        except msgspec.ValidationError:
            self._lenient(data, t, out)
            return
        except msgspec.DecodeError as exc:
            self._lenient(data, t, out, exc)
            return
        except RecursionError:
            self._unreadable("nested too deeply", t, out)
            return
        self._chunk(chunk, t, out)

    def _chunk(self, chunk: Chunk, t: float, out: list[RunEvent]) -> None:
        err = chunk.error
        if (err is not None and err != "") or chunk.object == "error":
            if isinstance(err, ErrorBody):
                self.outcome = error_outcome(err.message, err.code, err.type, where="mid-stream")
            elif isinstance(err, str):
                self.outcome = error_outcome(err, None, None, where="mid-stream")
            else:
                self.outcome = error_outcome(
                    chunk.message, chunk.code, chunk.type, where="mid-stream"
                )
            return
        if not self._info_sent and chunk.id is not None:
            self._info_sent = True
            self.response_id = chunk.id
            out.append(ResponseInfo(t, chunk.id, chunk.model))
        choices = chunk.choices
        if choices:
            for choice in choices:
                if choice.index:
                    continue  # n > 1: only the first choice is the answer
                delta = choice.delta
                if delta is not None:
                    content = delta.content
                    if content:
                        self.content_seen = True
                        out.append(text_delta(t, content))
                    if (
                        delta.reasoning_content
                        or delta.reasoning
                        or delta.refusal
                        or delta.tool_calls
                        or delta.function_call
                    ):
                        self._rare_delta(delta, t, out)
                if choice.finish_reason:
                    self._finish_reason(choice.finish_reason, t, out)
        usage = chunk.usage
        if usage is not None:
            ptd, ctd = usage.prompt_tokens_details, usage.completion_tokens_details
            counts = (
                usage.prompt_tokens,
                usage.completion_tokens,
                ctd.reasoning_tokens if ctd is not None else None,
                ptd.cached_tokens if ptd is not None else None,
                usage.total_tokens,
            )
            if not counts_ok(*counts):
                counts = self._notices.counts(counts, USAGE_FIELDS, "usage.", t, out)
            out.append(Usage(t, *counts))

    def _finish_reason(self, raw: str, t: float, out: list[RunEvent]) -> None:
        self.finish_raw = raw
        if raw not in KNOWN_FINISH:
            reason = normalize_chat_finish(raw)[1]
            self._notices.say(
                "unknown_finish_reason",
                "unknown_finish_reason",
                f"finish_reason {raw!r} is not a known spelling: read as {reason}",
                t,
                out,
            )

    def _rare_delta(self, delta: Delta, t: float, out: list[RunEvent]) -> None:
        reasoning = delta.reasoning_content or delta.reasoning
        if reasoning:
            out.append(reasoning_delta(t, reasoning))
        if delta.refusal:
            self.content_seen = True
            out.append(TextDelta(t, delta.refusal))
        calls = delta.tool_calls
        if delta.function_call is not None:  # the deprecated single function call
            calls = [*(calls or ()), ToolCall(None, None, delta.function_call)]
        if calls:
            self.content_seen = True
            for call in calls:
                fn = call.function
                out.append(
                    ToolCallDelta(
                        t,
                        self._tool_index(call.index, call.id, t, out),
                        (fn.arguments or "") if fn is not None else "",
                        fn.name if fn is not None else None,
                        call.id,
                    )
                )

    def _tool_index(
        self, wire: int | None, call_id: str | None, t: float, out: list[RunEvent]
    ) -> int:
        """Our index for a tool-call fragment: the server's ``index`` while it is usable;
        placed by the call's id when the index is missing or reused by another call."""
        ids = self._tool_ids
        if wire is not None and not 0 <= wire <= INDEX_MAX:
            self._notices.say(
                "odd_number:tool_calls[].index",
                "odd_number",
                f"tool_calls[].index {wire} is out of range: placed by the call's id",
                t,
                out,
            )
            wire = None
        if wire is None:
            self._notices.say(
                "odd_field:tool_calls[].index",
                "odd_field",
                "tool_calls[].index: missing: each call placed by its id",
                t,
                out,
            )
        if call_id is not None:
            ours = self._tool_by_id.get(call_id)
            if ours is None:
                mapped = self._tool_by_wire.get(wire) if wire is not None else None
                if mapped is not None and ids[mapped] is None:
                    ours = mapped  # its first fragment came without the id
                elif wire is not None and wire not in ids:
                    ours = wire
                else:
                    ours = max(ids, default=-1) + 1
                    if wire is not None and mapped is not None:
                        self._notices.say(
                            "tool_index_reused",
                            "tool_index_reused",
                            f"two tool calls came with index {wire}: kept apart by their ids",
                            t,
                            out,
                        )
                self._tool_by_id[call_id] = ours
                ids[ours] = call_id
        elif wire is not None:
            ours = self._tool_by_wire.get(wire)
            if ours is None:
                if wire not in ids:
                    ours = wire
                    ids[ours] = None
                elif wire not in self._tool_by_wire.values():
                    ours = wire  # the call placed there by its id, now with its index
                else:
                    ours = max(ids) + 1
                    ids[ours] = None
        elif self._tool_last is not None:
            ours = self._tool_last
        else:
            ours = max(ids, default=-1) + 1
            ids[ours] = None
        if wire is not None:
            self._tool_by_wire[wire] = ours
        self._tool_last = ours
        return ours

    def _lenient(
        self,
        data: bytes,
        t: float,
        out: list[RunEvent],
        malformed: msgspec.DecodeError | None = None,
    ) -> None:
        """A chunk the strict types do not fit: decode it leniently and take what it has."""
        try:
            value, note = decode_loose(data)
        except Unreadable as exc:
            self._unreadable(str(exc), t, out)
            return
        except msgspec.DecodeError as exc:
            self.outcome = protocol_outcome(
                f"malformed JSON in event {self.count} of attempt {self._attempt}: "
                f"{malformed or exc}"
            )
            return
        if note is not None:
            self._notices.say(f"json:{note}", "odd_json", f"a chunk has {note}", t, out)
        if not isinstance(value, dict):
            self._notices.say(
                "odd_field:chunk",
                "odd_field",
                "a chunk that is not a JSON object: only in the raw log",
                t,
                out,
            )
            return
        reader = Lenient()
        chunk = read_chunk(value, reader)
        self._notices.flush(reader, t, out)
        self._chunk(chunk, t, out)

    def _unreadable(self, why: str, t: float, out: list[RunEvent]) -> None:
        self._notices.say(
            "unreadable_event",
            "unreadable_event",
            f"event {self.count} of attempt {self._attempt} could not be decoded ({why}): "
            "skipped (it is in the raw log)",
            t,
            out,
        )

    def _done_outcome(self) -> Outcome:
        raw = self.finish_raw
        if raw is None:
            return Outcome("completed", "stop", None)
        status, reason = normalize_chat_finish(raw)
        if status == "failed":
            message = f"the server ended the stream with finish_reason {raw!r}"
            return Outcome(status, reason, raw, RunError("server", message, code=raw))
        return Outcome(status, reason, raw)

    def eof_outcome(self, pending: bytes | None) -> Outcome | None:
        """A final ``data: [DONE]`` without its blank line still ends the stream; so does a
        ``finish_reason`` already received (a missing ``[DONE]`` after it loses nothing)."""
        if pending is not None and pending[:6] == b"[DONE]":
            return self._done_outcome()
        if self.finish_raw is not None:
            return self._done_outcome()
        return None
