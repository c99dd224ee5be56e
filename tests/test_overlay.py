"""tokentop's own file (local.toml): written atomically with tomli-w, merged after the sessions
file by the loader's own checks, never fatal when broken, never the user's file."""

from __future__ import annotations

import dataclasses
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from tui import paths
from tui.config import (
    AlertRules,
    ConfigError,
    ReconnectPolicy,
    Repeat,
    SessionConfig,
    example_config_path,
    load_config,
)
from tui.config.overlay import (
    LocalFile,
    LocalFileError,
    check_session,
    key_like,
    load_with_local,
    session_table,
)

SESSIONS = """\
# the user's file: comments and layout are theirs
[ui]
theme = "tokentop-light"
alert_bell = false

[[sessions]]
name = "mine"          # a comment
model = "sim"
prompt = "hello"
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def sessions_file(tmp_path: Path) -> Path:
    return write(tmp_path / "sessions.toml", SESSIONS)


@pytest.fixture
def local(tmp_path: Path) -> Path:
    return tmp_path / "config" / "tokentop" / "local.toml"


def added(name: str, **changes: Any) -> SessionConfig:
    return dataclasses.replace(
        SessionConfig(name=name, model="sim-fast", prompt="Say hi."), **changes
    )


def test_sessions_and_ui_are_merged_after_the_file(sessions_file: Path, local: Path) -> None:
    before = sessions_file.read_bytes()
    own = LocalFile(local, sessions_file=sessions_file)
    own.add_session(added("extra"))
    own.add_session(added("extra 2", api="chat", model="sim-think"))
    own.set_ui(theme="nord")

    loaded = load_with_local(sessions_file, local, environ={})
    assert [s.name for s in loaded.config.sessions] == ["mine", "extra", "extra 2"]
    assert loaded.own == {"extra", "extra 2"}
    assert loaded.local_error is None
    assert loaded.config.session("extra 2") == added("extra 2", api="chat", model="sim-think")
    # the own file's [ui] keys override the file's; the others stay the file's
    assert (loaded.config.ui.theme, loaded.config.ui.alert_bell) == ("nord", False)
    assert sessions_file.read_bytes() == before  # the user's file is never written
    assert local.read_text(encoding="utf-8").startswith("# tokentop's own settings")
    assert sorted(p.name for p in local.parent.iterdir()) == ["local.toml", "local.toml.lock"]


def test_no_local_file_or_none_merges_nothing(sessions_file: Path, local: Path) -> None:
    alone = load_config(sessions_file, environ={})
    for where in (None, local):
        loaded = load_with_local(sessions_file, where, environ={})
        assert (loaded.config, loaded.own, loaded.local_error) == (alone, frozenset(), None)
    assert not local.parent.exists()  # reading creates nothing


def test_every_session_round_trips_through_the_file(sessions_file: Path, local: Path) -> None:
    example = load_config(example_config_path(), environ={})
    full = added(
        "full · 한국어",
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
        alerts=AlertRules(ttft_ms=800, on_alert=("notify-send", "tokentop")),
    )
    originals = [*example.sessions, full]
    own = LocalFile(local)
    for session in originals:
        own.add_session(dataclasses.replace(session, name=f"{session.name} (own)"))
    loaded = load_with_local(sessions_file, local, environ={"TOKENLAB_API_KEY": "x"})
    assert loaded.local_error is None
    for session in originals:
        back = loaded.config.session(f"{session.name} (own)")
        assert dataclasses.replace(back, name=session.name) == session
    assert session_table(SessionConfig(name="n", model="m", prompt="p")) == {
        "name": "n",
        "model": "m",
        "prompt": "p",
    }


def test_a_name_in_both_files_is_the_files_and_is_said(sessions_file: Path, local: Path) -> None:
    LocalFile(local).add_session(added("mine"))
    LocalFile(local).add_session(added("other"))
    loaded = load_with_local(sessions_file, local, environ={})
    assert loaded.config.session("mine").prompt == "hello"  # the sessions file's
    assert [s.name for s in loaded.config.sessions] == ["mine", "other"]
    assert loaded.own == {"other"}
    assert loaded.local_error is not None
    text = loaded.local_error.render()
    assert f"{local}:6, session 'mine', key 'name': {sessions_file} also has" in text


def test_a_broken_local_file_never_stops_tokentop(sessions_file: Path, local: Path) -> None:
    local.parent.mkdir(parents=True)
    write(local, '[[sessions]]\nname = "x"\nmodel = \n')
    loaded = load_with_local(sessions_file, local, environ={})
    assert [s.name for s in loaded.config.sessions] == ["mine"]
    assert loaded.local_error is not None
    assert loaded.local_error.problems[0].line == 3
    assert "TOML syntax error" in loaded.local_error.render()
    # and it is never overwritten: what is in it stays for the user to fix
    before = local.read_bytes()
    with pytest.raises(LocalFileError, match="fix or delete the file"):
        LocalFile(local).add_session(added("new"))
    with pytest.raises(LocalFileError, match="does not overwrite"):
        LocalFile(local).set_ui(theme="nord")
    assert local.read_bytes() == before


def test_bad_values_drop_only_their_session(sessions_file: Path, local: Path) -> None:
    local.parent.mkdir(parents=True)
    write(
        local,
        """
        [ui]
        theme = "nord"
        colour = "red"

        [keymap]
        quit = "ctrl+q"

        [[sessions]]
        name = "good"
        model = "sim"
        prompt = "p"

        [[sessions]]
        name = "bad"
        model = "sim"
        prompt = "p"
        temperature = -1

        [[sessions]]
        name = "good"
        model = "sim"
        prompt = "again"

        [[sessions]]
        name = "keyless"
        model = "gpt-5"
        prompt = "p"
        base_url = "https://api.tokenlab.sh/v1"
        api_key_env = "UNSET_TOKENTOP_KEY"
        """,
    )
    loaded = load_with_local(sessions_file, local, environ={})
    assert [s.name for s in loaded.config.sessions] == ["mine", "good", "keyless"]
    assert loaded.config.session("good").prompt == "p"
    assert loaded.config.ui.theme == "nord"
    assert loaded.local_error is not None
    text = loaded.local_error.render()
    for said in (
        f"{local}:3, key 'ui.colour': unknown key 'colour'",
        f"{local}:5, key 'keymap': unknown key 'keymap'",
        f"{local}:17, session 'bad', key 'temperature': temperature must be >= 0, got -1",
        f"{local}:13, session 'bad': not loaded until its problems are fixed",
        f"{local}:19, session 'good': not loaded",
        f"{local}:20, session 'good', key 'name': duplicate name 'good'",
        "session 'keyless', key 'api_key_env': environment variable UNSET_TOKENTOP_KEY is not set",
    ):
        assert said in text, (said, text)


def test_the_sessions_file_itself_is_never_the_local_file(sessions_file: Path) -> None:
    before = sessions_file.read_bytes()
    loaded = load_with_local(sessions_file, sessions_file, environ={})
    assert [s.name for s in loaded.config.sessions] == ["mine"]
    assert loaded.local_error is not None and "sessions file itself" in str(loaded.local_error)
    own = LocalFile(sessions_file, sessions_file=sessions_file)
    with pytest.raises(LocalFileError, match="never writes it"):
        own.add_session(added("x"))
    with pytest.raises(LocalFileError, match="never writes it"):
        own.set_ui(theme="nord")
    assert sessions_file.read_bytes() == before


KEY = "sk-proj-4fJq9ZxA7mWcB2LpV8rT1yN6"


@pytest.mark.parametrize(
    "typed",
    [KEY, "Bearer abc", "gsk_abcdef", "AbCdEf0123456789XyZw", "a1" * 20, "key.with.dots"],
)
def test_key_like_values_are_refused_without_repeating_them(
    typed: str, sessions_file: Path, local: Path
) -> None:
    message = key_like(typed, {})
    assert message is not None and "NAME of an environment variable" in message
    assert typed not in message
    with pytest.raises(LocalFileError) as info:
        LocalFile(local).add_session(added("leak", api_key_env=typed))
    assert typed not in str(info.value)
    assert not local.exists()  # nothing written anywhere


def test_a_pasted_value_names_the_variable_that_holds_it() -> None:
    environ = {"TOKENLAB_API_KEY": KEY, "SHORT": "abc"}
    message = key_like(KEY, environ)
    assert message is not None and "value of TOKENLAB_API_KEY" in message
    assert KEY not in message
    for name in ("TOKENLAB_API_KEY", "OPENAI_API_KEY", "MY_KEY_2", "HF_TOKEN", "abc"):
        assert key_like(name, environ) is None, name


def test_removing_and_ui_settings(sessions_file: Path, local: Path) -> None:
    own = LocalFile(local)
    own.add_session(added("a"))
    own.add_session(added("b"))
    with pytest.raises(LocalFileError, match="already has a session called 'a'"):
        own.add_session(added("a"))
    assert own.remove_session("a") is True
    assert own.remove_session("a") is False
    assert own.session_names() == ["b"]
    own.set_ui(theme="nord", confirm_quit=False)
    own.set_ui(theme=None)
    assert own.read()["ui"] == {"confirm_quit": False}
    with pytest.raises(LocalFileError, match="theme must not be empty"):
        own.set_ui(theme="  ")
    with pytest.raises(ValueError, match="no key 'colour'"):
        own.set_ui(colour="red")
    assert own.remove_session("b") is True
    assert "sessions" not in own.read()
    assert load_with_local(sessions_file, local, environ={}).own == frozenset()


def test_concurrent_writers_lose_nothing(local: Path) -> None:
    own = LocalFile(local)
    other = LocalFile(local)  # another dashboard's writer (its own in-process lock)

    def add(writer: LocalFile, first: int) -> None:
        for i in range(first, first + 10):
            writer.add_session(added(f"s{i}"))

    threads = [threading.Thread(target=add, args=(w, n)) for w, n in ((own, 0), (other, 10))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(own.session_names()) == sorted(f"s{i}" for i in range(20))
    assert [p.name for p in local.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_an_unwritable_place_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(LocalFileError, match=r"^cannot write .*local.toml: "):
        LocalFile(blocker / "local.toml").add_session(added("x"))


def test_check_session_is_the_loaders_check() -> None:
    session, problems = check_session(
        {"name": "n", "model": "m", "prompt": "p", "api": "chat", "background": True},
        environ={},
    )
    assert session is not None
    assert [(p.key, p.message) for p in problems] == [
        (
            "background",
            'background is only valid with api = "responses" (chat has no background mode)',
        )
    ]
    session, problems = check_session({"name": "n", "prompt": "p"}, environ={})
    assert session is None and [p.key for p in problems] == ["model"]


def test_local_config_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(paths.LOCAL_CONFIG_ENV, raising=False)
    assert paths.local_config_path() == tmp_path / "xdg" / "tokentop" / "local.toml"
    monkeypatch.setenv(paths.LOCAL_CONFIG_ENV, str(tmp_path / "mine.toml"))
    assert paths.local_config_path() == tmp_path / "mine.toml"
    assert not (tmp_path / "xdg").exists()


def test_config_error_of_the_local_file_is_a_config_error(sessions_file: Path, local: Path) -> None:
    LocalFile(local).add_session(added("mine"))
    error = load_with_local(sessions_file, local, environ={}).local_error
    assert isinstance(error, ConfigError) and error.path == local
