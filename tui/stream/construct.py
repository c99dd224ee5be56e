"""Fast constructors for the events built once per streamed chunk.

``events.py`` defines frozen, slotted dataclasses; their generated ``__init__`` assigns each
field with ``object.__setattr__``, which looks the slot descriptor up every time. At 100k
chunks/s that is a visible share of the budget, so the hot events (``RawEvent``,
``TextDelta``, ``ReasoningDelta``) are built here with pre-bound slot setters instead: about
half the cost, same objects (equal, hashable, frozen).

The shortcut is only taken when it is provably equivalent: the class has exactly the
expected fields, no ``__post_init__``, and a probe object compares equal to one built by the
class itself. Otherwise the class is used as is, so a change to ``events.py`` can never
produce wrong events, only slower ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from tui.stream.events import RawEvent, ReasoningDelta, TextDelta

__all__ = ["raw_event", "reasoning_delta", "text_delta"]

E = TypeVar("E")


def _fast(cls: type[E], fields: tuple[str, ...], probe: tuple[Any, ...]) -> Callable[..., E]:
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    if names != fields or hasattr(cls, "__post_init__"):
        return cls
    setters = [getattr(cls, name).__set__ for name in fields]
    new = object.__new__

    if len(fields) == 2:
        set_a, set_b = setters

        def build2(a: Any, b: Any) -> E:
            obj = new(cls)
            set_a(obj, a)
            set_b(obj, b)
            return obj

        factory: Callable[..., E] = build2
    elif len(fields) == 5:
        s1, s2, s3, s4, s5 = setters

        def build5(a: Any, b: Any, c: Any, d: Any, e: Any) -> E:
            obj = new(cls)
            s1(obj, a)
            s2(obj, b)
            s3(obj, c)
            s4(obj, d)
            s5(obj, e)
            return obj

        factory = build5
    else:  # pragma: no cover - only the shapes above are used
        return cls
    try:
        if factory(*probe) != cls(*probe):
            return cls
    except Exception:  # pragma: no cover - a changed class: use it as it is
        return cls
    return factory


raw_event: Callable[[float, int, str | None, str, str | None], RawEvent] = _fast(
    RawEvent, ("t", "attempt", "event", "data", "id"), (0.5, 1, "e", "d", "7")
)
"""``RawEvent(t, attempt, event, data, id)``, fast."""
text_delta: Callable[[float, str], TextDelta] = _fast(TextDelta, ("t", "text"), (0.5, "x"))
"""``TextDelta(t, text)``, fast."""
reasoning_delta: Callable[[float, str], ReasoningDelta] = _fast(
    ReasoningDelta, ("t", "text"), (0.5, "x")
)
"""``ReasoningDelta(t, text)``, fast."""
