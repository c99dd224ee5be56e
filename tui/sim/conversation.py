"""Conversations: what the history of a request says (which turn it is, what was asked
before), and the check of a Chat Completions ``messages`` list, as OpenAI checks it.

A turn is a user message: a request whose history holds three user messages answers turn 3.
Tool results continue the turn of the user message before them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tui.sim.errors import RequestError, empty_array, invalid_type, invalid_value, missing


@dataclass(frozen=True, slots=True)
class Conversation:
    """The parts of a request's history that shape the answer."""

    prompt: str
    """The latest user message's text (the answer is about it); "" when there is none."""
    turn: int
    """1-based: the number of user messages (at least 1)."""
    earlier: str
    """The user message before the latest one ("" on turn 1)."""
    tool_result: bool
    """A tool result follows the latest user message (the model answers it with text)."""


def conversation_of(user_texts: Sequence[str], tool_after_last_user: bool) -> Conversation:
    """The conversation of a history with these user messages, oldest first."""
    return Conversation(
        prompt=user_texts[-1] if user_texts else "",
        turn=max(1, len(user_texts)),
        earlier=user_texts[-2] if len(user_texts) > 1 else "",
        tool_result=tool_after_last_user,
    )


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the ``text`` of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


CHAT_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_CHAT_PARTS = {
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "system": ("text",),
    "developer": ("text",),
    "tool": ("text",),
    "function": ("text",),
}
_TEXT_FIELD = {"text": "text", "refusal": "refusal"}


def _check_parts(parts: list[Any], where: str, allowed: tuple[str, ...]) -> None:
    for j, part in enumerate(parts):
        at = f"{where}[{j}]"
        if not isinstance(part, dict):
            raise invalid_type(at, "an object", part)
        kind = part.get("type")
        if kind is None:
            raise missing(f"{at}.type")
        if kind not in allowed:
            raise invalid_value(f"{at}.type", kind, allowed)
        field = _TEXT_FIELD.get(kind)
        if field is not None and not isinstance(part.get(field), str):
            if field not in part:
                raise missing(f"{at}.{field}")
            raise invalid_type(f"{at}.{field}", "a string", part.get(field))


def _check_content(m: dict[str, Any], i: int, role: str, optional: bool) -> None:
    where = f"messages[{i}].content"
    if "content" not in m or (optional and m.get("content") is None):
        if optional:
            return
        raise missing(where)
    content = m["content"]
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise invalid_type(where, "one of a string or array of objects", content)
    _check_parts(content, where, _CHAT_PARTS[role])


def _check_tool_calls(calls: Any, i: int) -> list[str]:
    """The ids of an assistant message's ``tool_calls`` (checked)."""
    where = f"messages[{i}].tool_calls"
    if not isinstance(calls, list):
        raise invalid_type(where, "an array", calls)
    if not calls:
        raise empty_array(where)
    ids: list[str] = []
    for j, call in enumerate(calls):
        at = f"{where}[{j}]"
        if not isinstance(call, dict):
            raise invalid_type(at, "an object", call)
        for key in ("id", "type", "function"):
            if key not in call:
                raise missing(f"{at}.{key}")
        if not isinstance(call["id"], str):
            raise invalid_type(f"{at}.id", "a string", call["id"])
        if call["type"] != "function":
            raise invalid_value(f"{at}.type", call["type"], ("function",))
        fn = call["function"]
        if not isinstance(fn, dict):
            raise invalid_type(f"{at}.function", "an object", fn)
        for key in ("name", "arguments"):
            if key not in fn:
                raise missing(f"{at}.function.{key}")
            if not isinstance(fn[key], str):
                raise invalid_type(f"{at}.function.{key}", "a string", fn[key])
        ids.append(call["id"])
    return ids


def _unanswered(owner: int, pending: list[str]) -> RequestError:
    return RequestError(
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(pending),
        param=f"messages.[{owner}].role",
    )


def check_messages(messages: Any) -> Conversation:
    """Check a chat ``messages`` list as OpenAI does and digest it.

    Raises :class:`RequestError` naming the field (OpenAI's wording and ``param``, including
    its ``messages.[i].role`` spelling for the tool-call ordering errors): a message that is
    not an object, a missing or unknown role, content of the wrong type or with parts its
    role cannot have, ``tool_calls`` without an ``id`` / ``function.name`` /
    ``function.arguments``, a ``tool`` message that answers no preceding tool call, and
    tool calls left without a ``tool`` message.
    """
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array of objects", messages)
    if not messages:
        raise empty_array("messages")
    users: list[str] = []
    tool_after = False
    block: list[str] | None = None
    """The ids of the open assistant tool-call block (None when none is open)."""
    pending: list[str] = []
    owner = 0
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise invalid_type(f"messages[{i}]", "an object", m)
        if "role" not in m:
            raise missing(f"messages[{i}].role")
        role = m["role"]
        if role not in CHAT_ROLES:
            raise invalid_value(f"messages[{i}].role", role, CHAT_ROLES)
        if role == "tool":
            _check_content(m, i, role, optional=False)
            call_id = m.get("tool_call_id")
            if call_id is None:
                raise missing(f"messages[{i}].tool_call_id")
            if block is None:
                raise RequestError(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    param=f"messages.[{i}].role",
                )
            if call_id not in block:
                raise RequestError(
                    f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in "
                    "'tool_calls' of previous message.",
                    param=f"messages.[{i}].tool_call_id",
                )
            if call_id in pending:
                pending.remove(call_id)
            tool_after = True
            continue
        if pending:
            raise _unanswered(owner, pending)
        block = None
        if role == "assistant":
            calls = m.get("tool_calls")
            _check_content(m, i, role, optional=calls is not None or "function_call" in m)
            if calls is not None:
                block = _check_tool_calls(calls, i)
                pending, owner = list(dict.fromkeys(block)), i
        else:
            _check_content(m, i, role, optional=False)
        if role == "user":
            users.append(text_of(m["content"]))
            tool_after = False
    if pending:
        raise _unanswered(owner, pending)
    return conversation_of(users, tool_after)
