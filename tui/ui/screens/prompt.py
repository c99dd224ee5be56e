"""PromptEditor: edit a session's prompt and run it again (a modal that returns the text)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, TextArea


class PromptEditor(ModalScreen[str | None]):
    """A TextArea with the prompt; ``ctrl+s`` runs it, ``escape`` dismisses with None."""

    DEFAULT_CSS = """
    PromptEditor { align: center middle; }
    PromptEditor > Vertical {
        width: 90%;
        max-width: 110;
        height: 70%;
        min-height: 12;
        border: thick $primary 60%;
        background: $surface;
        padding: 0 1;
    }
    PromptEditor #prompt-title { height: 1; margin: 0 0 1 0; text-style: bold; }
    PromptEditor TextArea { height: 1fr; }
    PromptEditor #prompt-buttons { height: 3; align-horizontal: right; }
    PromptEditor Button { margin: 0 0 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "Run", priority=True, id="prompt.run"),
        Binding("escape", "dismiss_none", "Cancel", id="prompt.cancel"),
    ]

    def __init__(self, session_name: str, prompt: str) -> None:
        super().__init__()
        self.session_name = session_name
        self.prompt = prompt

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                f"Prompt for {self.session_name}  (ctrl+s runs, esc cancels)", id="prompt-title"
            )
            yield TextArea(self.prompt, id="prompt-text", soft_wrap=True, show_line_numbers=False)
            with Horizontal(id="prompt-buttons"):
                yield Button("Cancel", id="prompt-cancel")
                yield Button("Run", id="prompt-run", variant="primary")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    @property
    def text(self) -> str:
        """The prompt as edited so far."""
        return self.query_one(TextArea).text

    def action_submit(self) -> None:
        """Run the edited prompt (an empty prompt is refused)."""
        text = self.text
        if not text.strip():
            self.notify("The prompt is empty.", severity="warning")
            return
        self.dismiss(text)

    def action_dismiss_none(self) -> None:
        """Close without running."""
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "prompt-run":
            self.action_submit()
        else:
            self.action_dismiss_none()
