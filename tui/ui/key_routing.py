"""Typed keys that belong in a screen's text box, whatever order Textual delivers them in.

Textual hands each key to the widget focused *when the app reads the key*, and a binding's
action runs only once the key has bubbled up to the app. Keys that arrive together (a fast
typist, a paste-like burst, a busy loop) therefore all reach the widget that was focused
before the first of them was handled: after the key that focuses a box, the letters typed
behind it reach the old widget, and one that is a command (``h``: History) fires instead of
being typed. :func:`take_typed_key`, called from the screen's ``on_key`` (which sees a key
before the app's bindings do, in order), moves the focus to the box itself and gives the box
the letters that were meant for it.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.screen import Screen
from textual.widgets import Checkbox, Input, Select


def take_typed_key(
    screen: Screen[Any], box: Input, event: events.Key, *, focus_action: str, type_ahead: bool
) -> bool:
    """Route a printable key that reached ``screen`` without going through ``box``.

    - The box has the focus (moved there by a key just before): the key is text for it.
    - The key is bound to ``focus_action`` (the screen's "focus the box" action, by its
      name, so a remapped key works too): the focus moves now, before the next key.
    - ``type_ahead``: a key that is no binding, outside a checkbox or select, starts typing
      in the box.

    Returns True when the key was taken (the event is stopped); False leaves it to the
    bindings.
    """
    if not event.is_printable or event.character is None:
        return False
    focused = screen.focused
    if focused is not box:
        if isinstance(focused, Checkbox | Select):
            return False
        active = screen.active_bindings.get(event.key)
        if active is not None:
            if active.binding.action != focus_action:
                return False
            event.stop()
            event.prevent_default()
            screen.set_focus(box)
            return True
        if not type_ahead:
            return False
        screen.set_focus(box)
    event.stop()
    event.prevent_default()
    box.insert_text_at_cursor(event.character)
    return True
