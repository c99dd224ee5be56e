"""Line numbers of keys (tui.config.locate): strings, quoted and dotted keys, arrays of tables,
inline tables; and the lines the loader reports with them."""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path

import pytest

from tui.config import ConfigError, ConfigProblem, load_config
from tui.config.locate import KeyLines


def lines_of(text: str) -> KeyLines:
    text = textwrap.dedent(text).lstrip("\n")
    tomllib.loads(text)  # the scanner is only ever given valid TOML
    return KeyLines(text)


def problems_of(tmp_path: Path, text: str) -> list[ConfigProblem]:
    path = tmp_path / "sessions.toml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    return info.value.problems


def test_keys_inside_multiline_strings_are_not_keys() -> None:
    lines = lines_of(
        '''
        [[sessions]]
        prompt = """
        model = "in the prompt"
        [[sessions]]
        \\""" still inside
        """
        system = \'\'\'
        model = 1
        [ui]
        \'\'\'
        model = "m"
        [[sessions]]
        name = "second"
        '''
    )
    assert lines.line(("sessions", 1, "prompt")) == 2
    assert lines.line(("sessions", 1, "system")) == 7
    assert lines.line(("sessions", 1, "model")) == 11
    # the header inside the string is not one: the second session starts at line 12
    assert lines.line(("sessions", 2)) == 12
    assert lines.line(("sessions", 2, "name")) == 13
    assert lines.line(("ui",)) is None


def test_quotes_next_to_a_closing_delimiter() -> None:
    lines = lines_of(
        """
        a = \"\"\"ends with two quotes\"\"\"\"\"
        b = '''one quote'''' # comment
        c = "say \\"d = 1\\" # not a comment"
        'e' = 'f # g'
        h = 1
        """
    )
    assert [lines.line((key,)) for key in "abceh"] == [1, 2, 3, 4, 5]
    assert lines.line(("d",)) is None and lines.line(("g",)) is None


def test_quoted_and_dotted_keys() -> None:
    lines = lines_of(
        """
        [[sessions]]
        "name" = "a"
        'model' = "m"
        reconnect.max_retries = 1
        reconnect . "on_drop" = "fail"
        "X-\\u0041" = 1
        "dotted.name" = 2
        [[ sessions ]]
        [ sessions . 'reconnect' ]
        idle_timeout_s = 3
        """
    )
    assert lines.line(("sessions", 1, "name")) == 2
    assert lines.line(("sessions", 1, "model")) == 3
    assert lines.line(("sessions", 1, "reconnect")) == 4  # first implied by a dotted key
    assert lines.line(("sessions", 1, "reconnect", "max_retries")) == 4
    assert lines.line(("sessions", 1, "reconnect", "on_drop")) == 5
    assert lines.line(("sessions", 1, "X-A")) == 6  # escapes in quoted keys are decoded
    assert lines.line(("sessions", 1, "dotted.name")) == 7
    assert lines.line(("sessions", 2, "reconnect")) == 9
    assert lines.line(("sessions", 2, "reconnect", "idle_timeout_s")) == 10


def test_arrays_of_tables_and_inline_tables() -> None:
    lines = lines_of(
        """
        [[sessions]]
        name = "a"
        [sessions.reconnect]
        max_retries = 1
        [[sessions]]
        name = "b"
        repeat = { every_s = 1, count = 2 }
        params = { tools = [
          { type = "function" },
        ], seed = 3 }
        [[sessions.notes]]
        text = "x"
        [[sessions.notes]]
        text = "y"
        """
    )
    assert lines.line(("sessions", 1)) == 1
    assert lines.line(("sessions", 1, "reconnect", "max_retries")) == 4
    assert lines.line(("sessions", 2)) == 5
    assert lines.line(("sessions", 2, "repeat", "count")) == 7
    assert lines.line(("sessions", 2, "params", "tools", 1, "type")) == 9
    assert lines.line(("sessions", 2, "params", "seed")) == 10
    assert lines.line(("sessions", 2, "notes", 2, "text")) == 14
    # a key that is not written falls back to its nearest written parent
    assert lines.line(("sessions", 2, "repeat", "every_s", "x")) == 7
    assert lines.line(("sessions", 2, "prompt")) == 5


def test_inline_array_of_sessions() -> None:
    lines = lines_of(
        """
        sessions = [
          { name = "a" },  # a comment, then a blank line

          { name = "b", reconnect = { max_retries = 1 } },
        ]
        """
    )
    assert lines.line(("sessions", 1, "name")) == 2
    assert lines.line(("sessions", 2)) == 4
    assert lines.line(("sessions", 2, "reconnect", "max_retries")) == 4


def test_scan_ends_on_text_that_is_not_toml() -> None:
    for text in ('a = "unterminated\nb = 1\n', "[[x\n= =\n{", 'p = """never closed\n', "k = [1, {"):
        KeyLines(text)  # no exception, no endless loop
    assert KeyLines('a = "unterminated\nb = 1\n').line(("b",)) == 2


def test_loader_reports_the_line_of_the_real_key(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        '''
        [[sessions]]
        name = "a"
        prompt = """
        model = 3
        temperature = "hot"
        """
        "model" = 3
        'temperature' = "hot"
        reconnect . "max_retries" = -1

        [[sessions]]
        name = "b"
        model = "m"
        prompt = \'\'\'
        [[sessions]]
        \'\'\'
        [sessions.reconnect]
        wat = 1
        ''',
    )
    where = {(p.session, p.key): p.line for p in problems}
    assert where == {
        ("a", "model"): 7,
        ("a", "temperature"): 8,
        ("a", "reconnect.max_retries"): 9,
        ("b", "reconnect.wat"): 18,
    }


def test_loader_lines_in_an_inline_array_of_sessions(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """
        sessions = [
          { name = "x", model = 3, prompt = "p" },
          { name = "y", model = "m", prompt = "p", reconnect = { max_retries = -1 } },
          { model = "m", prompt = "p" },
        ]
        """,
    )
    where = {(p.index, p.key): p.line for p in problems}
    assert where == {(1, "model"): 2, (2, "reconnect.max_retries"): 3, (3, "name"): 4}


def test_every_key_of_the_example_file_has_its_own_line() -> None:
    from tui.config import example_config_path

    text = example_config_path().read_text(encoding="utf-8")
    rows = text.splitlines()
    lines = KeyLines(text)

    def names(line: int | None) -> str:
        """What a line names: the part before ``=`` and before any comment."""
        assert line is not None
        return rows[line - 1].split("#")[0].split("=")[0]

    data = tomllib.loads(text)
    for index, session in enumerate(data["sessions"], start=1):
        for key in session:
            assert key in names(lines.line(("sessions", index, key))), (index, key)
    for table in ("defaults", "ui", "keymap"):
        for key in data[table]:
            assert key in names(lines.line((table, key))), (table, key)
