"""The one place that reads private attributes of Textual (Textual 8 has no public API for them).

Each function here reads one private attribute and has a test in
``tests/ui/test_textual_private.py`` that fails when Textual renames or changes it.
"""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.widget import Widget


def anchor_released(widget: Widget) -> bool:
    """True while the user has scrolled an anchored ``widget`` away from its end.

    Textual keeps the anchor (``is_anchored`` stays True) and sets a private flag when a
    user scroll releases it (``release_anchor()``); scrolling back to the end, or
    ``scroll_end()``, clears the flag. Only the flag tells a pinned view from a released one.
    """
    return widget._anchor_released


def write_to_terminal(app: App[Any], data: str) -> bool:
    """Write ``data`` (an escape sequence) to the terminal through the app's driver, as
    Textual's own ``bell()`` and ``copy_to_clipboard()`` do; False when there is no driver
    or it is headless (tests), where nothing is written.

    The driver is private (``App._driver``); its ``write`` is the public method of
    :class:`textual.driver.Driver` that every driver implements, and Textual writes its own
    sequences between frames with it, so a sequence never lands inside a frame.
    """
    driver = app._driver
    if driver is None or driver.is_headless:
        return False
    driver.write(data)
    return True


def notifications_shown(app: App[Any]) -> int:
    """How many notifications (toasts) the app holds right now (``App._notifications``):
    tests check that a long run of failures or alerts never piles them up."""
    return len(app._notifications)
