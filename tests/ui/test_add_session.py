"""The add-session form (a ModalScreen) and the dashboard's own sessions: the model list from
the server's GET /models, a message under each field, a pasted key that never stays, a copy
with another model, and in the real app a session added (tab, overview row, kept in
tokentop's own file) and removed again (its runs stay in the store)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.app import App, ComposeResult
from textual.widgets import Input, Select, Static, TextArea

from tests.ui.conftest import app_config, paste, sim_session, wait_until
from tui.config import ReconnectPolicy, SessionConfig
from tui.config.overlay import LocalFile, load_with_local
from tui.session import SessionRuntime
from tui.sim.faults import PRESETS
from tui.store import Store
from tui.stream.models import ModelList, list_models
from tui.stream.transport import make_client
from tui.ui.app import TokentopApp
from tui.ui.screens.add_session import (
    AddSessionScreen,
    RemoveSessionConfirm,
    form_session,
    free_name,
)
from tui.ui.sessions_edit import (
    SessionEditError,
    SessionsEditor,
    confirm_remove_session,
    open_add_session,
)

KEY = "sk-proj-Vb7Qw2Er9Ty4Ui1Op6As3Df8"


class FormHost(App[None]):
    """An empty app that pushes the form and keeps what it returned."""

    def __init__(self, form: AddSessionScreen) -> None:
        super().__init__()
        self.form = form
        self.results: list[SessionConfig | None] = []

    def compose(self) -> ComposeResult:
        yield Static("host")

    def on_mount(self) -> None:
        self.push_screen(self.form, self.results.append)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as http:
        yield http


def lister(client: httpx.AsyncClient, sim_url: str) -> Any:
    async def ask(session: SessionConfig) -> ModelList:
        base = sim_url if session.is_simulated else session.base_url
        return await list_models(client, session, base)

    return ask


def screen_text(form: AddSessionScreen) -> str:
    """Everything the form shows: its labels and messages and what its fields hold."""
    parts = [str(w.render()) for w in form.query(Static)]
    parts += [w.value for w in form.query(Input)]
    parts += [w.text for w in form.query(TextArea)]
    return "\n".join(parts)


def error_of(form: AddSessionScreen, key: str) -> str:
    return str(form.query_one(f"#{key}-error", Static).render())


async def test_a_session_from_the_form_with_a_listed_model(
    client: httpx.AsyncClient, sim_url: str
) -> None:
    form = AddSessionScreen(taken={"mine"}, list_models=lister(client, sim_url))
    host = FormHost(form)
    async with host.run_test(size=(100, 40)) as pilot:
        await wait_until(pilot, lambda: form.lists >= 1, what="the model list")
        models = form.query_one("#models", Select)
        assert form.listed is not None and set(form.listed.ids) == set(PRESETS)
        assert "models from the server" in str(form.query_one("#models-status").render())
        await paste(pilot, "new one")  # the name field has the focus
        models.value = "sim-think"
        await pilot.pause()
        assert form.query_one("#model", Input).value == "sim-think"
        form.query_one("#prompt", TextArea).text = "Why is the sky blue?"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: host.results != [], what="the form to close")
    assert host.results == [
        SessionConfig(name="new one", model="sim-think", prompt="Why is the sky blue?")
    ]


async def test_every_field_says_what_is_wrong(client: httpx.AsyncClient, sim_url: str) -> None:
    form = AddSessionScreen(taken={"mine"}, list_models=lister(client, sim_url))
    host = FormHost(form)
    async with host.run_test(size=(100, 40)) as pilot:
        form.query_one("#base_url", Input).value = "ftp://nowhere"
        await pilot.press("ctrl+s")
        assert error_of(form, "name") == "name must not be empty"
        assert error_of(form, "model") == "model must not be empty"
        assert error_of(form, "prompt") == "prompt must not be empty"
        assert error_of(form, "base_url").startswith("base_url must be an http(s):// URL")
        form.query_one("#name", Input).value = "mine"
        form.query_one("#base_url", Input).value = "https://api.tokenlab.sh/v1"
        form.query_one("#api_key_env", Input).value = "TOKENTOP_SURELY_UNSET_VAR"
        await pilot.press("ctrl+s")
        assert error_of(form, "name") == "there is a session called 'mine' already"
        assert error_of(form, "base_url") == ""
        assert "TOKENTOP_SURELY_UNSET_VAR is not set" in error_of(form, "api_key_env")
        assert host.results == []  # still open


async def test_a_pasted_key_is_cleared_at_once_and_never_kept(
    client: httpx.AsyncClient, sim_url: str
) -> None:
    form = AddSessionScreen(list_models=lister(client, sim_url))
    host = FormHost(form)
    async with host.run_test(size=(100, 40)) as pilot:
        form.query_one("#api_key_env", Input).focus()
        await pilot.pause()
        await paste(pilot, KEY)
        await wait_until(pilot, lambda: error_of(form, "api_key_env") != "", what="a message")
        assert "NAME of an environment variable" in error_of(form, "api_key_env")
        assert form.query_one("#api_key_env", Input).value == ""
        assert KEY not in screen_text(form) and KEY[:12] not in screen_text(form)
    # and the check itself refuses it before any other code sees it
    session, errors = form_session(
        {
            "name": "n",
            "model": "m",
            "prompt": "p",
            "base_url": "sim",
            "api": "chat",
            "api_key_env": KEY,
        }
    )
    assert session is None and list(errors) == ["api_key_env"] and KEY not in errors["api_key_env"]


async def test_a_known_server_fills_the_url_api_and_key_variable() -> None:
    form = AddSessionScreen()
    host = FormHost(form)
    async with host.run_test(size=(100, 40)) as pilot:
        form.query_one("#server", Select).value = "http://127.0.0.1:11434/v1"
        await pilot.pause()
        assert form.fields["base_url"] == "http://127.0.0.1:11434/v1"
        assert form.fields["api"] == "chat"
        form.query_one("#server", Select).value = "https://api.openai.com/v1"
        await pilot.pause()
        assert (form.fields["api"], form.fields["api_key_env"]) == ("responses", "OPENAI_API_KEY")
        assert str(form.query_one("#models-status").render()) == "type the model's name"


async def test_a_copy_keeps_every_other_setting(
    client: httpx.AsyncClient, sim_url: str, sim_key: str
) -> None:
    original = replace(
        sim_session(sim_url, "poem", key=sim_key, system="be brief", temperature=0.3),
        reconnect=ReconnectPolicy(max_retries=2, on_drop="restart"),
    )
    form = AddSessionScreen(
        taken={"poem", "poem · 2"}, list_models=lister(client, sim_url), duplicate_of=original
    )
    host = FormHost(form)
    async with host.run_test(size=(100, 40)) as pilot:
        await wait_until(pilot, lambda: form.lists >= 1, what="the model list")
        assert form.fields["name"] == "poem · 3"
        assert host.focused is form.query_one("#model", Input)
        form.query_one("#model", Input).value = "sim-fast"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: host.results != [], what="the form to close")
    assert host.results == [replace(original, name="poem · 3", model="sim-fast")]
    assert free_name("x", ()) == "x"


async def test_a_server_without_models_lets_the_name_be_typed(
    client: httpx.AsyncClient, sim_url: str
) -> None:
    form = AddSessionScreen(list_models=lister(client, sim_url))
    host = FormHost(form)
    async with host.run_test(size=(100, 40)) as pilot:
        await wait_until(pilot, lambda: form.lists >= 1, what="the first list")
        form.query_one("#base_url", Input).value = sim_url.removesuffix("/v1")
        await wait_until(pilot, lambda: form.lists >= 2, what="the second list")
        status = str(form.query_one("#models-status").render())
        assert status.startswith("this server has no /models (HTTP 404): type the model name")
        assert form.query_one("#models", Select).is_blank()


async def test_sessions_added_and_removed_in_the_dashboard(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], tmp_path: Path
) -> None:
    sessions_file = tmp_path / "sessions.toml"
    sessions_file.write_text('[[sessions]]\nname = "file"\nmodel = "sim"\nprompt = "p"\n')
    before = sessions_file.read_bytes()
    local = LocalFile(tmp_path / "local.toml", sessions_file=sessions_file)
    config = app_config(sim_session(sim_url, "first", key=sim_key))
    app = TokentopApp(config, db_path=tmp_path / "tokentop.db", theme_dirs=theme_dirs)
    editor = SessionsEditor(app.runtime, local)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.begun and app.sessions[0].state == "done", what="run")
        main = app.main_screen
        assert main is not None
        open_add_session(main, editor, copy=True)  # of the overview's selected row: "first"
        form = app.screen
        assert isinstance(form, AddSessionScreen)
        await wait_until(pilot, lambda: form.lists >= 1, what="the model list")
        form.query_one("#model", Input).value = "sim-fast"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(main.sessions) == 2, what="the new session")
        added = main.sessions[1]
        assert added.name == "first · 2" and added.session.model == "sim-fast"
        assert app.sessions[1] is added and main.tabs.active == "session-1"
        await wait_until(pilot, lambda: added.state == "done", what="its first run")
        assert "first · 2" in main.overview.visible_names
        loaded = load_with_local(sessions_file, local.path, environ={})
        assert loaded.own == {"first · 2"}
        # a session of the sessions file is not removed from here
        main.show_session("first")
        confirm_remove_session(main, editor)
        assert not isinstance(app.screen, RemoveSessionConfirm)
        main.show_session("first · 2")
        await pilot.pause()
        confirm_remove_session(main, editor)
        assert isinstance(app.screen, RemoveSessionConfirm)
        await pilot.press("y")
        await wait_until(pilot, lambda: len(main.sessions) == 1, what="the removal")
        assert [live.name for live in app.sessions] == ["first"]
        assert main.overview.visible_names == ["first"]
        assert main.tabs.active == "overview"
        assert [p.id for p in main.tabs.query("TabPane")] == ["overview", "session-0"]
        editor.keep_ui(theme="nord")
        await editor.aclose()
    assert local.session_names() == [] and local.read()["ui"] == {"theme": "nord"}
    assert sessions_file.read_bytes() == before
    store = await Store.open(tmp_path / "tokentop.db", readonly=True)
    try:
        kept = await store.list_runs(session="first · 2")
    finally:
        await store.close()
    assert [r.status for r in kept] == ["completed"]


async def test_the_editor_keeps_only_what_it_may(tmp_path: Path, sim_url: str) -> None:
    local = LocalFile(tmp_path / "local.toml")
    file_session = SessionConfig(name="file", model="sim", prompt="p", base_url=sim_url)
    runtime = SessionRuntime([file_session], simulator=lambda: sim_url)
    editor = SessionsEditor(runtime, local)
    try:
        added = await editor.add(replace(file_session, name="own", model="sim-fast"))
        assert runtime.controller("own") is added and editor.is_own("own")
        assert not added.running  # the runtime has not started: it starts with the others
        assert local.session_names() == ["own"]
        with pytest.raises(SessionEditError, match="there is a session called 'own'"):
            await editor.add(replace(file_session, name="own"))
        leaky = replace(file_session, name="leaky", headers={"Authorization": f"Bearer {KEY}"})
        with pytest.raises(SessionEditError, match="never holds one") as info:
            await editor.add(leaky)
        assert KEY not in str(info.value) and KEY not in local.path.read_text()
        with pytest.raises(SessionEditError, match="remove it there"):
            await editor.remove("file")
        await editor.remove("own")
        assert [c.name for c in runtime.controllers] == ["file"]
        assert local.session_names() == [] and not editor.is_own("own")
        for theme in ("a", "b", "nord"):  # a burst: the last one is kept
            editor.keep_ui(theme=theme)
        await editor.aclose()
        assert local.read()["ui"] == {"theme": "nord"}
    finally:
        await runtime.close()
