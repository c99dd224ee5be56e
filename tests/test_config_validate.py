"""Checks derived from schema dataclasses (tui.config.validate): what a field's type and
``Annotated`` rules accept, how tables merge and build, and the schema's own keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest

from tui.config import (
    AlertRules,
    ConfigError,
    ReconnectPolicy,
    Repeat,
    SessionConfig,
    StoreConfig,
    UiConfig,
    load_config,
)
from tui.config.schema import KeyBinding
from tui.config.validate import (
    MERGED,
    Above,
    AtLeast,
    Hint,
    Invalid,
    build,
    check_table,
    keys_of,
    merge,
    required_keys,
    settings,
    value_check,
)


@dataclass(frozen=True, slots=True)
class Window:
    width: Annotated[int, AtLeast(1), Hint("in columns")]
    ratio: Annotated[float, Above(0)] = 1.0


@dataclass(frozen=True, slots=True)
class Made:
    """A schema written for the test: adding a field is all it takes to check a key."""

    title: str
    mode: Literal["fast", "slow"] = "fast"
    level: int | None = None
    scale: float = 1.0
    on: bool = False
    labels: Annotated[Mapping[str, str], MERGED] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    window: Window | None = None


def checked(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    problems: dict[str, str] = {}

    def report(path: tuple[str, ...], message: str) -> None:
        problems[".".join(path)] = message

    return check_table(Made, raw, report), problems


def test_a_schema_checks_every_key_from_its_declaration() -> None:
    values, problems = checked(
        {
            "title": 1,
            "mode": "medium",
            "level": True,
            "scale": 2,
            "on": "yes",
            "labels": {"a": 1},
            "extra": {"any": [1]},
            "window": {"ratio": 0, "heigth": 2},
            "titel": "x",
        }
    )
    assert problems == {
        "title": "title must be a string, got integer",
        "mode": 'mode must be one of "fast" | "slow", got \'medium\'',
        "level": "level must be an integer, got boolean",
        "on": "on must be true or false, got string",
        "labels": "labels values must be strings (not 'a')",
        "window.width": "window needs width (in columns)",
        "window.ratio": "window.ratio must be > 0, got 0",
        "window.heigth": "unknown key 'heigth'",
        "titel": "unknown key 'titel' (did you mean 'title'?)",
    }
    assert values == {"scale": 2.0, "extra": {"any": [1]}, "window": {}}
    assert isinstance(values["scale"], float)


def test_numbers_must_be_finite_and_rules_see_the_value_as_written() -> None:
    check = value_check(Annotated[float, AtLeast(0)])
    with pytest.raises(Invalid, match="x must be a finite number"):
        check("x", float("inf"))
    with pytest.raises(Invalid, match=r"x must be >= 0, got -2$"):
        check("x", -2)
    assert check("x", 3) == 3.0 and isinstance(check("x", 3), float)
    with pytest.raises(Invalid, match="must not be empty"):
        value_check(KeyBinding)("quit", "  ")


def test_merge_settings_and_build() -> None:
    base = {"title": "t", "labels": {"a": "1", "b": "2"}, "extra": {"x": 1}}
    over = {"labels": {"b": "3"}, "extra": {"y": 2}, "window": {"width": 80}}
    merged = merge(Made, base, over)
    assert merged["labels"] == {"a": "1", "b": "3"}  # MERGED: key by key
    assert merged["extra"] == {"y": 2}  # not MERGED: replaced
    made = build(Made, merged)
    assert made == Made(
        title="t", labels={"a": "1", "b": "3"}, extra={"y": 2}, window=Window(width=80)
    )
    # without a required key: no object, but every other setting with its default
    assert build(Made, {"mode": "slow"}) is None
    assert settings(Made, {"mode": "slow", "window": {}}) == {
        "mode": "slow",
        "level": None,
        "scale": 1.0,
        "on": False,
        "labels": {},
        "extra": {},
        "window": None,
    }


def test_the_sessions_schema() -> None:
    for schema in (SessionConfig, ReconnectPolicy, Repeat, UiConfig, AlertRules, StoreConfig):
        assert list(keys_of(schema)) == list(schema.__dataclass_fields__)
    # prompt or turns: either is needed (tui.config.schema.session_conflicts says so)
    assert required_keys(SessionConfig) == ["name", "model"]
    assert required_keys(Repeat) == ["every_s"] and required_keys(ReconnectPolicy) == []
    merged = {k.name for k in keys_of(SessionConfig).values() if k.merged}
    assert merged == {"params", "headers", "reconnect", "alerts"}
    assert build(SessionConfig, {"name": "n", "model": "m", "prompt": "p"}) == SessionConfig(
        name="n", model="m", prompt="p"
    )


def test_a_type_without_a_check_is_refused() -> None:
    @dataclass
    class Odd:
        when: list[int]

    @dataclass
    class Counts:
        counts: Mapping[str, int]

    for schema in (Odd, Counts):
        with pytest.raises(TypeError, match="no TOML check"):
            keys_of(schema)


def test_alerts_store_and_ui_tables(tmp_path: Path) -> None:
    path = tmp_path / "sessions.toml"
    path.write_text(
        """
[store]
keep_days = 7
keep_raw_events = "none"

[ui]
confirm_quit = false

[defaults.alerts]
ttft_ms = 2000
on_alert = ["notify-send", "tokentop"]

[[sessions]]
name = "a"
model = "m"
prompt = "p"
alerts.consecutive_failures = 3

[[sessions]]
name = "b"
model = "m"
prompt = "p"
[sessions.alerts]
ttft_ms = 500
on_alert = ["echo", 3]
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.key == "alerts.on_alert" and "item 2 is not a string" in problem.message
    assert problem.line == 25
    path.write_text(path.read_text().replace('["echo", 3]', '["echo", "x"]'), encoding="utf-8")
    config = load_config(path)
    assert config.store == StoreConfig(keep_days=7.0, keep_raw_events="none")
    assert config.ui.confirm_quit is False and config.ui.alert_bell is True
    a, b = config.sessions
    # merged key by key over [defaults.alerts]
    assert a.alerts == AlertRules(
        ttft_ms=2000.0, consecutive_failures=3, on_alert=("notify-send", "tokentop")
    )
    assert b.alerts == AlertRules(ttft_ms=500.0, on_alert=("echo", "x"))
