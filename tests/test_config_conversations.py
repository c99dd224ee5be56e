"""The conversation keys of a session: ``history``, ``turns`` (a scripted conversation,
instead of ``prompt``) and ``messages`` (seeded history), checked like every key, each
problem with its file, line, session and key."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tui.config import ConfigError, ConfigProblem, SessionConfig, example_config_path, load_config
from tui.config.conversation import Message, SeedToolCall
from tui.config.overlay import check_session, session_table


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sessions.toml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    return info.value.problems


def only(problems: list[ConfigProblem], key: str, session: str | None = None) -> ConfigProblem:
    found = [p for p in problems if p.key == key and (session is None or p.session == session)]
    assert len(found) == 1, (key, problems)
    return found[0]


def test_a_scripted_conversation_with_seeded_messages(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [defaults]
        history = "client"

        [[sessions]]
        name = "dialogue"
        model = "sim"
        turns = ["Name a river.", "How long is it?"]
        messages = [
          { role = "system", content = "Be brief." },
          { role = "user", content = "Weather in Seoul?" },
          { role = "assistant", tool_calls = [
            { id = "c1", name = "weather", arguments = '{"city": "Seoul"}' },
          ] },
          { role = "tool", tool_call_id = "c1", content = "Sunny." },
          { role = "assistant", content = "It is sunny." },
        ]

        [[sessions]]
        name = "plain"
        model = "sim"
        prompt = "Hi."
        history = "server"
        """,
    )
    dialogue, plain = load_config(path, environ={}).sessions
    assert dialogue.turns == ("Name a river.", "How long is it?") and dialogue.prompt == ""
    assert dialogue.script == dialogue.turns and dialogue.history == "client"
    assert dialogue.messages[2] == Message(
        role="assistant", tool_calls=(SeedToolCall("c1", "weather", '{"city": "Seoul"}'),)
    )
    assert [m.as_chat() for m in dialogue.messages[2:4]] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Seoul"}'},
                }
            ],
        },
        {"role": "tool", "content": "Sunny.", "tool_call_id": "c1"},
    ]
    assert plain.script == ("Hi.",) and plain.turns == () and plain.history == "server"
    assert plain.messages == () and plain.server_keeps


def test_a_sessions_own_prompt_or_turns_replaces_the_other_of_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [defaults]
        model = "sim"
        turns = ["one", "two"]

        [[sessions]]
        name = "scripted"

        [[sessions]]
        name = "single"
        prompt = "just this"
        """,
    )
    scripted, single = load_config(path, environ={}).sessions
    assert scripted.script == ("one", "two")
    assert single.script == ("just this",) and single.turns == ()
    path = write(
        tmp_path,
        """
        [defaults]
        model = "sim"
        prompt = "the default"

        [[sessions]]
        name = "scripted"
        turns = ["one"]
        """,
    )
    (scripted,) = load_config(path, environ={}).sessions
    assert scripted.script == ("one",) and scripted.prompt == ""


def test_prompt_and_turns_in_one_table_or_neither_are_problems(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[sessions]]
        name = "both"
        model = "sim"
        prompt = "p"
        turns = ["a", "b"]

        [[sessions]]
        name = "neither"
        model = "sim"

        [[sessions]]
        name = "empty"
        model = "sim"
        turns = []

        [[sessions]]
        name = "blank"
        model = "sim"
        turns = ["a", "  "]

        [[sessions]]
        name = "not strings"
        model = "sim"
        turns = ["a", 2]
        """,
    )
    problems = problems_of(path)
    both = only(problems, "turns", "both")
    assert both.line == 5 and "give prompt for one turn, or turns" in both.message
    neither = only(problems, "prompt", "neither")
    assert neither.line == 7 and "missing required key 'prompt' (or turns" in neither.message
    assert "at least one prompt" in only(problems, "turns", "empty").message
    assert only(problems, "turns", "blank").message == "turns: turn 2 is empty"
    assert "item 2 is not a string" in only(problems, "turns", "not strings").message


def test_history_is_one_of_three_and_server_needs_a_server_that_keeps(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[sessions]]
        name = "typo"
        model = "sim"
        prompt = "p"
        history = "servr"

        [[sessions]]
        name = "chat"
        api = "chat"
        model = "sim"
        prompt = "p"
        history = "server"

        [[sessions]]
        name = "kept nothing"
        model = "sim"
        prompt = "p"
        history = "server"
        params = { store = false }

        [[sessions]]
        name = "fine"
        model = "sim"
        prompt = "p"
        history = "auto"
        params = { store = false }
        """,
    )
    problems = problems_of(path)
    assert {p.session for p in problems} == {"typo", "chat", "kept nothing"}
    typo = only(problems, "history", "typo")
    assert typo.line == 5 and 'one of "auto" | "server" | "client"' in typo.message
    assert 'needs api = "responses"' in only(problems, "history", "chat").message
    kept_nothing = only(problems, "history", "kept nothing")
    assert kept_nothing.line == 18 and "params.store = false" in kept_nothing.message


def test_every_message_shape_problem_names_the_message_and_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[sessions]]
        name = "shapes"
        model = "sim"
        prompt = "p"
        messages = [
          { role = "bot", content = "hi" },
          { content = "who am I" },
          { role = "user", content = "x", extra = 1 },
          "just text",
        ]

        [[sessions]]
        name = "tools"
        model = "sim"
        prompt = "p"
        messages = [
          { role = "user" },
          { role = "tool", content = "out" },
          { role = "tool", tool_call_id = "nope", content = "out" },
          { role = "assistant", tool_calls = [{ id = "c1", name = "f" }] },
          { role = "user", content = "next", tool_call_id = "c1" },
          { role = "system", content = "s", tool_calls = [{ name = "f" }] },
        ]

        [[sessions]]
        name = "not an array"
        model = "sim"
        prompt = "p"
        messages = { role = "user", content = "x" }
        """,
    )
    problems = problems_of(path)
    shapes = [p for p in problems if p.session == "shapes"]
    # an item that is not a table stops the check of that array (one problem, at its key)
    assert [(p.key, p.line) for p in shapes] == [("messages", 5)]
    assert "array of tables (item 4 is a string)" in shapes[0].message
    path.write_text(path.read_text().replace('  "just text",\n', ""), encoding="utf-8")
    problems = problems_of(path)
    by_key = {p.key: p for p in problems if p.session == "shapes"}
    assert set(by_key) == {"messages.1.role", "messages.2.role", "messages.3.extra"}
    assert 'one of "system" | "developer" | "user" | "assistant" | "tool"' in (
        by_key["messages.1.role"].message
    )
    assert "messages.2 needs role" in by_key["messages.2.role"].message
    assert "unknown key 'extra'" in by_key["messages.3.extra"].message
    assert all(p.line == 5 for p in by_key.values())  # the line of `messages`
    tools = {p.key: p.message for p in problems if p.session == "tools"}
    assert tools == {
        "messages.1.content": "messages.1 needs content",
        "messages.2.tool_call_id": (
            "messages.2 needs tool_call_id (the id of the assistant tool call it answers)"
        ),
        "messages.3.tool_call_id": (
            "messages.3: no earlier assistant message made the tool call 'nope' "
            "(or it was answered already)"
        ),
        "messages.4.tool_calls": (
            "messages.4: the tool call 'c1' is not answered: add a "
            '{ role = "tool", tool_call_id = "c1", content = "..." } message after it'
        ),
        "messages.5.tool_call_id": "messages.5: only a tool message has a tool_call_id",
        "messages.6.tool_calls.1.id": (
            "messages.6.tool_calls.1 needs id (the call's id, which a tool message answers)"
        ),
    }
    assert "must be an array of tables, got table" in only(problems, "messages").message


def test_the_examples_commented_conversation_loads_as_written(tmp_path: Path) -> None:
    text = example_config_path().read_text(encoding="utf-8")
    start = r"^# \[\[sessions\]\]\n# name = \"dialogue · chat\""
    block = re.search(start + r".*?\n\n", text, re.S | re.M)
    assert block is not None
    session_text = "".join(line[2:] + "\n" for line in block.group(0).splitlines())
    (session,) = load_config(write(tmp_path, session_text), environ={}).sessions
    assert len(session.turns) == 3 and [m.role for m in session.messages] == ["user", "assistant"]
    assert session.api == "chat"


def test_tokentops_own_file_keeps_the_conversation_keys() -> None:
    session = SessionConfig(
        name="own",
        model="sim",
        turns=("a", "b"),
        history="client",
        messages=(
            Message("assistant", tool_calls=(SeedToolCall("c1", "f"),)),
            Message("tool", "out", tool_call_id="c1"),
        ),
    )
    table = session_table(session)
    assert "prompt" not in table and table["turns"] == ["a", "b"]
    loaded, problems = check_session(table, environ={})
    assert problems == [] and loaded == session
