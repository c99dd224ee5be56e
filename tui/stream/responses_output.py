"""What the output of one Responses stream said so far, and what the final objects add.

:class:`ResponseOutput` is the part of :class:`tui.stream.responses.ResponsesAdapter` that
keeps the output: the answer and reasoning text the deltas gave (as the fold has it), the
text the final objects gave (``output_text.done``, ``content_part.done``,
``output_item.done``, the terminal ``response.output``), and the function calls by index.
Its handlers take a strict :class:`tui.stream.responses_types.Event` and append run events
to ``out``; they never raise on odd content.

At the terminal event :meth:`ResponseOutput._reconcile` compares the final text with the
deltas: text that only the final objects carry is added (all of it when no deltas came);
when they show that deltas were lost from the middle, a ``Notice`` carries the final text,
which the fold takes; a final text that differs otherwise is only noted (the streamed one is
kept). Function calls and reasoning are completed the same way, by appending.
"""

from __future__ import annotations

from tui.stream.adapter import INDEX_MAX, NoticeLog
from tui.stream.events import ReasoningDelta, RunEvent, TextDelta, ToolCallDelta
from tui.stream.responses_types import Event, Item

__all__ = ["ResponseOutput"]


class _Call:
    """What the stream said so far about one function call."""

    __slots__ = ("arguments", "call_id", "name")

    def __init__(self, arguments: str, name: str | None, call_id: str | None) -> None:
        self.arguments = [arguments] if arguments else []
        self.name = name
        self.call_id = call_id


class ResponseOutput:
    """The output state of one response and the handlers of the events that build it (a
    base of the adapter: the adapter's hot path reads these slots directly)."""

    __slots__ = (
        "_call_at",
        "_calls",
        "_final",
        "_final_reasoning",
        "_notices",
        "_reasoned",
        "_streamed",
        "_tool_last",
        "content_seen",
        "tool_calls_seen",
    )

    def __init__(self) -> None:
        self.content_seen = False
        self.tool_calls_seen = False
        self._notices = NoticeLog()
        self._forget_output()

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

    def _index(self, ev: Event) -> int:
        index = ev.output_index
        if index is not None and 0 <= index <= INDEX_MAX:
            return index
        return self._tool_last if self._tool_last is not None else 0

    def _item_added(self, ev: Event, t: float, out: list[RunEvent]) -> None:
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

    def _arguments(self, ev: Event, t: float, out: list[RunEvent]) -> None:
        if ev.delta:
            self.content_seen = self.tool_calls_seen = True
            index = self._index(ev)
            call = self._calls.get(index)
            if call is None:
                self._calls[index] = _Call(ev.delta, None, None)
            else:
                call.arguments.append(ev.delta)
            out.append(ToolCallDelta(t, index, ev.delta))

    def _arguments_done(self, ev: Event, t: float, out: list[RunEvent]) -> None:
        self._call(self._index(ev), ev.arguments, ev.name, None, t, out, final=True)

    def _refusal(self, ev: Event, t: float, out: list[RunEvent]) -> None:
        if ev.delta:
            self.content_seen = True
            self._streamed.append(ev.delta)
            out.append(TextDelta(t, ev.delta))

    def _text_done(self, ev: Event, t: float, out: list[RunEvent]) -> None:
        if ev.text is not None:
            self._final.setdefault("done", []).append(ev.text)

    def _refusal_done(self, ev: Event, t: float, out: list[RunEvent]) -> None:
        if ev.refusal is not None:
            self._final.setdefault("done", []).append(ev.refusal)

    def _part_done(self, ev: Event, t: float, out: list[RunEvent]) -> None:
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

    def _reasoning_done(self, ev: Event, t: float, out: list[RunEvent]) -> None:
        if ev.text is not None:
            self._final_reasoning.setdefault("done", []).append(ev.text)

    def _reasoning_part_done(self, ev: Event, t: float, out: list[RunEvent]) -> None:
        if ev.part is not None and ev.part.text is not None:
            self._final_reasoning.setdefault("summary part", []).append(ev.part.text)

    def _item_done(self, ev: Event, t: float, out: list[RunEvent]) -> None:
        if ev.item is not None:
            self._final_item(ev.item, self._index(ev), "item", t, out)

    def _final_item(
        self, item: Item, index: int, level: str, t: float, out: list[RunEvent]
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
