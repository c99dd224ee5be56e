"""Responses API (``POST /v1/responses``, ``stream: true``): the event -> normalized events
adapter (decoding, sequence numbers, dispatch, how the response ended).

The request body and the strict event types are in :mod:`tui.stream.responses_types`
(``build_responses_body`` and ``normalize_incomplete`` are re-exported here), the lenient
reading of an odd event in :mod:`tui.stream.responses_lenient`, and the output state with
the comparison of the final objects against the deltas in
:mod:`tui.stream.responses_output` (the adapter's base class).

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
  (:func:`tui.stream.responses_lenient.read_event`), as in the chat adapter.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from tui.stream.adapter import (
    INT64_MAX,
    Lenient,
    Outcome,
    Unreadable,
    counts_ok,
    decode_loose,
    error_outcome,
    protocol_outcome,
)
from tui.stream.construct import raw_event, reasoning_delta, text_delta
from tui.stream.events import RawEvent, ResponseInfo, RunEvent, RunStatus, Usage
from tui.stream.responses_lenient import USAGE_FIELDS, read_event
from tui.stream.responses_output import ResponseOutput
from tui.stream.responses_types import (
    Event,
    ResponseBody,
    build_responses_body,
    decode_event,
    normalize_incomplete,
)
from tui.stream.sse import SSEEvent

__all__ = ["ResponsesAdapter", "build_responses_body", "normalize_incomplete"]

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


class ResponsesAdapter(ResponseOutput):
    """Responses events -> normalized events (one adapter per run; see :class:`Adapter`)."""

    __slots__ = (
        "_attempt",
        "_attempt_seq",
        "_dispatch",
        "_seq_trusted",
        "background",
        "count",
        "last_seq",
        "outcome",
        "response_id",
    )

    def __init__(self) -> None:
        super().__init__()  # the output state, the notices, content_seen, tool_calls_seen
        self._attempt = 1
        self.count = 0
        """Events handled in the current attempt (1-based numbers in messages)."""
        self.outcome: Outcome | None = None
        self.last_seq: int | None = None
        """The last ``sequence_number`` delivered (the resume cursor); None before one, and
        for the rest of the run once the numbering proved unusable (repeats, goes back)."""
        self._attempt_seq: int | None = None
        self._seq_trusted = True
        self.response_id: str | None = None
        self.background = False
        """The server confirmed (or the request asked for) a background response."""
        self._dispatch: dict[str, Callable[[Event, float, list[RunEvent]], None]] = {
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
            ev: Event | None = decode_event(data)
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
    ) -> Event | None:
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
        ev = read_event(value, kind, reader)
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
    def _created(self, ev: Event, t: float, out: list[RunEvent]) -> None:
        resp = ev.response
        if resp is None:
            return
        if resp.background:
            self.background = True
        if resp.id is not None and resp.id != self.response_id:
            self.response_id = resp.id
            previous = resp.previous_response_id
            named = previous is not msgspec.UNSET
            continues = previous if isinstance(previous, str) else None
            out.append(ResponseInfo(t, resp.id, resp.model, continues, named))

    def _usage(self, resp: ResponseBody, t: float, out: list[RunEvent]) -> None:
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
            counts = self._notices.counts(counts, USAGE_FIELDS, "response.usage.", t, out)
        out.append(Usage(t, *counts))

    def _terminal(self, ev: Event, t: float, out: list[RunEvent]) -> None:
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

    def _error(self, ev: Event, t: float, out: list[RunEvent]) -> None:
        err = ev.error
        if err is not None:  # nested, as OpenAI sends it
            self.outcome = error_outcome(err.message, err.code, err.type, where="(error event)")
        else:  # flat, as documented
            self.outcome = error_outcome(ev.message, ev.code, None, where="(error event)")

    def eof_outcome(self, pending: bytes | None) -> Outcome | None:
        """Responses has no ``[DONE]``: a clean EOF before a terminal event is truncation."""
        return None
