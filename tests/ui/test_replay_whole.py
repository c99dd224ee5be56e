"""``replay --instant`` of a long run (issue 13, bar 6) in a pilot: a synthetic run of many
deltas written to a real SQLite file by the store's writer, shown by the replay screen
whole: its text in one piece in the transcript (the plain view of a long answer), its
figures as stored, its deltas never read one by one."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from tests.ui.conftest import wait_until
from tui.config import SessionConfig
from tui.store import Store
from tui.store.replay import ReplayClock
from tui.store.whole import stored_metrics
from tui.stream.events import Connecting, Finished, RunEvent, Started, TextDelta, Usage
from tui.ui.screens.replay import ReplayScreen
from tui.ui.widgets.badges import FinishBadge
from tui.ui.widgets.metrics_bar import MetricsBar
from tui.ui.widgets.transcript import TranscriptView

DELTAS = 40_000
"""About 330 KB of answer: past the transcript's plain-text bound, fast to write."""


def _long_run() -> list[RunEvent]:
    events: list[RunEvent] = [
        Connecting(0.0, 1, "POST", "http://x/v1/chat/completions"),
        Started(0.002, 1, 200, "req"),
    ]
    events += [
        TextDelta(0.3 + i * 1e-4, f"word{i}" + ("\n\n" if i % 50 == 49 else " "))
        for i in range(DELTAS)
    ]
    end = 0.3 + DELTAS * 1e-4
    return [*events, Usage(end, 12, DELTAS), Finished(end + 0.01, "completed", "stop", "stop")]


class _Host(App[None]):
    def __init__(self, screen: ReplayScreen) -> None:
        super().__init__()
        self.replay = screen

    def on_mount(self) -> None:
        self.push_screen(self.replay)


async def test_an_instant_replay_of_a_long_run_shows_it_whole(tmp_path: Path) -> None:
    db = tmp_path / "long.db"
    session = SessionConfig(name="long", model="m", prompt="Go on.", api="chat")
    async with await Store.open(db) as writer:
        run_id = await writer.start_run(session, prompt=session.prompt)
        writer.add_events(run_id, _long_run())
    async with await Store.open(db, readonly=True) as store:
        run = await store.get_run(run_id)
        screen = ReplayScreen(store, run_id[:10], None)
        async with _Host(screen).run_test(size=(120, 40)) as pilot:
            view = screen.query_one(TranscriptView)
            await wait_until(
                pilot,
                lambda: screen.done and not view.has_pending,
                within=60.0,
                what="the whole run on screen",
            )
            assert screen.error is None
            assert len(run.output_text) > 250_000
            assert view.rendered_text == run.output_text and view.plain_mode
            # one piece of text: the deltas were not folded (nor read) one by one
            assert screen.accumulator is not None and screen.accumulator.done
            assert screen.accumulator.metrics().chunks == 1
            # the figures are the stored run's (the bar and badge take them on their next
            # update, which a loaded machine may run after the text is on screen)
            bar, badge = screen.query_one(MetricsBar), screen.query_one(FinishBadge)
            await wait_until(
                pilot,
                lambda: bar.snapshot == stored_metrics(run) and badge.status == "completed",
                what="the stored figures and the finish badge",
            )
            shown = bar.snapshot
            assert shown == stored_metrics(run)
            assert shown is not None and shown.chunks == DELTAS
            assert shown.output_tokens == DELTAS and shown.tokens_source == "usage"
            assert shown.ttft_ms is not None and abs(shown.ttft_ms - 300.0) < 1e-6
            assert (badge.status, badge.reason) == ("completed", "stop")
            # a timed replay plays every delta at its time; "i" shows the rest whole
            screen.clock = ReplayClock(0.25)
            screen.play()
            await wait_until(pilot, lambda: bool(view.text) and not screen.done, what="playing")
            assert view.text != run.output_text and screen.stored is None
            await pilot.press("i")
            await wait_until(
                pilot,
                lambda: screen.done and not view.has_pending,
                within=60.0,
                what="the rest at once",
            )
            assert view.rendered_text == run.output_text
            assert screen.accumulator is not None and screen.accumulator.metrics().chunks == 1
            await wait_until(
                pilot, lambda: bar.snapshot == stored_metrics(run), what="the stored figures"
            )
