"""AddSessionScreen: a form for a new session (or a copy of one with another model), and
RemoveSessionConfirm, the question before one of tokentop's own sessions is removed.

The form returns the new :class:`~tui.config.SessionConfig` (``dismiss``); saving it into
tokentop's own file and adding it to the runtime are the caller's
(:mod:`tui.ui.sessions_edit`). Its checks are the loader's
(:func:`tui.config.overlay.check_session`), each message under its field. The model list
comes from the server's ``GET /models`` (a ``ModelLister``: the runtime's ``list_models``);
any name can be typed as well. ``api_key_env`` takes the NAME of a variable: what looks like
a pasted key is cleared from the field at once and said, never kept or repeated.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from tui.config import SessionConfig
from tui.config.overlay import check_session, key_like, session_table
from tui.config.schema import sim_or_http_url
from tui.config.validate import Invalid
from tui.stream.models import ModelList
from tui.ui.keymap import BINDING_IDS

ModelLister = Callable[[SessionConfig], Awaitable[ModelList]]
"""Lists a session's server's models (the runtime's ``list_models``); never raises."""

LIST_AFTER_S = 0.6
"""The model list is asked for this long after the base URL (or key variable) last changed."""

FIELDS = ("name", "base_url", "api", "model", "prompt", "api_key_env")
"""The form's fields, each a key of the session table (its message shows under it)."""


@dataclass(frozen=True, slots=True)
class KnownServer:
    """A server the form offers: where it listens, its usual API and key variable."""

    label: str
    base_url: str
    api: str
    api_key_env: str | None = None


KNOWN_SERVERS = (
    KnownServer("Built-in simulator (sim)", "sim", "responses"),
    KnownServer("OpenAI", "https://api.openai.com/v1", "responses", "OPENAI_API_KEY"),
    KnownServer("TokenLab", "https://api.tokenlab.sh/v1", "responses", "TOKENLAB_API_KEY"),
    KnownServer("vLLM on this machine (:8000)", "http://127.0.0.1:8000/v1", "chat"),
    KnownServer("llama.cpp server on this machine (:8080)", "http://127.0.0.1:8080/v1", "chat"),
    KnownServer("Ollama on this machine (:11434)", "http://127.0.0.1:11434/v1", "chat"),
)
"""The servers of the form's "known server" choice (local ones on their default ports)."""


def free_name(name: str, taken: Collection[str]) -> str:
    """``name``, or ``name · 2``, ``name · 3``... whichever no session has."""
    if name not in taken:
        return name
    return next(f"{name} · {n}" for n in itertools.count(2) if f"{name} · {n}" not in taken)


def form_session(
    fields: Mapping[str, str],
    *,
    taken: Collection[str] = (),
    base: SessionConfig | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[SessionConfig | None, dict[str, str]]:
    """The session the form's ``fields`` describe (over ``base``'s other settings, for a
    copy), or None, and a message per field (``""``: about no field in particular). The
    checks are the loader's; a key-like ``api_key_env`` is refused before anything else
    sees it."""
    errors: dict[str, str] = {}
    refused = key_like(fields.get("api_key_env", ""), environ)
    if refused is not None:
        return None, {"api_key_env": refused}
    values: dict[str, Any] = session_table(base) if base is not None else {}
    for key in FIELDS:
        text = fields.get(key, "")
        value = text if key == "prompt" else text.strip()
        if key == "prompt" and values.get("turns"):
            # a scripted session's copy: its turns, or a prompt instead (one or the other)
            if value.strip():
                del values["turns"]
                values["prompt"] = value
            continue
        if value or key != "api_key_env":
            values[key] = value
        else:
            values.pop(key, None)
    session, problems = check_session(values, environ=environ)
    for problem in problems:
        field = problem.key if problem.key in FIELDS else ""
        message = problem.message if field else f"{problem.key}: {problem.message}"
        errors.setdefault(field, message)
    name = values["name"]
    if "name" not in errors and name in taken:
        errors["name"] = f"there is a session called {name!r} already"
    return (session if not errors else None), errors


class AddSessionScreen(ModalScreen[SessionConfig | None]):
    """The add-session form (``duplicate_of``: a copy of that session, for another model).

    ``taken``: the names in use; ``list_models``: where the model list comes from (None:
    typed only). Dismisses with the new session, or None (``escape``)."""

    DEFAULT_CSS = """
    AddSessionScreen { align: center middle; }
    AddSessionScreen > Vertical {
        width: 90%; max-width: 100; height: 90%;
        border: thick $primary 60%; background: $surface; padding: 0 1;
    }
    AddSessionScreen #add-title { height: 1; text-style: bold; margin: 0 0 1 0; }
    AddSessionScreen .field-label { height: 1; color: $text-muted; margin: 1 0 0 0; }
    AddSessionScreen .field-error { height: auto; color: $error; }
    AddSessionScreen .field-error.-empty { display: none; }
    AddSessionScreen #models-status { height: auto; color: $text-muted; }
    AddSessionScreen #prompt { height: 5; }
    AddSessionScreen #model-row Input { width: 1fr; }
    AddSessionScreen #model-row Select { width: 1fr; }
    AddSessionScreen #add-buttons { height: 3; align-horizontal: right; }
    AddSessionScreen Button { margin: 0 0 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+s",
            "submit",
            "Add",
            priority=True,
            id="add_session.save",
            tooltip=BINDING_IDS["add_session.save"],
        ),
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="add_session.cancel",
            tooltip=BINDING_IDS["add_session.cancel"],
        ),
    ]

    def __init__(
        self,
        *,
        taken: Collection[str] = (),
        list_models: ModelLister | None = None,
        duplicate_of: SessionConfig | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.taken = frozenset(taken)
        self.lister = list_models
        self.duplicate_of = duplicate_of
        self.environ = environ
        self.listed: ModelList | None = None
        """The last model list (or its failure); None before one came."""
        self.lists = 0
        """How many model lists came (tests wait on it)."""

    # -- layout ----

    def compose(self) -> ComposeResult:
        base = self.duplicate_of
        title = "Add a session" if base is None else f"Copy {base.name!r} with another model"
        name = "" if base is None else free_name(base.name, self.taken)
        with Vertical():
            yield Label(f"{title}  (ctrl+s adds, esc cancels)", id="add-title", markup=False)
            with VerticalScroll():
                yield from self._field("name", "Name", Input(name, id="name"))
                yield Label("Server", classes="field-label")
                servers = [(s.label, s.base_url) for s in KNOWN_SERVERS]
                yield Select(servers, prompt="a known server…", id="server")
                base_url = "sim" if base is None else base.base_url
                yield from self._field(
                    "base_url",
                    None,
                    Input(base_url, placeholder="https://…/v1, or sim", id="base_url"),
                )
                api = "responses" if base is None else base.api
                apis = [
                    ("responses (POST /responses)", "responses"),
                    ("chat (POST /chat/completions)", "chat"),
                ]
                yield from self._field(
                    "api", "API", Select(apis, value=api, allow_blank=False, id="api")
                )
                yield Label("Model", classes="field-label")
                with Horizontal(id="model-row"):
                    yield Input(
                        "" if base is None else base.model,
                        placeholder="type a name, or choose →",
                        id="model",
                    )
                    yield Select[str]([], prompt="models of the server", id="models")
                yield Static("", id="models-status", markup=False)
                yield Static("", id="model-error", classes="field-error -empty", markup=False)
                prompt = "" if base is None else base.prompt
                label = "Prompt"
                if base is not None and base.turns:  # a copy of a scripted session
                    label += f" (empty: its {len(base.turns)} scripted turns; or one prompt)"
                yield from self._field(
                    "prompt", label, TextArea(prompt, id="prompt", soft_wrap=True)
                )
                env = "" if base is None or base.api_key_env is None else base.api_key_env
                yield from self._field(
                    "api_key_env",
                    "API key variable (its NAME, like OPENAI_API_KEY; never the key)",
                    Input(env, placeholder="empty: no key", id="api_key_env"),
                )
                yield Static("", id="form-error", classes="field-error -empty", markup=False)
            with Horizontal(id="add-buttons"):
                yield Button("Cancel", id="add-cancel")
                yield Button(
                    "Add" if base is None else "Add copy", id="add-save", variant="primary"
                )

    def _field(self, key: str, label: str | None, widget: Any) -> ComposeResult:
        if label is not None:
            yield Label(label, classes="field-label")
        yield widget
        yield Static("", id=f"{key}-error", classes="field-error -empty", markup=False)

    def on_mount(self) -> None:
        self.query_one("#model" if self.duplicate_of else "#name", Input).focus()
        self._ask_models()

    # -- fields ----

    @property
    def fields(self) -> dict[str, str]:
        """What the fields hold now."""
        api = self.query_one("#api", Select).value
        return {
            "name": self.query_one("#name", Input).value,
            "base_url": self.query_one("#base_url", Input).value,
            "api": api if isinstance(api, str) else "",
            "model": self.query_one("#model", Input).value,
            "prompt": self.query_one("#prompt", TextArea).text,
            "api_key_env": self.query_one("#api_key_env", Input).value,
        }

    def show_errors(self, errors: Mapping[str, str]) -> None:
        """Put each message under its field (and clear the others)."""
        for key in (*FIELDS, ""):
            box = self.query_one(f"#{key or 'form'}-error", Static)
            text = errors.get(key, "")
            box.update(text)
            box.set_class(not text, "-empty")

    @on(Select.Changed, "#server")
    def _server_chosen(self, event: Select.Changed) -> None:
        server = next((s for s in KNOWN_SERVERS if s.base_url == event.value), None)
        if server is None:
            return
        self.query_one("#base_url", Input).value = server.base_url
        self.query_one("#api", Select).value = server.api
        env = self.query_one("#api_key_env", Input)
        if server.api_key_env and not env.value.strip():
            env.value = server.api_key_env

    @on(Select.Changed, "#models")
    def _model_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.query_one("#model", Input).value = event.value

    @on(Input.Changed, "#api_key_env")
    def _key_variable_changed(self, event: Input.Changed) -> None:
        refused = key_like(event.value, self.environ)
        if refused is not None:  # a pasted key leaves the field (and the screen) at once
            event.input.value = ""
            self.show_errors({"api_key_env": refused})
            return
        self._ask_models()

    @on(Input.Changed, "#base_url")
    def _base_url_changed(self) -> None:
        self._ask_models()

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        if event.input.id == "api_key_env":
            self.action_submit()
        else:
            self.focus_next()

    # -- the model list ----

    def _ask_models(self) -> None:
        if self.lister is None:
            self.query_one("#models-status", Static).update("type the model's name")
            return
        self._list_models()

    def _probe(self) -> SessionConfig | None:
        """The session the model list is asked with (None: no usable base URL yet)."""
        fields = self.fields
        try:
            base_url = sim_or_http_url("base_url", fields["base_url"])
        except Invalid:
            return None
        env = fields["api_key_env"].strip() or None
        base = self.duplicate_of or SessionConfig(name="models", model="-", prompt="-")
        return replace(base, base_url=base_url, api_key_env=env)

    @work(exclusive=True, group="models", exit_on_error=False)
    async def _list_models(self) -> None:
        status = self.query_one("#models-status", Static)
        await asyncio.sleep(LIST_AFTER_S)  # a debounce: the URL may still be being typed
        probe = self._probe()
        if probe is None or self.lister is None:
            status.update("type a base URL to see its models")
            return
        status.update("asking the server for its models…")
        try:
            listed = await self.lister(probe)
        except Exception as exc:  # a lister must not raise; if one does, the form goes on
            listed = ModelList(error=f"listing the models failed: {type(exc).__name__}")
        self.listed = listed
        self.lists += 1
        select = self.query_one("#models", Select)
        model = self.query_one("#model", Input)
        if listed.error is not None:
            select.set_options([])
            model.suggester = None
            status.update(listed.error)
            return
        select.set_options([(m, m) for m in listed.ids])
        model.suggester = SuggestFromList(listed.ids, case_sensitive=False)
        more = " (more were left out)" if listed.truncated else ""
        status.update(f"{len(listed.ids)} models from the server{more}: choose one or type it")

    # -- ending ----

    def action_submit(self) -> None:
        """Check the form; dismiss with the session when nothing is wrong."""
        session, errors = form_session(
            self.fields, taken=self.taken, base=self.duplicate_of, environ=self.environ
        )
        if "api_key_env" in errors and key_like(self.fields["api_key_env"], self.environ):
            self.query_one("#api_key_env", Input).value = ""
        self.show_errors(errors)
        if session is not None:
            self.dismiss(session)

    def action_cancel(self) -> None:
        """Close without adding."""
        self.dismiss(None)

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        if event.button.id == "add-save":
            self.action_submit()
        else:
            self.action_cancel()


class RemoveSessionConfirm(ModalScreen[bool]):
    """Asks before removing one of tokentop's own sessions; True: remove."""

    DEFAULT_CSS = """
    RemoveSessionConfirm { align: center middle; }
    RemoveSessionConfirm > Vertical {
        width: auto; max-width: 90%; height: auto;
        border: thick $warning 60%; background: $surface; padding: 1 2;
    }
    RemoveSessionConfirm #remove-question { text-style: bold; }
    RemoveSessionConfirm #remove-keys { color: $text-muted; margin: 1 0 0 0; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "y",
            "answer(True)",
            "Remove",
            id="remove_session.yes",
            tooltip=BINDING_IDS["remove_session.yes"],
        ),
        Binding(
            "n,escape",
            "answer(False)",
            "Keep",
            id="remove_session.no",
            tooltip=BINDING_IDS["remove_session.no"],
        ),
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.session_name = name

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                f"Remove the session {self.session_name!r}?", id="remove-question", markup=False
            )
            yield Label(
                "Its run is cancelled; its stored runs stay in history. y removes · n or esc keeps",
                id="remove-keys",
            )

    def action_answer(self, remove: bool) -> None:
        """Close with the answer."""
        self.dismiss(remove)
