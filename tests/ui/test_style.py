"""The one colour mapping of states and tones, and the stylesheet rules it relies on."""

from __future__ import annotations

import re
from pathlib import Path

import tui.ui
from tui.ui.style import (
    STATE_CLASSES,
    STATE_VARIABLES,
    TONE_CLASSES,
    TONE_VARIABLES,
    theme_styles,
)
from tui.vocab import SESSION_STATES, TONE_GLYPHS

TCSS = (Path(tui.ui.__file__).parent / "app.tcss").read_text(encoding="utf-8")


def test_every_state_and_tone_has_a_colour() -> None:
    assert set(STATE_VARIABLES) == set(SESSION_STATES)
    assert set(TONE_VARIABLES) == set(TONE_GLYPHS)


def test_every_tab_class_has_its_rule() -> None:
    # A tab's colour class is named after its variable, and the rule says just that.
    for state, classes in STATE_CLASSES.items():
        variable = STATE_VARIABLES[state]
        assert f"-{variable}" in classes
        assert re.search(rf"Tab\.-{variable} \{{ color: \${variable}; \}}", TCSS), variable
    assert re.search(r"Tab\.-loud \{ text-style: bold; \}", TCSS)


def test_every_tone_class_styles_the_finish_badge() -> None:
    for css_class in TONE_CLASSES:
        assert f"FinishBadge.{css_class} {{" in TCSS, css_class


def test_theme_styles_skip_what_the_theme_lacks() -> None:
    variables = {"status-ok": "#00ff00", "status-failed": "not a colour", "background": "#000000"}
    styles = theme_styles(variables, ["status-ok", "status-failed", "status-warn"])
    assert list(styles) == ["status-ok"]
    assert styles["status-ok"].color is not None
