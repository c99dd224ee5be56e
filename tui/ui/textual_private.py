"""The one place that reads a private attribute of Textual (Textual 8 has no public API for it).

Each function here reads one private attribute and has a test in
``tests/ui/test_textual_private.py`` that fails when Textual renames or changes it.
"""

from __future__ import annotations

from textual.widget import Widget


def anchor_released(widget: Widget) -> bool:
    """True while the user has scrolled an anchored ``widget`` away from its end.

    Textual keeps the anchor (``is_anchored`` stays True) and sets a private flag when a
    user scroll releases it (``release_anchor()``); scrolling back to the end, or
    ``scroll_end()``, clears the flag. Only the flag tells a pinned view from a released one.
    """
    return widget._anchor_released
