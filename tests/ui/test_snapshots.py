"""Snapshot tests: fixed events fed into the real app with a fixed clock (no live timing)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Collapsible

from tests.ui.conftest import SHIPPED_THEMES, app_config, wait_until
from tui.config import SessionConfig
from tui.session import SessionController
from tui.stream.events import (
    Connecting,
    Finished,
    RawEvent,
    ReasoningDelta,
    Retrying,
    RunError,
    RunEvent,
    Started,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from tui.ui.app import TokentopApp
from tui.ui.widgets.session_pane import SessionPane

SnapCompare = Callable[..., bool]


class FixedClock:
    """A clock the feed moves by hand: ``clock.now`` is the time every reader sees."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


ANSWER = (
    "# Streaming, measured\n\n"
    "Time to first token is the wait **before** the first piece of text; the rest "
    "of the answer arrives as `deltas`.\n\n"
    "- TTFT: request sent → first delta\n"
    "- ITL: the gap between deltas\n\n"
    "```python\nasync for event in run:\n    print(event)\n```\n\n"
    "That is all there is to it."
)


def _words(text: str) -> list[str]:
    pieces: list[str] = []
    for i, word in enumerate(text.split(" ")):
        pieces.append(word if i == 0 else " " + word)
    return pieces


def _run_events(
    text: str,
    *,
    reasoning: str = "",
    tool: tuple[str, str] | None = None,
    finish: Finished | None = None,
    retry: Retrying | None = None,
    stop_after: int | None = None,
) -> list[RunEvent]:
    events: list[RunEvent] = [Connecting(0.0, 1, "POST", "http://sim.test/v1/responses")]
    t = 0.0
    if retry is not None:
        events.append(retry)
        events.append(Connecting(0.5, 2, "POST", "http://sim.test/v1/responses"))
        t = 0.5
    attempt = 2 if retry is not None else 1
    t += 0.05
    events.append(
        Started(t, attempt, 200, "req_snapshot", (("x-ratelimit-remaining-tokens", "9000"),))
    )
    t += 0.25
    for piece in _words(reasoning) if reasoning else []:
        events.append(ReasoningDelta(t, piece))
        t += 0.02
    if tool is not None:
        events.append(ToolCallDelta(t, 0, tool[1][:8], name=tool[0], call_id="call_1"))
        events.append(ToolCallDelta(t + 0.01, 0, tool[1][8:]))
        t += 0.02
    for n, piece in enumerate(_words(text)):
        if stop_after is not None and n >= stop_after:
            return events
        events.append(TextDelta(t, piece))
        events.append(RawEvent(t, attempt, "response.output_text.delta", '{"delta": "…"}'))
        t += 0.02
    events.append(Usage(t, 21, len(_words(text)) + len(_words(reasoning) if reasoning else [])))
    events.append(finish or Finished(t, "completed", "stop", "completed"))
    return events


def _feed(
    live: SessionController, clock: FixedClock, events: Sequence[RunEvent], run_id: str
) -> None:
    start = clock.now
    run = live.begin_run(live.prompt, run_id=run_id)
    for event in events:
        clock.now = start + event.t
        live.handle_event(run, event)


def _session(name: str, model: str, api: str = "responses", **kwargs: Any) -> SessionConfig:
    return SessionConfig(
        name=name,
        model=model,
        prompt="Explain TTFT.",
        base_url="http://sim.test/v1",
        api=api,  # type: ignore[arg-type]
        **kwargs,
    )


def _scenario() -> tuple[TokentopApp, Callable[[Pilot[Any]], Awaitable[None]], FixedClock]:
    clock = FixedClock()
    config = app_config(
        _session("answer", "sim"),
        _session("thinker", "sim-think"),
        _session("capped", "sim", api="chat", max_output_tokens=16),
        _session("down", "sim-broken"),
        _session("live", "sim-slow"),
    )
    app = TokentopApp(config, theme_dirs=[SHIPPED_THEMES], clock=clock, autostart=False)
    # no animation: a tab underline still sliding to its tab differs from the reference
    app.animation_level = "none"

    async def feed(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        by_name = {live.name: live for live in app.sessions}
        _feed(by_name["answer"], clock, _run_events(ANSWER), "run-answer")
        _feed(
            by_name["thinker"],
            clock,
            _run_events(
                "It is 7 · 11 · 13.",
                reasoning="1001 = 7 · 143 and 143 = 11 · 13, so it is not prime.",
                tool=("factor", '{"n": 1001}'),
            ),
            "run-thinker",
        )
        _feed(
            by_name["capped"],
            clock,
            _run_events(
                "A long answer that the token limit cuts",
                finish=Finished(2.0, "incomplete", "length", "length"),
            ),
            "run-capped",
        )
        error = RunError("http", "gave up after 1 retry: HTTP 502 Bad Gateway", 502, "req_x")
        _feed(
            by_name["down"],
            clock,
            [
                Connecting(0.0, 1, "POST", "http://sim.test/v1/responses"),
                Retrying(0.1, 1, 1, 0.5, "retry", RunError("http", "Bad Gateway", 502)),
                Connecting(0.6, 2, "POST", "http://sim.test/v1/responses"),
                Finished(0.7, "failed", "error", None, error),
            ],
            "run-down",
        )
        _feed(by_name["live"], clock, _run_events(ANSWER, stop_after=12), "run-live")
        await pilot.pause(0.3)
        # the failure toasts are batched: clear them once "down"'s has been shown
        main = app.main_screen
        assert main is not None and main.failures is not None
        failures = main.failures
        await wait_until(pilot, lambda: failures.shown >= 1, what="the failure toast")
        app.clear_notifications()
        await pilot.pause(0.3)

    return app, feed, clock


async def _settle_pane(pilot: Pilot[Any], pane: SessionPane) -> None:
    """Render everything buffered, then wait until two screens in a row are the same: layout,
    Markdown and animations are done however slow the machine is (fixed pauses were not
    enough on a loaded one)."""
    previous: str | None = None
    for _ in range(100):
        await pane.transcript.flush()
        pane.refresh_metrics()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause(0.1)
        shot = pilot.app.export_screenshot()
        if shot == previous:
            return
        previous = shot
    raise AssertionError("the pane never settled")


def test_overview_snapshot(snap_compare: SnapCompare) -> None:
    app, feed, _ = _scenario()
    assert snap_compare(app, terminal_size=(120, 24), run_before=feed)


def test_overview_light_theme_80x24_snapshot(snap_compare: SnapCompare) -> None:
    app, feed, _ = _scenario()

    async def light(pilot: Pilot[Any]) -> None:
        app.theme = "tokentop-light"
        await feed(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=light)


def test_session_pane_snapshot(snap_compare: SnapCompare) -> None:
    app, feed, _ = _scenario()

    async def open_thinker(pilot: Pilot[Any]) -> None:
        await feed(pilot)
        main = app.main_screen
        assert main is not None
        main.show_session("thinker")
        await pilot.pause(0.3)
        pane = main.current_pane
        assert pane is not None
        pane.query_one("#reasoning", Collapsible).collapsed = False
        await _settle_pane(pilot, pane)

    assert snap_compare(app, terminal_size=(100, 30), run_before=open_thinker)


def test_failed_session_snapshot(snap_compare: SnapCompare) -> None:
    app, feed, _ = _scenario()

    async def open_down(pilot: Pilot[Any]) -> None:
        await feed(pilot)
        main = app.main_screen
        assert main is not None
        main.show_session("down")
        pane = main.current_pane
        assert pane is not None
        await _settle_pane(pilot, pane)

    assert snap_compare(app, terminal_size=(100, 20), run_before=open_down)
