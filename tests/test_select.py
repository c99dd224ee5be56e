"""``--only``: sessions chosen as people type their names, and only the chosen ones need
their API key variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.config import ConfigError, example_config_path, load_config
from tui.config.select import chosen, matching
from tui.headless import select_sessions

NAMES = ["quick · chat", "reasoning", "tool call · chat", "Capped · length", "flaky · resumes"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("reasoning", ["reasoning"]),  # the exact name
        ("REASONING", ["reasoning"]),  # in any case
        ("quick", ["quick · chat"]),  # part of a name with a middle dot
        ("chat", ["quick · chat", "tool call · chat"]),  # every name that contains it
        ("capped · LENGTH", ["Capped · length"]),
        ("*chat", ["quick · chat", "tool call · chat"]),  # a glob, in any case
        ("?eason*", ["reasoning"]),
        ("nothing", []),
        ("*zz*", []),
    ],
)
def test_matching(pattern: str, expected: list[str]) -> None:
    assert matching(NAMES, pattern) == expected


def test_an_exact_name_wins_over_the_names_that_contain_it() -> None:
    assert matching(["chat", "quick · chat"], "chat") == ["chat"]


def test_chosen_keeps_file_order_and_lists_what_matched_nothing() -> None:
    assert chosen(NAMES, ["flaky", "quick", "nope"]) == (
        ["quick · chat", "flaky · resumes"],
        ["nope"],
    )


def test_only_quick_runs_the_examples_quick_session() -> None:
    config = load_config(example_config_path(), environ={})
    assert [s.name for s in select_sessions(config, ["quick"])] == ["quick · chat"]
    with pytest.raises(KeyError) as caught:
        select_sessions(config, ["quik"])
    message = str(caught.value)
    assert "no session matches 'quik'" in message and "'quick · chat'" in message


def test_a_missing_key_blocks_only_the_sessions_that_will_run(tmp_path: Path) -> None:
    path = tmp_path / "sessions.toml"
    path.write_text(
        """
[[sessions]]
name = "local sim"
model = "sim"
prompt = "p"

[[sessions]]
name = "tokenlab gpt"
base_url = "https://api.tokenlab.sh/v1"
api_key_env = "TOKENTOP_TEST_UNSET_KEY"
model = "gpt-5"
prompt = "p"
""",
        encoding="utf-8",
    )
    # every session would run: the unset variable is an error, with its line
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    (problem,) = caught.value.problems
    assert problem.session == "tokenlab gpt" and problem.key == "api_key_env"
    assert problem.line == 10
    # --only chooses the simulator session: the other one's key is not needed
    config = load_config(path, environ={}, only=["local"])
    assert [s.name for s in select_sessions(config, ["local"])] == ["local sim"]
    # ... but choosing the real one still reports it
    with pytest.raises(ConfigError):
        load_config(path, environ={}, only=["gpt"])
