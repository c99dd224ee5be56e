"""Responses ``input``: a string or a list of items, checked as OpenAI checks them, and the
conversation a list of items (stored history first) holds.

Items: ``message`` (``role`` user / assistant / system / developer, ``content`` a string or
parts: ``input_text`` / ``input_image`` / ``input_file`` for the user, system and developer,
``output_text`` / ``refusal`` for the assistant; ``type`` may be left out when ``role`` is
given), ``function_call`` (``call_id``, ``name``, ``arguments``), ``function_call_output``
(``call_id``, ``output``) and ``reasoning`` (a previous answer's reasoning, passed back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tui.sim.conversation import Conversation, conversation_of, text_of
from tui.sim.errors import RequestError, invalid_type, invalid_value, missing

ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning")
ROLES = ("user", "assistant", "system", "developer")
_INPUT_PARTS = ("input_text", "input_image", "input_file")
_PARTS = {
    "user": _INPUT_PARTS,
    "system": _INPUT_PARTS,
    "developer": _INPUT_PARTS,
    "assistant": ("output_text", "refusal"),
}
_TEXT_FIELD = {"input_text": "text", "output_text": "text", "refusal": "refusal"}


def _need_str(item: Mapping[str, Any], key: str, where: str) -> None:
    if key not in item:
        raise missing(f"{where}.{key}")
    if not isinstance(item[key], str):
        raise invalid_type(f"{where}.{key}", "a string", item[key])


def _check_message(item: Mapping[str, Any], where: str) -> None:
    if "role" not in item:
        raise missing(f"{where}.role")
    role = item["role"]
    if role not in ROLES:
        raise invalid_value(f"{where}.role", role, ROLES)
    if "content" not in item:
        raise missing(f"{where}.content")
    content = item["content"]
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise invalid_type(f"{where}.content", "one of a string or array of objects", content)
    allowed = _PARTS[role]
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        if not isinstance(part, dict):
            raise invalid_type(at, "an object", part)
        if "type" not in part:
            raise missing(f"{at}.type")
        if part["type"] not in allowed:
            raise invalid_value(f"{at}.type", part["type"], allowed)
        field = _TEXT_FIELD.get(part["type"])
        if field is not None:
            _need_str(part, field, at)


def _check_item(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise invalid_type(where, "an object", item)
    kind = item.get("type", "message" if "role" in item else None)
    if kind is None:
        raise missing(f"{where}.type")
    if kind not in ITEM_TYPES:
        raise invalid_value(f"{where}.type", kind, ITEM_TYPES)
    if kind == "message":
        _check_message(item, where)
    elif kind == "function_call":
        for key in ("call_id", "name", "arguments"):
            _need_str(item, key, where)
    elif kind == "function_call_output":
        _need_str(item, "call_id", where)
        if "output" not in item:
            raise missing(f"{where}.output")
        if not isinstance(item["output"], str | list):
            raise invalid_type(f"{where}.output", "one of a string or array", item["output"])
    return item


def input_items(value: Any) -> list[dict[str, Any]]:
    """The checked items of a request's ``input`` (a string is one user message)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise invalid_type("input", "one of a string or array of input items", value)
    return [_check_item(item, f"input[{i}]") for i, item in enumerate(value)]


def items_conversation(items: Sequence[Mapping[str, Any]]) -> Conversation:
    """The conversation of a whole history (stored chain first, then this request's input).

    Raises OpenAI's 400s for a ``function_call_output`` that answers no function call before
    it, and for a function call that no output answers.
    """
    users: list[str] = []
    tool_after = False
    open_calls: dict[str, None] = {}
    answered: set[str] = set()
    for item in items:
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") == "user":
            users.append(text_of(item.get("content")))
            tool_after = False
        elif kind == "function_call":
            open_calls[str(item["call_id"])] = None
        elif kind == "function_call_output":
            call_id = str(item["call_id"])
            if call_id not in open_calls:
                raise RequestError(
                    f"No tool call found for function call output with call_id {call_id}.",
                    param="input",
                )
            answered.add(call_id)
            tool_after = True
    for call_id in open_calls:
        if call_id not in answered:
            raise RequestError(f"No tool output found for function call {call_id}.", param="input")
    return conversation_of(users, tool_after)
