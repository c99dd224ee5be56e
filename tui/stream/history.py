"""What a follow-up turn carries: the conversation so far, as each API takes it.

A :class:`Conversation` is the history before the turn being sent: the seeded messages (the
sessions file's ``messages``, few-shot) and the earlier turns, each with its prompt and what
the model answered (text and tool calls). The request bodies are built from it:

- Chat Completions gets the whole ``messages`` list: system, the seed, then per turn the user
  message (or, after a turn that ended in tool calls, one ``tool`` message per call) and the
  assistant message (its text and ``tool_calls``), then the new turn.
- Responses gets ``previous_response_id`` of the last turn when the conversation may use the
  server's state (:attr:`Conversation.mode`) and the server kept that response;
  ``input`` is then only the new turn. Otherwise ``input`` is the whole history as items:
  messages, ``function_call`` and ``function_call_output`` items. ``instructions`` (the
  session's system prompt) is sent with every turn: the server does not carry it over.

tokentop runs no tools: the prompt that follows a turn ending in tool calls is sent as those
calls' output (each call gets the same text), so a person can answer a tool call by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tui.stream.result import ToolCall
from tui.vocab import HistoryMode

__all__ = [
    "Conversation",
    "Turn",
    "chat_messages",
    "responses_input",
]


@dataclass(frozen=True, slots=True)
class Turn:
    """One finished turn: the prompt sent and what the model answered."""

    prompt: str
    answer: str
    tool_calls: tuple[ToolCall, ...] = ()
    response_id: str | None = None
    """The Responses server's id of the answer, when the server kept it (``store`` not false)."""


@dataclass(frozen=True, slots=True)
class Conversation:
    """The history a turn carries (see the module)."""

    messages: tuple[Mapping[str, Any], ...] = ()
    """Seeded messages (OpenAI's ``{"role": ..., "content": ...}`` shapes), before turn 1."""
    turns: tuple[Turn, ...] = ()
    mode: HistoryMode = "client"
    """Responses: ``server`` and ``auto`` continue from the last turn's
    ``previous_response_id`` when it has one (``auto`` falls back to the items when the
    server refuses it); ``client`` sends the items."""

    @property
    def previous_response_id(self) -> str | None:
        """The id the next Responses request continues from (None: send the items)."""
        if self.mode == "client" or not self.turns:
            return None
        return self.turns[-1].response_id

    def as_items(self) -> Conversation:
        """The same history, sent as items (after a server that kept nothing)."""
        return replace(self, mode="client")

    def answers_tools(self) -> tuple[ToolCall, ...]:
        """The tool calls the next prompt answers (the last turn's, if it ended in some)."""
        return self.turns[-1].tool_calls if self.turns else ()


def _call_id(call: ToolCall, turn: int) -> str:
    """A call's id, or a stable stand-in for a server that sent none (OpenAI's APIs need
    one to pair a call with its output)."""
    return call.call_id or f"call_{turn}_{call.index}"


def _chat_tool_calls(calls: Sequence[ToolCall], turn: int) -> list[dict[str, Any]]:
    return [
        {
            "id": _call_id(call, turn),
            "type": "function",
            "function": {"name": call.name or "", "arguments": call.arguments},
        }
        for call in calls
    ]


def _chat_prompt(prompt: str, calls: Sequence[ToolCall], turn: int) -> list[dict[str, Any]]:
    """The messages of a prompt: a user message, or the output of the previous turn's calls."""
    if not calls:
        return [{"role": "user", "content": prompt}]
    return [{"role": "tool", "tool_call_id": _call_id(c, turn), "content": prompt} for c in calls]


def chat_messages(system: str | None, history: Conversation | None, prompt: str) -> list[Any]:
    """The ``messages`` of a Chat Completions request that sends ``prompt`` after ``history``."""
    messages: list[Any] = []
    if system:
        messages.append({"role": "system", "content": system})
    calls: tuple[ToolCall, ...] = ()
    number = 0
    if history is not None:
        messages.extend(dict(m) for m in history.messages)
        for number, turn in enumerate(history.turns, 1):
            messages.extend(_chat_prompt(turn.prompt, calls, number - 1))
            assistant: dict[str, Any] = {"role": "assistant", "content": turn.answer or None}
            if turn.tool_calls:
                assistant["tool_calls"] = _chat_tool_calls(turn.tool_calls, number)
            messages.append(assistant)
            calls = turn.tool_calls
    messages.extend(_chat_prompt(prompt, calls, number))
    return messages


def _items_prompt(prompt: str, calls: Sequence[ToolCall], turn: int) -> list[dict[str, Any]]:
    if not calls:
        return [{"role": "user", "content": prompt}]
    return [
        {"type": "function_call_output", "call_id": _call_id(c, turn), "output": prompt}
        for c in calls
    ]


def _seed_items(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Seeded Chat-shaped messages as Responses items (tool calls and results included)."""
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "tool":
            output = message.get("content") or ""
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.get("tool_call_id") or "",
                    "output": output if isinstance(output, str) else str(output),
                }
            )
            continue
        content = message.get("content")
        if content:
            items.append({"role": role, "content": content})
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id") or "",
                    "name": function.get("name") or "",
                    "arguments": function.get("arguments") or "",
                }
            )
    return items


def responses_input(history: Conversation | None, prompt: str) -> tuple[Any, str | None]:
    """``(input, previous_response_id)`` of a Responses request that sends ``prompt`` after
    ``history``: a plain string for a first turn (the form every server takes), items
    otherwise."""
    if history is None or (not history.turns and not history.messages):
        return prompt, None
    calls = history.answers_tools()
    number = len(history.turns)
    previous = history.previous_response_id
    if previous is not None:
        if not calls:
            return prompt, previous
        return _items_prompt(prompt, calls, number), previous
    items = _seed_items(history.messages)
    before: tuple[ToolCall, ...] = ()
    for n, turn in enumerate(history.turns, 1):
        items.extend(_items_prompt(turn.prompt, before, n - 1))
        if turn.answer:
            items.append({"role": "assistant", "content": turn.answer})
        items.extend(
            {
                "type": "function_call",
                "call_id": _call_id(call, n),
                "name": call.name or "",
                "arguments": call.arguments,
            }
            for call in turn.tool_calls
        )
        before = turn.tool_calls
    items.extend(_items_prompt(prompt, calls, number))
    return items, None
