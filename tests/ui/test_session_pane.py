"""Session pane actions: cancel, restart, edit prompt, copy, follow, raw view; background tabs,
repeat history and the reconnect status."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import TextArea

from tests.ui.conftest import app_config, quit_app, settle, sim_session, wait_until
from tui.session import SessionController, SessionRun
from tui.stream.events import Retrying, RunEvent, Started, TextDelta
from tui.ui.app import TokentopApp
from tui.ui.screens.main import MainScreen
from tui.ui.screens.prompt import PromptEditor
from tui.ui.style import STATE_CLASSES
from tui.ui.widgets.session_pane import SessionPane

SLOW = "ttft=0.02,tps=40,tokens=4000"


def _main(app: TokentopApp) -> MainScreen:
    screen = app.main_screen
    assert screen is not None
    return screen


async def _open(app: TokentopApp, pilot: Any, name: str) -> SessionPane:
    await wait_until(pilot, lambda: app.main_screen is not None and bool(app.sessions))
    main = _main(app)
    main.show_session(name)
    await pilot.pause()
    pane = main.current_pane
    assert pane is not None and pane.live.name == name
    return pane


async def test_cancel_restart_and_edit_prompt(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(sim_session(sim_url, "slow", timing=SLOW, key=sim_key))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await _open(app, pilot, "slow")
        live = pane.live
        await wait_until(pilot, lambda: live.state == "streaming")
        await wait_until(pilot, lambda: len(pane.transcript.text) > 0, what="first text")

        await pilot.press("x")
        await wait_until(pilot, lambda: live.state == "cancelled", what="cancel")
        assert live.current is not None and live.current.finished is not None
        assert live.current.finished.reason == "cancelled"
        await settle(pilot)
        assert pane.badge.has_class("-cancelled")
        first_run = live.current.run_id

        await pilot.press("r")
        await wait_until(
            pilot, lambda: live.current is not None and live.current.run_id != first_run
        )
        await wait_until(pilot, lambda: live.state == "streaming", what="restarted")
        assert pane.badge.status is None  # live again

        # Edit the prompt: the modal opens with the current prompt; ctrl+s runs the new one.
        await pilot.press("e")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, PromptEditor)
        assert editor.text == live.prompt
        editor.query_one(TextArea).text = "A brand new question?"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is _main(app)
        await wait_until(
            pilot,
            lambda: live.current is not None and live.current.prompt == "A brand new question?",
            what="edited run",
        )
        assert live.prompt == "A brand new question?"
        assert live.runs_started == 3
        # The runs that were replaced ended as cancelled (recorded), not silently dropped.
        assert [h.status for h in live.history] == ["cancelled", "cancelled"]
        await pilot.press("x")
        await wait_until(pilot, lambda: not live.running, what="stopped")

        # Escape leaves the prompt alone.
        await pilot.press("e")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is _main(app) and live.runs_started == 3


async def test_copy_follow_and_raw_view(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    long = "ttft=0.01,tps=2000,tokens=1500"
    config = app_config(sim_session(sim_url, "long", timing=long, key=sim_key))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await _open(app, pilot, "long")
        live = pane.live
        await wait_until(pilot, lambda: live.state == "done")
        assert live.current is not None
        answer = live.current.accumulator.output_text
        # the flushes render the last chunks a moment after the run ended
        await wait_until(pilot, lambda: pane.transcript.rendered_text == answer, what="render")
        await settle(pilot)

        await pilot.press("y")
        assert app.clipboard == answer

        # Following: pinned to the end; scrolling up stops it; "f" toggles it back.
        transcript = pane.transcript
        await wait_until(pilot, lambda: transcript.max_scroll_y > 0, what="overflow")
        await wait_until(pilot, lambda: transcript.scroll_y == transcript.max_scroll_y)
        assert pane.follow
        transcript.focus()
        await pilot.press("pageup")
        await pilot.pause()
        assert not pane.follow
        assert transcript.scroll_y < transcript.max_scroll_y
        await pilot.press("f")
        await pilot.pause()
        assert pane.follow and transcript.scroll_y == transcript.max_scroll_y
        await pilot.press("f")
        assert not pane.follow

        # Raw view: every server event of the attempt, with the request id header line.
        await pilot.press("v")
        await settle(pilot)
        assert pane.raw and transcript.display is False
        raw = pane.raw_log
        assert raw.region.height > 0 and transcript.region.height == 0
        lines = list(raw.lines)
        started = next(e for e in live.current.attempt_events if isinstance(e, Started))
        assert any("HTTP 200" in line and str(started.request_id) in line for line in lines)
        assert sum(1 for line in lines if "response.output_text.delta" in line) > 100
        assert any("older events not kept" in line for line in lines)  # 1,500 tokens
        await pilot.press("v")
        await pilot.pause()
        assert not pane.raw and transcript.region.height > 0


async def test_background_tab_unread_marker_and_notification(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = app_config(
        sim_session(sim_url, "front", timing=SLOW, key=sim_key),
        sim_session(sim_url, "back", key=sim_key, timing="ttft=0.3,tps=300,tokens=100"),
        sim_session(sim_url, "back-fail", model="sim-broken", key=sim_key),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    notes: list[tuple[str, str]] = []
    original = app.notify

    def record(message: str, **kwargs: Any) -> None:
        notes.append((message, str(kwargs.get("severity", "information"))))
        original(message, **kwargs)

    monkeypatch.setattr(app, "notify", record)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open(app, pilot, "front")
        main = _main(app)
        back_pane = main.query_one("#pane-1", SessionPane)
        await wait_until(pilot, lambda: back_pane.unread, what="unread")
        await wait_until(
            pilot, lambda: app.sessions[1].state == "done" and app.sessions[2].state == "failed"
        )
        tab = main.tabs.get_tab("session-1")
        await wait_until(
            pilot, lambda: tab.has_class("-unread") and tab.has_class(*STATE_CLASSES["done"])
        )
        assert "✓" in str(tab.label) and "•" in str(tab.label)
        assert main.tabs.get_tab("session-2").has_class(*STATE_CLASSES["failed"])
        # the tab's 4 Hz refresh can beat the bubbling RunFinished to it: wait for the toast
        await wait_until(
            pilot, lambda: any("back finished" in m for m, _ in notes), what="finished toast"
        )
        # failure toasts are batched (one per burst): this one shows a moment later
        await wait_until(
            pilot,
            lambda: any("back-fail failed" in m and sev == "error" for m, sev in notes),
            what="the failure toast",
        )
        # Hidden panes buffered: nothing rendered until shown; then it is all there.
        assert back_pane.transcript.rendered_text == ""
        main.show_session("back")
        await settle(pilot)
        assert not back_pane.unread and not tab.has_class("-unread")
        live = app.sessions[1]
        assert live.current is not None
        assert back_pane.transcript.rendered_text == live.current.accumulator.output_text


async def test_repeat_session_shows_run_history(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    from tui.config import Repeat

    config = app_config(
        sim_session(sim_url, "probe", key=sim_key, repeat=Repeat(every_s=0.2, count=3)),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await _open(app, pilot, "probe")
        live = pane.live
        await wait_until(pilot, lambda: len(live.history) == 3, what="three runs")
        await wait_until(pilot, lambda: not live.running)
        await settle(pilot)
        history = pane.query_one("#history")
        assert history.region.height == 1
        text = str(history.render())
        assert "runs 3" in text and "TTFT" in text and "tok/s" in text
        assert all(h.status == "completed" for h in live.history)


async def test_repeat_every_s_counts_from_one_start_to_the_next(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    from tui.config import Repeat

    # a run of ~0.8 s every 1 s: the second starts ~1 s after the first, not 1.8 s (the
    # 0.6 s between them is room for a loaded machine's late wake-up). The starts are the
    # runs' own (engine side), not when the UI heard of them.
    session = sim_session(
        sim_url,
        "pulse",
        key=sim_key,
        timing="ttft=0.6,tps=100,tokens=20",
        repeat=Repeat(every_s=1.0, count=2),
    )
    app = TokentopApp(app_config(session), theme_dirs=theme_dirs, autostart=False)
    starts: list[float] = []

    class Starts(_Recorder):
        def run_started(self, live: SessionController, run: SessionRun) -> None:
            starts.append(run.started_mono)

    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.begun, what="start")
        live = app.sessions[0]
        live.subscribe(Starts())
        live.start()
        await wait_until(pilot, lambda: len(live.history) == 2, what="two runs")
    assert len(starts) == 2
    assert 0.95 <= starts[1] - starts[0] < 1.6


class _Recorder:
    """A SessionListener that keeps every event (to check what the views were told)."""

    def __init__(self) -> None:
        self.events: list[RunEvent] = []

    def run_started(self, live: SessionController, run: SessionRun) -> None:
        self.events.clear()

    def run_events(
        self, live: SessionController, run: SessionRun, events: Sequence[RunEvent]
    ) -> None:
        self.events.extend(events)


async def test_reconnect_status_through_a_429(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(
            sim_url,
            "limited",
            key=sim_key,
            headers={"X-Sim-Fault": "status=429,retry_after=1.5"},
        )
    )
    app = TokentopApp(config, theme_dirs=theme_dirs, autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await _open(app, pilot, "limited")
        live = pane.live
        recorder = _Recorder()
        live.subscribe(recorder)
        live.start()
        status = pane.reconnect_status
        # The status changes in the same call as the session state: check it at once.
        await wait_until(pilot, lambda: status.tone == "retrying", what="retrying")
        assert live.state == "retrying"
        assert status.message.startswith("retrying 1/1 in ") and "(HTTP 429)" in status.message
        await wait_until(pilot, lambda: live.state == "done", what="done after retry")
        await wait_until(
            pilot, lambda: status.message == "connected on attempt 2", what="the connected line"
        )
        assert any(isinstance(e, Retrying) for e in recorder.events)


async def test_drops_resume_or_restart_and_the_pane_ends_with_the_engine_text(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    from tui.config import ReconnectPolicy

    policy = {"backoff_initial_s": 0.05, "backoff_max_s": 0.1, "max_retries": 2}
    config = app_config(
        sim_session(
            sim_url,
            "resumes",
            model="sim-flaky",
            background=True,
            key=sim_key,
            reconnect=ReconnectPolicy(on_drop="resume", **policy),  # type: ignore[arg-type]
        ),
        sim_session(
            sim_url,
            "restarts",
            api="chat",
            key=sim_key,
            headers={"X-Sim-Fault": "drop=30"},
            reconnect=ReconnectPolicy(on_drop="restart", **policy),  # type: ignore[arg-type]
        ),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: len(app.sessions) == 2)
        main = _main(app)
        await wait_until(pilot, lambda: all(s.state == "done" for s in app.sessions), what="done")
        for index, live in enumerate(app.sessions):
            main.show_session(live.name)
            pane = main.query_one(f"#pane-{index}", SessionPane)
            await wait_until(pilot, lambda: not pane.transcript.has_pending)  # noqa: B023
            await settle(pilot)
            assert live.current is not None
            acc = live.current.accumulator
            assert pane.transcript.rendered_text == acc.output_text
            assert len(acc.attempts) == 2
        resumed = main.query_one("#pane-0", SessionPane).reconnect_status
        assert resumed.tone == "resumed" and resumed.message.startswith("resumed after event ")
        restarted = main.query_one("#pane-1", SessionPane)
        assert any("restarted" in n for n in restarted.transcript.notices)


async def test_reconnect_status_says_gave_up_once(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    from tui.config import ReconnectPolicy

    # The engine's final error already reads "gave up after N retries: <cause>".
    policy = ReconnectPolicy(max_retries=2, backoff_initial_s=0.02, backoff_max_s=0.05)
    config = app_config(
        sim_session(sim_url, "down", model="sim-broken", key=sim_key, reconnect=policy)
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await _open(app, pilot, "down")
        live = pane.live
        await wait_until(pilot, lambda: live.state == "failed", what="failed")
        status = pane.reconnect_status
        await wait_until(pilot, lambda: status.tone == "failed", what="failed status")
        assert live.current is not None and live.current.finished is not None
        error = live.current.finished.error
        assert error is not None and error.message.startswith("gave up after 2 retries: ")
        assert status.message == error.message
        assert status.message.count("gave up after") == 1
        await settle(pilot)
        assert str(status.render()).count("gave up after") == 1
        banner = str(pane.query_one("#pane-error").render())
        assert banner.count("gave up after") == 1


def _markdown_stream_tasks() -> list[asyncio.Task[Any]]:
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and "MarkdownStream._run" in repr(task.get_coro())
    ]


async def test_exit_mid_stream_leaves_no_markdown_stream_task_pending(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    loop = asyncio.get_running_loop()
    reports: list[dict[str, Any]] = []
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    try:
        config = app_config(
            sim_session(sim_url, "shown", timing=SLOW, key=sim_key, model="sim-think"),
            sim_session(sim_url, "hidden", timing=SLOW, key=sim_key),
        )
        app = TokentopApp(config, theme_dirs=theme_dirs)
        async with app.run_test(size=(120, 40)) as pilot:
            pane = await _open(app, pilot, "shown")
            # Streams are open on the answer and the reasoning when the app quits.
            await wait_until(
                pilot,
                lambda: (
                    len(pane.transcript.rendered_text) > 20 and pane.transcript.reasoning_text != ""
                ),
                what="streaming into the Markdown widgets",
            )
            assert _markdown_stream_tasks()
            await quit_app(pilot)
        assert _markdown_stream_tasks() == []
        gc.collect()
        await asyncio.sleep(0)
        destroyed = [c for c in reports if "Task was destroyed" in str(c.get("message"))]
        assert destroyed == []
    finally:
        loop.set_exception_handler(previous_handler)


@pytest.mark.parametrize("plain_after", [None, 40], ids=["markdown", "plain"])
async def test_repeat_second_run_shows_its_own_text_even_after_a_slow_flush(
    sim_url: str,
    sim_key: str,
    theme_dirs: list[Path | None],
    monkeypatch: pytest.MonkeyPatch,
    plain_after: int | None,
) -> None:
    from tui.config import Repeat
    from tui.ui.widgets import answer as answer_module
    from tui.ui.widgets.transcript import TranscriptView

    if plain_after is not None:  # the first flush switches to the plain view
        monkeypatch.setattr(answer_module, "PLAIN_AFTER_CHARS", plain_after)
    config = app_config(
        sim_session(
            sim_url,
            "probe",
            key=sim_key,
            timing="ttft=0.02,tps=80,tokens=200",
            repeat=Repeat(every_s=0.01, count=2),
        )
    )
    app = TokentopApp(config, theme_dirs=theme_dirs, autostart=False)
    # The pane's first flush of run 1 is held until run 2 streams: a flush that was still
    # writing when the next run began (a busy machine, a long Markdown layout).
    held: list[TranscriptView] = []
    second_run_streams = asyncio.Event()
    write_answer = TranscriptView._write_answer

    async def slow_write_answer(self: TranscriptView, chunk: str, generation: int) -> None:
        if not held and self.id == "transcript":
            held.append(self)
            await second_run_streams.wait()
        await write_answer(self, chunk, generation)

    class SecondRunText(_Recorder):
        def run_events(
            self, live: SessionController, run: SessionRun, events: Sequence[RunEvent]
        ) -> None:
            if live.runs_started >= 2 and any(isinstance(e, TextDelta) for e in events):
                second_run_streams.set()

    monkeypatch.setattr(TranscriptView, "_write_answer", slow_write_answer)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await _open(app, pilot, "probe")
        live = pane.live
        live.subscribe(SecondRunText())
        live.start()
        await wait_until(pilot, lambda: live.runs_started == 2, what="second run")
        second = live.current
        assert second is not None and held
        view = pane.transcript
        # While the second run streams, the pane shows its text (and only its text).
        # (has_output: a flush of this run's text happened; the runs' texts are equal, so
        # a leftover of the first run shows as text that is no prefix of the second's.)
        await wait_until(
            pilot,
            lambda: (
                view.has_output
                and bool(view.rendered_text)
                and second.accumulator.output_text.startswith(view.rendered_text)
            ),
            what="the second run's text in the pane",
        )
        assert not second.done
        await wait_until(pilot, lambda: not live.running, what="end")
        await wait_until(pilot, lambda: not view.has_pending, what="flushed")
        await settle(pilot)
        assert view.rendered_text == second.accumulator.output_text
        # One widget holds the answer: nothing of the first run is left over.
        assert len(view.query_one("#answer").children) == 1


async def test_a_failing_transcript_render_is_logged_not_fatal(
    sim_url: str,
    sim_key: str,
    theme_dirs: list[Path | None],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tui.ui.widgets.answer import MarkdownFeed

    write = MarkdownFeed.write
    failures: list[str] = []

    async def write_failing_once(self: Any, text: str) -> None:
        if not failures:
            failures.append(text)
            raise RuntimeError("render broke")
        await write(self, text)

    monkeypatch.setattr(MarkdownFeed, "write", write_failing_once)
    # a stream long enough that text still comes after the failed render (a fast one can
    # arrive in one batch, all of it in the render that fails)
    config = app_config(
        sim_session(sim_url, "one", key=sim_key, timing="ttft=0.02,tps=40,tokens=60")
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await _open(app, pilot, "one")
        await wait_until(pilot, lambda: bool(failures), what="the failed render")
        await wait_until(pilot, lambda: pane.live.state == "done", what="done")
        # The app goes on, and so does the transcript with the text that came later.
        transcript = pane.transcript
        await wait_until(
            pilot,
            lambda: (
                len(transcript.rendered_text) > 20
                and transcript.text.endswith(transcript.rendered_text[-20:])
            ),
            what="the text that came after the failed render, rendered to its end",
        )
        assert app.is_running
        assert any("transcript flush failed" in r.getMessage() for r in caplog.records)
