"""``D`` on a scripted session (``turns = [...]``): the copy carries the turns (its prompt
field left empty says so), or, with a prompt typed in, that one prompt instead; a session has
one or the other, as the sessions file allows."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Label, TextArea

from tests.ui.conftest import app_config, sim_session, wait_until
from tui.config import SessionConfig
from tui.ui.app import TokentopApp
from tui.ui.screens.add_session import AddSessionScreen, form_session

SCRIPT = ("First question?", "Second question?")


def _fields(base: SessionConfig, prompt: str) -> dict[str, str]:
    return {
        "name": f"{base.name} · 2",
        "base_url": base.base_url,
        "api": base.api,
        "model": "sim-fast",
        "prompt": prompt,
        "api_key_env": "",
    }


def test_a_copy_of_a_scripted_session_keeps_its_turns_or_takes_a_prompt() -> None:
    base = SessionConfig(name="script", model="sim", turns=SCRIPT, system="be brief")
    copy, errors = form_session(_fields(base, ""), base=base)
    assert errors == {} and copy is not None
    assert (copy.turns, copy.prompt, copy.system) == (SCRIPT, "", "be brief")
    one, errors = form_session(_fields(base, "Only this?"), base=base)
    assert errors == {} and one is not None
    assert (one.turns, one.prompt, one.script) == ((), "Only this?", ("Only this?",))
    # a one-turn session's copy needs its prompt, as before
    single = SessionConfig(name="single", model="sim", prompt="p")
    _, errors = form_session(_fields(single, " "), base=single)
    assert "prompt" in errors


async def test_D_copies_a_scripted_session_with_its_turns(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    fast = "ttft=0.01,tps=0,tokens=20"
    scripted = sim_session(sim_url, "script", key=sim_key, timing=fast, prompt="", turns=SCRIPT)
    app = TokentopApp(app_config(scripted), theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        original = app.sessions[0]
        await wait_until(
            pilot,
            lambda: app.begun and len(original.conversation.turns) == 2 and not original.running,
            what="the script",
        )
        await pilot.press("D")
        await wait_until(pilot, lambda: isinstance(app.screen, AddSessionScreen), what="form")
        form = app.screen
        assert isinstance(form, AddSessionScreen)
        assert form.query_one("#prompt", TextArea).text == ""
        labels = [str(label.content) for label in form.query(Label)]
        assert "Prompt (empty: its 2 scripted turns; or one prompt)" in labels
        form.query_one("#model", Input).value = "sim-fast"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(app.sessions) == 2, what="the copy")
        copy = app.sessions[1]
        assert copy.name == "script · 2"
        assert (copy.session.turns, copy.session.model) == (SCRIPT, "sim-fast")
        await wait_until(
            pilot,
            lambda: len(copy.conversation.turns) == 2 and not copy.running,
            what="the copy's script",
        )
        assert [t.prompt for t in copy.conversation.turns] == list(SCRIPT)
