"""The fast event constructors build exactly what the event classes build."""

from __future__ import annotations

import dataclasses

import pytest

from tui.stream.construct import raw_event, reasoning_delta, text_delta
from tui.stream.events import RawEvent, ReasoningDelta, TextDelta


def test_fast_constructors_equal_the_classes() -> None:
    cases = [
        (
            raw_event(1.5, 2, "response.created", "{}", "9"),
            RawEvent(1.5, 2, "response.created", "{}", "9"),
        ),
        (raw_event(0.0, 1, None, "", None), RawEvent(0.0, 1, None, "", None)),
        (text_delta(0.25, "héllo"), TextDelta(0.25, "héllo")),
        (reasoning_delta(3.0, "hm"), ReasoningDelta(3.0, "hm")),
    ]
    for fast, normal in cases:
        assert type(fast) is type(normal) and fast == normal and hash(fast) == hash(normal)
        assert repr(fast) == repr(normal)
        assert dataclasses.asdict(fast) == dataclasses.asdict(normal)  # type: ignore[call-overload]


def test_fast_events_stay_frozen() -> None:
    event = text_delta(0.1, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.text = "y"  # type: ignore[misc]
