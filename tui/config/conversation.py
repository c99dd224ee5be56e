"""The conversation keys of a session's schema: ``turns`` (a scripted conversation) and
``messages`` (the history seeded before turn 1), with the checks OpenAI's APIs would make of
the seeded messages' shapes (:func:`message_problems`, run by the loader with the other
conflicts of a session)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeAlias

from tui.config.validate import Hint, Invalid, not_blank

__all__ = ["Message", "MessageRole", "SeedToolCall", "message_problems", "prompts"]


def prompts(key: str, value: tuple[str, ...]) -> tuple[str, ...]:
    """Rule: at least one prompt, none of them empty."""
    if not value:
        raise Invalid(f"{key} must list at least one prompt (leave it out for a one-turn session)")
    blank = [n for n, text in enumerate(value, 1) if not text.strip()]
    if blank:
        raise Invalid(f"{key}: turn {blank[0]} is empty")
    return value


MessageRole: TypeAlias = Literal["system", "developer", "user", "assistant", "tool"]
"""The roles of a seeded message (OpenAI's Chat Completions roles)."""


@dataclass(frozen=True, slots=True)
class SeedToolCall:
    """A tool call of a seeded assistant message (Chat's ``tool_calls`` item, flattened)."""

    id: Annotated[str, not_blank, Hint("the call's id, which a tool message answers")]
    """The call's id; a later ``{ role = "tool", tool_call_id = ... }`` message answers it."""
    name: Annotated[str, not_blank, Hint("the function's name")]
    """The function called."""
    arguments: str = "{}"
    """The call's arguments, as the JSON text the model would have sent."""


@dataclass(frozen=True, slots=True)
class Message:
    """One seeded message of a conversation (``messages``), sent before turn 1."""

    role: Annotated[MessageRole, Hint('"system", "developer", "user", "assistant" or "tool"')]
    """Who says it: ``system``, ``developer``, ``user``, ``assistant`` or ``tool``."""
    content: str | None = None
    """What is said (an assistant message with ``tool_calls`` may leave it out)."""
    tool_call_id: Annotated[str | None, not_blank] = None
    """``tool`` messages: the id of the assistant's tool call this is the output of."""
    tool_calls: tuple[SeedToolCall, ...] = ()
    """``assistant`` messages: the tool calls it made (each answered by a ``tool`` message)."""

    def as_chat(self) -> dict[str, Any]:
        """The message as Chat Completions takes it (``{"role": ..., "content": ...}``)."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.tool_calls:
            out["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in self.tool_calls
            ]
        return out


def message_problems(messages: tuple[Message, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    """(key path, message) for each seeded message whose shape OpenAI's APIs refuse: a
    message without content, a tool result without the call it answers, a tool call left
    unanswered before turn 1."""
    open_calls: dict[str, int] = {}
    """Unanswered tool calls: id -> the number of the message that made them."""
    for n, message in enumerate(messages, 1):
        at = ("messages", str(n))
        where = f"messages.{n}"
        if message.role != "tool" and open_calls:
            yield _unanswered(open_calls)
            open_calls.clear()
        if message.tool_calls and message.role != "assistant":
            yield (*at, "tool_calls"), f"{where}: only an assistant message has tool_calls"
        if message.tool_call_id is not None and message.role != "tool":
            yield (*at, "tool_call_id"), f"{where}: only a tool message has a tool_call_id"
        if message.content is None and not (message.role == "assistant" and message.tool_calls):
            yield (*at, "content"), f"{where} needs content"
        if message.role == "assistant":
            open_calls.update((c.id, n) for c in message.tool_calls)
        elif message.role == "tool":
            if message.tool_call_id is None:
                yield (
                    (*at, "tool_call_id"),
                    f"{where} needs tool_call_id (the id of the assistant tool call it answers)",
                )
            elif open_calls.pop(message.tool_call_id, None) is None:
                yield (
                    (*at, "tool_call_id"),
                    f"{where}: no earlier assistant message made the tool call "
                    f"{message.tool_call_id!r} (or it was answered already)",
                )
    if open_calls:
        yield _unanswered(open_calls)


def _unanswered(open_calls: dict[str, int]) -> tuple[tuple[str, ...], str]:
    """The problem of the first tool call that no tool message answered."""
    call, made = next(iter(open_calls.items()))
    return (
        ("messages", str(made), "tool_calls"),
        f"messages.{made}: the tool call {call!r} is not answered: add a "
        f'{{ role = "tool", tool_call_id = "{call}", content = "..." }} message after it',
    )
