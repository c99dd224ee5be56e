"""Sessions file loading: every problem reported at once, the example file, a TOML round trip."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tui.config import (
    AlertRules,
    AppConfig,
    ConfigError,
    ConfigProblem,
    ReconnectPolicy,
    Repeat,
    SessionConfig,
    StoreConfig,
    UiConfig,
    default_config_path,
    example_config_path,
    load_config,
    load_default_config,
)

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "sessions.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=environ or {})
    assert info.value.path == path
    return info.value.problems


def find(
    problems: list[ConfigProblem], key: str, session: str | None = None, index: int | None = None
) -> ConfigProblem:
    """The one problem about ``key`` (of ``session`` / the session at ``index`` if given)."""
    matches = [
        p
        for p in problems
        if p.key == key
        and (session is None or p.session == session)
        and (index is None or p.index == index)
    ]
    assert len(matches) == 1, (key, session, problems)
    return matches[0]


def test_minimal_session_gets_every_default(tmp_path: Path) -> None:
    path = write(tmp_path, '[[sessions]]\nname = "a"\nmodel = "m"\nprompt = "p"\n')
    config = load_config(path, environ={})
    assert config.path == path
    assert config.sessions == (SessionConfig(name="a", model="m", prompt="p"),)
    session = config.sessions[0]
    assert session.base_url == "sim" and session.is_simulated
    assert session.api_key_env is None and session.api == "responses"
    assert session.reconnect == ReconnectPolicy()
    assert config.ui == UiConfig() and config.keymap == {}


def test_defaults_apply_and_tables_merge_key_by_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [defaults]
        base_url = "https://api.tokenlab.sh/v1/"
        api_key_env = "TOKENLAB_API_KEY"
        api = "chat"
        prompt = "shared prompt"
        params = { top_p = 0.9, seed = 1 }
        headers = { "X-Team" = "eval" }
        repeat = { every_s = 60 }
        [defaults.reconnect]
        max_retries = 2
        on_drop = "restart"

        [[sessions]]
        name = "one"
        model = "gpt-5"
        params = { seed = 7 }
        [sessions.reconnect]
        idle_timeout_s = 5

        [[sessions]]
        name = "two"
        model = "gpt-5-mini"
        prompt = "own prompt"
        api = "responses"
        background = true
        repeat = { every_s = 10, count = 3 }
        max_output_tokens = 100
        temperature = 1

        [ui]
        theme = "tokentop-dark"

        [keymap]
        cancel_run = "ctrl+x"
        """,
    )
    config = load_config(path, environ={"TOKENLAB_API_KEY": "sk-test"})
    one, two = config.sessions
    assert one.base_url == "https://api.tokenlab.sh/v1"  # trailing slash dropped
    assert one.api == "chat" and one.prompt == "shared prompt"
    assert one.params == {"top_p": 0.9, "seed": 7}
    assert one.headers == {"X-Team": "eval"}
    assert one.reconnect == ReconnectPolicy(max_retries=2, on_drop="restart", idle_timeout_s=5.0)
    assert one.repeat == Repeat(every_s=60.0, count=0)
    assert two.api == "responses" and two.background and two.prompt == "own prompt"
    assert two.repeat == Repeat(every_s=10.0, count=3)
    assert two.max_output_tokens == 100 and two.temperature == 1.0
    assert isinstance(two.temperature, float)
    assert config.ui.theme == "tokentop-dark"
    assert config.keymap == {"cancel_run": "ctrl+x"}
    assert config.session("two") is two
    assert not one.is_simulated


BROKEN = """
titel = "typo at the top"

[defaults]
base_url = "ftp://example.com/v1"
max_tokens = 10
name = "no"

[defaults.reconnect]
max_retries = -1

[[sessions]]
name = "alpha"
model = "m"
prompt = "p"
max_output_tokens = "400"
api = "chit"
temperature = -0.5

[[sessions]]
model = 3
background = true
api = "chat"
repeat = { count = 2 }

[[sessions]]
name = "alpha"
model = "m"
prompt = "p"
headers = { "X-N" = 1 }
params = "nope"

[[sessions]]
name = "remote"
model = "gpt-5"
prompt = "p"
base_url = "https://api.tokenlab.sh/v1"
api_key_env = "TOKENTOP_TEST_MISSING_KEY"
[sessions.reconnect]
on_drop = "never"
idle_timeout_s = 0
backoff_initial_s = 9
wat = 1

[ui]
them = "x"

[keymap]
quit = 5
"""


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, BROKEN)
    problems = problems_of(path)

    top = find(problems, "titel")
    assert top.line == 1 and top.session is None
    assert "unknown key 'titel'" in top.message

    bad_url = find(problems, "defaults.base_url")
    assert bad_url.line == 4 and "http(s)://" in bad_url.message and "sim" in bad_url.message
    typo = find(problems, "defaults.max_tokens")
    assert "did you mean 'max_output_tokens'?" in typo.message and typo.line == 5
    assert "unique name" in find(problems, "defaults.name").message
    retries = find(problems, "defaults.reconnect.max_retries")
    assert ">= 0" in retries.message and retries.line == 9

    wrong_type = find(problems, "max_output_tokens", "alpha")
    assert wrong_type.message == "max_output_tokens must be an integer, got string"
    assert wrong_type.line == 15
    assert 'one of "responses" | "chat"' in find(problems, "api", "alpha").message
    assert ">= 0" in find(problems, "temperature", "alpha").message

    # the unnamed session is "#2"
    unnamed = [p for p in problems if p.session is None and p.index == 2]
    keys = {p.key for p in unnamed}
    assert {"model", "name", "prompt", "background", "repeat.every_s"} <= keys
    assert "model must be a string, got integer" in find(problems, "model", index=2).message
    assert "missing required key 'name'" in find(problems, "name", index=2).message
    assert 'api = "responses"' in find(problems, "background", index=2).message

    duplicate = [p for p in problems if p.key == "name" and p.session == "alpha"]
    assert len(duplicate) == 1 and "duplicate name 'alpha'" in duplicate[0].message
    assert duplicate[0].index == 3 and duplicate[0].line == 26
    assert "values must be strings" in find(problems, "headers", "alpha").message
    assert "must be a table, got string" in find(problems, "params", "alpha").message

    env = find(problems, "api_key_env", "remote")
    assert "TOKENTOP_TEST_MISSING_KEY" in env.message and "not set" in env.message
    assert (
        'one of "resume" | "restart" | "fail"'
        in find(problems, "reconnect.on_drop", "remote").message
    )
    assert "> 0" in find(problems, "reconnect.idle_timeout_s", "remote").message
    assert "greater than" in find(problems, "reconnect.backoff_initial_s", "remote").message
    assert "unknown key 'wat'" in find(problems, "reconnect.wat", "remote").message

    assert "did you mean 'theme'?" in find(problems, "ui.them").message
    assert "must be a string, got integer" in find(problems, "keymap.quit").message

    # problems come in file order and the rendering names file, line, session and key
    lines = [p.line or 0 for p in problems]
    assert lines == sorted(lines)
    rendered = ConfigError(path, problems).render()
    assert rendered.splitlines()[0] == f"{path}: {len(problems)} problem(s):"
    assert f"{path}:15, session 'alpha', key 'max_output_tokens': " in rendered
    assert "session #2, key 'model'" in rendered


def test_missing_key_for_a_simulated_session_is_fine(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[sessions]]
        name = "s"
        model = "sim"
        prompt = "p"
        api_key_env = "TOKENTOP_TEST_NOT_SET"
        """,
    )
    assert load_config(path, environ={}).sessions[0].api_key_env == "TOKENTOP_TEST_NOT_SET"


def test_key_values_are_never_printed(tmp_path: Path) -> None:
    secret = "sk-live-0123456789abcdef"
    header_secret = "Bearer " + secret
    path = write(
        tmp_path,
        f"""
        [[sessions]]
        name = "leaky"
        model = "gpt-5"
        prompt = "p"
        base_url = "https://api.tokenlab.sh/v1"
        api_key_env = "{secret}"

        [[sessions]]
        name = "set"
        model = "gpt-5"
        prompt = "p"
        base_url = "https://user:{secret}@example.com/v1 nope"
        api_key_env = "SET_KEY"
        headers = {{ Authorization = "{header_secret}\\n" }}
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"SET_KEY": secret})
    rendered = info.value.render()
    assert secret not in rendered
    assert "NAME of an environment variable" in rendered
    assert "session 'set', key 'base_url'" in rendered
    assert "the value of Authorization contains a line break" in rendered


def test_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '[[sessions]]\nname = "a"\nmodel = \nprompt = "p"\n')
    (problem,) = problems_of(path)
    assert problem.line == 3 and problem.column == 9
    assert problem.message.startswith("TOML syntax error: ")
    assert f"{path}:3:9: TOML syntax error" in ConfigError(path, [problem]).render()


def test_unterminated_string_points_at_the_end(tmp_path: Path) -> None:
    path = write(tmp_path, '[[sessions]]\nname = "a\n')
    (problem,) = problems_of(path)
    assert problem.line is not None and problem.line >= 2


def test_missing_file_and_wrong_shapes(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    (problem,) = problems_of(missing)
    assert problem.message == "file not found"

    (empty,) = problems_of(write(tmp_path, "[ui]\n", "empty.toml"))
    assert empty.key == "sessions" and "no sessions" in empty.message

    (shape,) = problems_of(write(tmp_path, 'sessions = "x"\n', "shape.toml"))
    assert "[[sessions]]" in shape.message

    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    (unreadable,) = problems_of(binary)
    assert "cannot read" in unreadable.message


def test_every_bad_value_type(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[sessions]]
        name = "types"
        model = ""
        prompt = "p"
        system = 1
        temperature = "hot"
        background = "yes"
        max_output_tokens = 0
        repeat = { every_s = 0, count = -1, often = true }
        reconnect = { connect_timeout_s = -2, max_retries = 1.5 }
        headers = { "Bad Name" = "x" }
        """,
    )
    problems = problems_of(path)
    messages = {p.key: p.message for p in problems}
    assert messages["model"] == "model must not be empty"
    assert messages["system"] == "system must be a string, got integer"
    assert messages["temperature"] == "temperature must be a number, got string"
    assert messages["background"] == "background must be true or false, got string"
    assert messages["max_output_tokens"] == "max_output_tokens must be >= 1, got 0"
    assert messages["repeat.every_s"] == "repeat.every_s must be > 0, got 0"
    assert messages["repeat.count"] == "repeat.count must be >= 0, got -1"
    assert messages["repeat.often"].startswith("unknown key 'often'")
    assert messages["reconnect.connect_timeout_s"].endswith("got -2")
    assert messages["reconnect.max_retries"].endswith("must be an integer, got float")
    assert messages["headers"] == "headers: 'Bad Name' is not a valid header name"
    assert all(p.session == "types" for p in problems)


def test_example_file_loads_and_is_all_simulated() -> None:
    path = example_config_path()
    assert path.resolve() == (REPO / "sessions.example.toml").resolve()
    config = load_config(path, environ={})
    assert 4 <= len(config.sessions) <= 6
    assert all(s.is_simulated and s.api_key_env is None for s in config.sessions)
    assert {s.api for s in config.sessions} == {"responses", "chat"}
    models = {s.model for s in config.sessions}
    assert {"sim-think", "sim-tools", "sim-flaky"} <= models
    flaky = next(s for s in config.sessions if s.model == "sim-flaky")
    assert flaky.background and flaky.api == "responses"
    tools = next(s for s in config.sessions if s.model == "sim-tools")
    assert tools.params["tools"][0]["function"]["name"] == "get_weather"
    assert any(s.max_output_tokens for s in config.sessions)
    repeats = [s.repeat for s in config.sessions if s.repeat is not None]
    assert repeats and all(r.count > 0 for r in repeats)  # `tokentop run` of it ends


def test_example_documents_every_key() -> None:
    text = (REPO / "sessions.example.toml").read_text(encoding="utf-8")
    keys = [f.name for f in dataclasses.fields(SessionConfig)]
    for schema in (ReconnectPolicy, AlertRules, UiConfig, StoreConfig):
        keys += [f.name for f in dataclasses.fields(schema)]
    keys += ["every_s", "count", "theme", "keymap", "defaults"]
    for key in keys:
        assert key in text, key
    for server in ("api.tokenlab.sh/v1", "TOKENLAB_API_KEY", "api.openai.com", ":8000", ":11434"):
        assert server in text, server


def _changed(value: object, default: object) -> dict[str, Any]:
    """The fields of a dataclass ``value`` that differ from ``default``'s."""
    assert dataclasses.is_dataclass(value) and dataclasses.is_dataclass(default)
    return {
        f.name: getattr(value, f.name)
        for f in dataclasses.fields(value)
        if getattr(value, f.name) != getattr(default, f.name)
    }


def toml_of(config: AppConfig) -> str:
    """``config`` as a sessions file (tomli-w): every session written out in full (no
    ``[defaults]``), values equal to the built-in defaults left out."""
    sessions = []
    for session in config.sessions:
        table: dict[str, Any] = {
            k: dict(v) if isinstance(v, Mapping) else v
            for k, v in _changed(session, SessionConfig(name="", model="", prompt="")).items()
            if k not in ("repeat", "reconnect")
        }
        if session.repeat is not None:
            table["repeat"] = dataclasses.asdict(session.repeat)
        if reconnect := _changed(session.reconnect, ReconnectPolicy()):
            table["reconnect"] = reconnect
        sessions.append(table)
    document: dict[str, Any] = {"sessions": sessions}
    if config.ui.theme is not None:
        document["ui"] = {"theme": config.ui.theme}
    if config.keymap:
        document["keymap"] = dict(config.keymap)
    return str(tomli_w.dumps(document))


def test_toml_round_trip(tmp_path: Path) -> None:
    config = AppConfig(
        path=None,
        sessions=(
            SessionConfig(name="plain", model="sim", prompt="hi"),
            SessionConfig(
                name="full · 한국어",
                model="gpt-5",
                prompt='multi\nline "quoted"',
                base_url="https://api.tokenlab.sh/v1",
                api_key_env="TOKENLAB_API_KEY",
                api="chat",
                system="be brief",
                max_output_tokens=300,
                temperature=0.25,
                params={"top_p": 0.5, "tools": [{"type": "function", "function": {"name": "f"}}]},
                headers={"X-Team": "eval"},
                repeat=Repeat(every_s=30.0, count=2),
                reconnect=ReconnectPolicy(max_retries=1, on_drop="fail", idle_timeout_s=12.5),
            ),
            SessionConfig(name="bg", model="sim-flaky", prompt="p", background=True),
        ),
        ui=UiConfig(theme="tokentop-light"),
        keymap={"cancel_run": "ctrl+x"},
    )
    text = toml_of(config)
    assert "sk-" not in text
    path = tmp_path / "dumped.toml"
    path.write_text(text, encoding="utf-8")
    loaded = load_config(path, environ={"TOKENLAB_API_KEY": "x"})
    assert dataclasses.replace(loaded, path=None) == config

    example = load_config(example_config_path(), environ={})
    path.write_text(toml_of(example), encoding="utf-8")
    assert load_config(path, environ={}).sessions == example.sessions


def test_default_config_prefers_local_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_config_path(tmp_path) == example_config_path()
    user = tmp_path / "xdg" / "tokentop" / "sessions.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[[sessions]]\nname = "user"\nmodel = "sim"\nprompt = "p"\n')
    assert default_config_path(tmp_path) == user
    local = write(tmp_path, '[[sessions]]\nname = "local"\nmodel = "sim"\nprompt = "p"\n')
    assert default_config_path(tmp_path) == local
    assert load_default_config(cwd=tmp_path, environ={}).sessions[0].name == "local"


def test_config_imports_no_ui_and_paths_create_nothing(tmp_path: Path) -> None:
    code = (
        "import sys, tui.config, tui.paths, tui.headless\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')"
        " or m.startswith('tui.ui')]\n"
        "assert not bad, bad\n"
        "import os\n"
        "assert not os.path.exists(os.environ['XDG_DATA_HOME']), 'created at import'\n"
        "db = tui.paths.default_db_path()\n"
        "assert db.parent.is_dir() and db.name == 'tokentop.db', db\n"
        "os.environ['TOKENTOP_DB'] = os.path.join(os.environ['XDG_DATA_HOME'], 'x.db')\n"
        "assert str(tui.paths.default_db_path()).endswith('x.db')\n"
        "assert (tui.paths.shipped_themes_dir()).is_dir()\n"
        "assert tui.paths.user_themes_dir().parent.name == 'tokentop'\n"
    )
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    env.pop("TOKENTOP_DB", None)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO, timeout=30)


def test_stream_deadline_keys(tmp_path: Path) -> None:
    """first_token_timeout_s (default 300 s) and max_duration_s (default none): > 0 each."""
    base = '[[sessions]]\nname = "a"\nmodel = "m"\nprompt = "p"\n[sessions.reconnect]\n'
    policy = load_config(write(tmp_path, base), environ={}).sessions[0].reconnect
    assert policy.first_token_timeout_s == 300.0 and policy.max_duration_s is None
    path = write(tmp_path, base + "first_token_timeout_s = 30\nmax_duration_s = 600\n")
    policy = load_config(path, environ={}).sessions[0].reconnect
    assert policy.first_token_timeout_s == 30.0 and policy.max_duration_s == 600.0
    path = write(tmp_path, base + "first_token_timeout_s = 0\nmax_duration_s = -1\n")
    problems = problems_of(path)
    assert "> 0" in find(problems, "reconnect.first_token_timeout_s", "a").message
    assert "> 0" in find(problems, "reconnect.max_duration_s", "a").message
