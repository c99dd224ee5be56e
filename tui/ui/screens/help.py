"""HelpScreen: every key of the screen it was opened over, and the app's (``?``).

The rows come from the screen's active bindings (the focused widget's, the screen's and the
app's, with the ``[keymap]`` remaps applied, as the footer shows them), plus the bindings
the screen and the app declare that are not available at the moment (acknowledging alerts
while there are none), keyed as remapped too. Each row says the key, what it does, the
binding's tooltip (or the keymap's description of its id) and the id to remap it with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tui.ui.keymap import BINDING_IDS, usable_keymap

if TYPE_CHECKING:
    from textual.app import App
    from textual.dom import DOMNode
    from textual.screen import Screen

APP_SECTION = "Everywhere"
"""The section of the app's own bindings."""


@dataclass(slots=True)
class KeyRow:
    """One binding as the help screen lists it."""

    section: str
    """Where it is bound: the screen, a widget (``Overview``) or :data:`APP_SECTION`."""
    keys: list[str]
    """Its keys as displayed (``^x``), remaps applied; several when it has several."""
    description: str
    tooltip: str
    binding_id: str | None
    available: bool = True
    """False when the screen does not offer it right now (its key does nothing yet)."""


def _section(node: DOMNode, screen: Screen[object]) -> str:
    if node is screen.app:
        return APP_SECTION
    title = node.BINDING_GROUP_TITLE
    if node is screen:
        return title or screen.title or type(screen).__name__
    return title or type(node).__name__


def _declared(node: DOMNode) -> Iterable[Binding]:
    """The bindings ``node``'s classes declare (base classes' first, as Textual merges them)."""
    for cls in reversed(type(node).__mro__):
        bindings: list[BindingType] | None = cls.__dict__.get("BINDINGS")
        if bindings:
            yield from Binding.make_bindings(bindings)


def _tooltip(binding: Binding, tooltip: str) -> str:
    known = binding.id or ""
    return tooltip or binding.tooltip or BINDING_IDS.get(known, "")


def key_rows(screen: Screen[object], keymap: Mapping[str, str] | None = None) -> list[KeyRow]:
    """Every binding of ``screen`` and of its app, one row per action of a node (its keys
    merged: Textual's ``ctrl+q`` joins tokentop's ``q`` on the app's Quit row).

    ``keymap`` (binding id -> keys) keys the bindings that are not active now as the active
    ones are; None reads the app's ``config.keymap`` when it has one. Textual's system
    bindings (``ctrl+c``) and bindings with neither a description nor an id are left out.
    """
    app: App[object] = screen.app
    if keymap is None:
        config = getattr(app, "config", None)
        keymap = usable_keymap(getattr(config, "keymap", None) or {})
    rows: dict[tuple[int, str], KeyRow] = {}
    order: list[DOMNode] = []

    def add(node: DOMNode, binding: Binding, key_display: str, tooltip: str, on: bool) -> None:
        if binding.system or not (binding.description or binding.id):
            return
        ident = (id(node), binding.action)
        row = rows.get(ident)
        if row is None:
            if node not in order:
                order.append(node)
            row = rows[ident] = KeyRow(
                _section(node, screen),
                [],
                binding.description or binding.action,
                _tooltip(binding, tooltip),
                binding.id,
                on,
            )
        elif row.binding_id is None and binding.id:  # ours, over Textual's key for it
            row.binding_id = binding.id
            row.description = binding.description or row.description
            row.tooltip = _tooltip(binding, tooltip) or row.tooltip
            row.keys.insert(0, key_display)
        if key_display not in row.keys:
            row.keys.append(key_display)

    for active in screen.active_bindings.values():
        binding = active.binding
        add(active.node, binding, app.get_key_display(binding), active.tooltip, True)
    for node in (screen, app):
        for binding in _declared(node):
            if (id(node), binding.action) in rows:
                continue
            remapped = keymap.get(binding.id or "")
            keys = remapped.split(",") if remapped else [binding.key]
            for key in keys:
                shown = binding.with_key(key.strip(), None if remapped else binding.key_display)
                add(node, shown, app.get_key_display(shown), "", False)
    # the screen's own keys first, then the focused widgets' (outermost first), then the app's
    widgets = [node for node in reversed(order) if node is not screen and node is not app]
    nodes = [screen, *widgets, app]
    rank = {id(node): index for index, node in enumerate(nodes)}
    # within a node, tokentop's bindings (with ids) before Textual's own (focus, copy)
    ranked = sorted(
        rows.items(),
        key=lambda item: (rank.get(item[0][0], len(nodes)), item[1].binding_id is None),
    )
    return [row for _, row in ranked]


class HelpScreen(ModalScreen[None]):
    """The keys of one screen, in a table; ``esc`` or ``?`` closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen #help-box {
        width: 90%;
        max-width: 120;
        height: 90%;
        background: $panel;
        border: round $primary;
        padding: 0 1;
    }
    HelpScreen #help-title { text-style: bold; height: 1; }
    HelpScreen #help-hint { color: $text-muted; height: 1; }
    HelpScreen DataTable { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape,question_mark",
            "dismiss_help",
            "Close",
            id="help.close",
            tooltip=BINDING_IDS["help.close"],
        ),
    ]

    def __init__(self, rows: Iterable[KeyRow], *, title: str = "Keys") -> None:
        super().__init__()
        self.rows = list(rows)
        """The listed bindings, in the table's order."""
        self._title = title

    @classmethod
    def for_screen(cls, screen: Screen[object]) -> HelpScreen:
        """The help of ``screen`` (its bindings as they are at this moment)."""
        name = screen.title or screen.BINDING_GROUP_TITLE or type(screen).__name__
        return cls(key_rows(screen), title=f"Keys: {name}")

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static(self._title, id="help-title", markup=False)
            yield Static(
                "dimmed: not available right now · remap by id in [keymap] · esc closes",
                id="help-hint",
                markup=False,
            )
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table: DataTable[Text] = self.query_one("#help-table", DataTable)
        table.add_columns("key", "does", "what it does", "where", "[keymap] id")
        for index, row in enumerate(self.rows):
            style = "" if row.available else "dim"
            cells = (
                " ".join(row.keys),
                row.description,
                row.tooltip,
                row.section,
                row.binding_id or "",
            )
            table.add_row(*(Text(cell, style=style) for cell in cells), key=str(index))
        table.focus()

    def action_dismiss_help(self) -> None:
        """Close the help."""
        self.dismiss(None)


def show_help(app: App[Any]) -> None:
    """Open the help of the app's current screen (closes it when it is the help already)."""
    screen = app.screen
    if isinstance(screen, HelpScreen):
        screen.dismiss(None)
        return
    app.push_screen(HelpScreen.for_screen(screen))
