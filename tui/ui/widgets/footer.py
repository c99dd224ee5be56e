"""KeysFooter: the key bar that keeps the most useful keys whole at any width.

Textual's :class:`~textual.widgets.Footer` lays every shown binding out in declaration order
and lets the ones past the right edge fall off, so on a narrow terminal the app's keys
(``q Quit``, ``c Compare``, ``h History``), declared last, are the ones that vanish.
:class:`KeysFooter` ranks the bindings instead (:func:`binding_rank`: a table by binding id,
then a rule for ``*.close``, then a default), keeps the best-ranked keys that fit the width
(:func:`fit_keys`), shows them in their usual order, and always pins the key-help binding
(action ``help``, ``? Keys``) to the right edge. Remapped keys (``[keymap]``) show as
remapped: the keys come from the screen's active bindings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Footer

HELP_ACTION = "help"
"""The action of the key-help binding, the one key the footer always shows."""

PINNED_RANK = 0
"""The rank of the key-help binding: shown at every width."""

FOOTER_RANKS: dict[str, int] = {
    "help": PINNED_RANK,
    "quit": 1,
    "acknowledge_alerts": 1,
    "compare": 2,
    "history": 2,
    "cancel_run": 3,
    "restart_run": 3,
    "edit_prompt": 3,
    "follow_up": 3,
    "follow_up.leave": 3,
    "overview": 4,
    "next_tab": 4,
    "overview.filter": 4,
    "monitor": 5,
    "copy_answer": 4,
    "toggle_raw": 5,
    "toggle_follow": 5,
    "overview.sort": 6,
    "command_palette": 7,
    "overview.sort_reverse": 8,
    "cycle_theme": 8,
    "compare.prompt": 2,
    "compare.cancel": 3,
    "compare.diff": 4,
    "history.search": 2,
    "history.open": 2,
    "history.open_instant": 4,
    "replay.pause": 2,
    "replay.instant": 4,
    "monitor.window": 3,
}
"""How much each binding (by id) matters in the footer: lower is kept longer. Leaving the
screen (``q Quit``, ``esc Back``) and the app's other screens outrank a screen's details."""

SUFFIX_RANKS: dict[str, int] = {"close": 1}
"""Ranks by the last part of a dotted id (``compare.close``: back to where it came from)."""

DEFAULT_RANK = 5
"""The rank of a binding the tables do not name."""

DISABLED_PENALTY = 3
"""Added to the rank of a binding that is shown disabled (it does nothing here)."""

PINNED_BORDER = 1
"""The rule left of the pinned key (see :class:`KeysFooter`'s CSS)."""


def binding_rank(binding_id: str | None, action: str, *, enabled: bool = True) -> int:
    """The footer rank of a binding (lower is kept longer; :data:`PINNED_RANK` always shows):
    its id's entry in :data:`FOOTER_RANKS`, else the rank of its id's last dotted part
    (:data:`SUFFIX_RANKS`), else :data:`DEFAULT_RANK`; disabled bindings rank lower."""
    name = binding_id or action
    rank = FOOTER_RANKS.get(name)
    if rank is None:
        rank = SUFFIX_RANKS.get(name.rpartition(".")[2], DEFAULT_RANK)
    if rank != PINNED_RANK and not enabled:
        rank += DISABLED_PENALTY
    return rank


@dataclass(frozen=True, slots=True)
class FooterEntry:
    """One key as the footer shows it."""

    key: str
    """The key that triggers it (what a click simulates)."""
    key_display: str
    description: str
    action: str
    enabled: bool
    tooltip: str
    rank: int

    @property
    def cells(self) -> int:
        """Its width on screen: `` key `` then ``description `` (see :class:`FooterKeyLabel`)."""
        return cell_len(self.key_display) + 2 + cell_len(self.description) + 1


def fit_keys(entries: Sequence[FooterEntry], width: int) -> list[FooterEntry]:
    """The entries that fit ``width`` cells, in their own order: taken by rank (then order),
    each one that still fits, so a narrow footer shows the most useful keys whole. Pinned
    entries are always taken (first, whatever their width)."""
    chosen: set[int] = set()
    used = 0
    ranked = sorted(range(len(entries)), key=lambda i: (entries[i].rank, i))
    for index in ranked:
        entry = entries[index]
        pinned = entry.rank == PINNED_RANK
        cost = entry.cells + (PINNED_BORDER if pinned else 0)
        if not pinned and used + cost > width:
            continue
        chosen.add(index)
        used += cost
    return [entry for i, entry in enumerate(entries) if i in chosen]


class FooterKeyLabel(Widget):
    """One key of :class:`KeysFooter`: `` key description ``; a click presses the key."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES: ClassVar[set[str]] = {"footer-key--key", "footer-key--description"}
    DEFAULT_CSS = """
    FooterKeyLabel {
        width: auto;
        height: 1;
        text-wrap: nowrap;
        background: $footer-item-background;
        .footer-key--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .footer-key--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        &:hover { background: $block-hover-background; }
        &.-disabled { text-style: dim; }
    }
    """

    def __init__(self, entry: FooterEntry, *, classes: str = "") -> None:
        super().__init__(classes=classes)
        self.entry = entry
        self.set_class(not entry.enabled, "-disabled")
        if entry.tooltip:
            self.tooltip = entry.tooltip

    def render(self) -> Content:
        entry = self.entry
        return Content.assemble(
            (f" {entry.key_display} ", self.get_visual_style("footer-key--key")),
            (f"{entry.description} ", self.get_visual_style("footer-key--description")),
        )

    def on_mouse_down(self, event: events.MouseDown) -> None:
        event.stop()
        if self.entry.enabled:
            self.app.simulate_key(self.entry.key)
        else:
            self.app.bell()


class KeysFooter(Footer):
    """A footer that drops the least useful keys first and always shows ``? Keys``.

    A drop-in for :class:`~textual.widgets.Footer` (it is one): it follows the screen's
    bindings the same way, and lays them out again when its width changes.
    """

    DEFAULT_CSS = """
    KeysFooter FooterKeyLabel.-pinned {
        dock: right;
        border-left: vkey $foreground 20%;
    }
    """

    def __init__(
        self,
        *,
        id: str | None = None,
        classes: str | None = None,
        show_command_palette: bool = True,
    ) -> None:
        super().__init__(id=id, classes=classes, show_command_palette=show_command_palette)
        self._laid_out_width = 0

    @property
    def shown(self) -> list[FooterEntry]:
        """The keys on screen now (the pinned help key last)."""
        return [label.entry for label in self.query(FooterKeyLabel)]

    def entries(self) -> list[FooterEntry]:
        """Every key the footer could show now: the screen's shown bindings (one per action,
        the first key of each), the command palette's and the key-help binding's."""
        app = self.app
        palette = app.COMMAND_PALETTE_BINDING if self.show_command_palette else None
        entries: list[FooterEntry] = []
        seen: set[str] = set()
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            wanted = binding.show or binding.action == HELP_ACTION or key == palette
            if not wanted or binding.action in seen:
                continue
            if key == palette and not app.ENABLE_COMMAND_PALETTE:
                continue
            seen.add(binding.action)
            entries.append(
                FooterEntry(
                    key=binding.key,
                    key_display=app.get_key_display(binding),
                    description=binding.description
                    or ("Commands" if key == palette else binding.action),
                    action=binding.action,
                    enabled=active.enabled,
                    tooltip=active.tooltip or binding.tooltip or binding.description,
                    rank=binding_rank(binding.id, binding.action, enabled=active.enabled),
                )
            )
        return entries

    def compose(self) -> ComposeResult:
        if not self.is_attached:
            return
        width = self.size.width or self.app.size.width
        self._laid_out_width = width
        yield from _labels(fit_keys(self.entries(), width))

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._laid_out_width:
            self.call_after_refresh(self.recompose)


def _labels(entries: Iterable[FooterEntry]) -> Iterable[FooterKeyLabel]:
    pinned: list[FooterKeyLabel] = []
    for entry in entries:
        if entry.rank == PINNED_RANK:
            pinned.append(FooterKeyLabel(entry, classes="-pinned"))
        else:
            yield FooterKeyLabel(entry)
    yield from pinned
