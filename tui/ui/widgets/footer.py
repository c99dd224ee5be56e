"""KeysFooter: the key bar that keeps the most useful keys whole at any width.

Textual's :class:`~textual.widgets.Footer` lays every shown binding out in declaration order
and lets the ones past the right edge fall off, so on a narrow terminal the app's keys
(``q Quit``, ``c Compare``, ``h History``), declared last, are the ones that vanish.
:class:`KeysFooter` ranks the bindings instead (:func:`binding_rank`: a table by binding id,
then a rule for ``*.close``, then a default), keeps the best-ranked keys that fit the width
(:func:`fit_keys`), shows them in their usual order, and always pins the key-help binding
(action ``help``, ``? Keys``) to the right edge. Remapped keys (``[keymap]``) show as
remapped: the keys come from the screen's active bindings.

It is one widget that draws its line itself (:func:`lay_out` places the keys, ``render``
draws them, a click is mapped back to its key): a widget per key cost the dashboard's first
frame about 16 widgets to mount and style, and one stylesheet rebuild per widget class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.cells import cell_len
from textual import events
from textual.content import Content
from textual.style import Style
from textual.widget import Widget

if TYPE_CHECKING:
    from textual.screen import Screen

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
"""The cells of the rule drawn left of a pinned key."""

PINNED_RULE = "\N{LEFT ONE EIGHTH BLOCK}"
"""The rule left of a pinned key (Textual's ``vkey`` border, as its Footer draws it)."""


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
        """Its width on screen: `` key `` then ``description `` (see :class:`KeysFooter`)."""
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


@dataclass(frozen=True, slots=True)
class PlacedKey:
    """A key on the footer's line and the cells it covers (``start`` to ``end``, exclusive)."""

    entry: FooterEntry
    start: int
    end: int

    @property
    def pinned(self) -> bool:
        """Whether it is pinned to the right edge (with a rule on its left)."""
        return self.entry.rank == PINNED_RANK


def lay_out(entries: Sequence[FooterEntry], width: int) -> list[PlacedKey]:
    """The keys of ``entries`` that fit ``width`` (:func:`fit_keys`) placed on the line: the
    others side by side from the left edge in their own order, the pinned ones (each after a
    :data:`PINNED_RULE`) against the right edge, last."""
    fitted = fit_keys(entries, width)
    placed: list[PlacedKey] = []
    x = 0
    for entry in fitted:
        if entry.rank != PINNED_RANK:
            placed.append(PlacedKey(entry, x, x + entry.cells))
            x += entry.cells
    pinned = [entry for entry in fitted if entry.rank == PINNED_RANK]
    right = max(width, x + sum(PINNED_BORDER + entry.cells for entry in pinned))
    tail: list[PlacedKey] = []
    for entry in reversed(pinned):
        tail.append(PlacedKey(entry, right - entry.cells, right))
        right -= entry.cells + PINNED_BORDER
    return placed + tail[::-1]


class KeysFooter(Widget, can_focus=False):
    """A footer that drops the least useful keys first and always shows ``? Keys``.

    It follows the screen's bindings as Textual's :class:`~textual.widgets.Footer` does (the
    screen's ``bindings_updated_signal``, published when focus or a screen's bindings change),
    lays its keys out again for each width, and a click on a key presses it (a bell when
    the key is disabled). Each key is `` key `` then ``description ``, styled by the theme's
    footer colours through the component classes below.
    """

    ALLOW_SELECT = False
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "footer-key--item",
        "footer-key--key",
        "footer-key--description",
        "footer-key--hover",
        "footer-key--disabled",
        "footer-key--rule",
    }
    DEFAULT_CSS = """
    KeysFooter {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        text-wrap: nowrap;
        text-overflow: clip;
        .footer-key--item { background: $footer-item-background; }
        .footer-key--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .footer-key--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        .footer-key--hover { background: $block-hover-background; }
        .footer-key--disabled { text-style: dim; }
        .footer-key--rule { color: $foreground 20%; }
    }
    """

    def __init__(
        self,
        *,
        id: str | None = None,
        classes: str | None = None,
        show_command_palette: bool = True,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.show_command_palette = show_command_palette
        """Whether the command palette's key is one of the keys."""
        self._entries: list[FooterEntry] | None = None
        self._placed: tuple[int, list[PlacedKey]] | None = None
        self._hover: FooterEntry | None = None

    @property
    def placed(self) -> list[PlacedKey]:
        """The keys on the line at the footer's width now (the pinned help key last)."""
        width = self.size.width
        if self._entries is None or self._placed is None or self._placed[0] != width:
            self._placed = (width, lay_out(self._current_entries(), width))
        return self._placed[1]

    @property
    def shown(self) -> list[FooterEntry]:
        """The keys on screen now (the pinned help key last)."""
        return [key.entry for key in self.placed]

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

    def _current_entries(self) -> list[FooterEntry]:
        if self._entries is None:
            self._entries = self.entries()
            self._placed = None
        return self._entries

    def render(self) -> Content:
        parts: list[tuple[str, str | Style]] = []
        x = 0
        for key in self.placed:
            if key.pinned:
                rule_at = key.start - PINNED_BORDER
                if rule_at > x:
                    parts.append((" " * (rule_at - x), ""))
                parts.append((PINNED_RULE, self._style(key.entry, "footer-key--rule")))
            entry = key.entry
            parts.append((f" {entry.key_display} ", self._style(entry, "footer-key--key")))
            parts.append((f"{entry.description} ", self._style(entry, "footer-key--description")))
            x = key.end
        return Content.assemble(*parts)

    def _style(self, entry: FooterEntry, part: str) -> Style:
        layers = ["footer-key--item"]
        if entry == self._hover:
            layers.append("footer-key--hover")
        if not entry.enabled:
            layers.append("footer-key--disabled")
        return self.get_visual_style(*layers, part)

    def key_at(self, x: int) -> FooterEntry | None:
        """The key covering cell ``x`` of the line, if any."""
        for key in self.placed:
            if key.start <= x < key.end:
                return key.entry
        return None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[Any]) -> None:
        # as Textual's Footer: a blurred app keeps the keys it showed
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self._entries = None
            self.refresh()

    def on_mouse_down(self, event: events.MouseDown) -> None:
        offset = event.get_content_offset(self)
        entry = None if offset is None else self.key_at(offset.x)
        if entry is None:
            return
        event.stop()
        if entry.enabled:
            self.app.simulate_key(entry.key)
        else:
            self.app.bell()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        offset = event.get_content_offset(self)
        self._set_hover(None if offset is None else self.key_at(offset.x))

    def on_leave(self, event: events.Leave) -> None:
        self._set_hover(None)

    def _set_hover(self, entry: FooterEntry | None) -> None:
        if entry == self._hover:
            return
        self._hover = entry
        self.tooltip = (entry.tooltip or None) if entry is not None else None
        self.refresh()
