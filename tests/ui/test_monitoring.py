"""Monitoring in the dashboard: the header's run counts, the overview's figures over a window,
the monitor view, alerts, the quit guard and bounded memory over many runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Sparkline, Static

from tests.ui.conftest import app_config, sim_session, wait_until
from tui.config import AlertRules, ReconnectPolicy, Repeat
from tui.session import HISTORY_LIMIT, RAW_EVENT_LIMIT
from tui.store import Store
from tui.ui.app import TokentopApp
from tui.ui.screens.monitor import SERIES_BUCKETS, MonitorScreen
from tui.ui.screens.quit import QuitConfirm
from tui.ui.style import ALERT_CLASS, ALERT_GLYPH
from tui.ui.terminal_notify import (
    TEXT_LIMIT,
    clean,
    notification,
    osc9,
    osc777,
    osc_kinds,
    tmux_passthrough,
)
from tui.ui.textual_private import notifications_shown
from tui.ui.widgets.overview import OverviewTable
from tui.ui.widgets.overview_rows import COLUMNS
from tui.ui.widgets.totals import TotalsBar

TINY = "ttft=0,tps=5000,tokens=3"
"""A run of a few milliseconds on the simulator."""


def _fast(count: int) -> Repeat:
    """``count`` runs one after the other."""
    return Repeat(every_s=0.01, count=count)


def _no_retry() -> ReconnectPolicy:
    return ReconnectPolicy(max_retries=0)


async def test_header_counts_every_finished_run_of_a_repeating_session(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(
            sim_url, "probe", key=sim_key, timing=TINY, repeat=Repeat(every_s=0.01, count=6)
        ),
        sim_session(sim_url, "broken", model="sim-broken", key=sim_key),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(
            pilot, lambda: not any(s.running for s in app.sessions) and app.begun, what="runs"
        )
        bar = app.screen.query_one(TotalsBar)
        bar.refresh_totals()
        totals = str(bar.render())
        assert "6 done" in totals and "1 failed" in totals, totals
        assert app.monitoring.tally.counts["probe"].completed == 6


def _overview(app: TokentopApp) -> OverviewTable:
    main = app.main_screen
    assert main is not None
    return main.overview


def _cell(overview: OverviewTable, name: str, key: str) -> str:
    return str(overview.table.get_cell(name, key))


async def test_overview_figures_come_from_the_store_and_survive_a_restart(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    db = tmp_path / "runs.db"
    config = app_config(
        sim_session(
            sim_url, "probe", key=sim_key, timing=TINY, repeat=Repeat(every_s=0.01, count=4)
        ),
        sim_session(sim_url, "down", model="sim-broken", key=sim_key),
    )
    app = TokentopApp(config, db_path=db, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        overview = _overview(app)
        await wait_until(
            pilot, lambda: not any(s.running for s in app.sessions) and app.begun, what="runs"
        )
        await wait_until(
            pilot, lambda: _cell(overview, "probe", "runs") == "4", what="4 runs from the store"
        )
        assert app.monitoring.figures.from_store and app.monitoring.figures.reads >= 1
        assert _cell(overview, "probe", "ok") == "100%"
        assert _cell(overview, "down", "ok") == "0%"
        assert _cell(overview, "probe", "p95").endswith("ms")
        assert "last hour" in str(overview.query_one("#overview-caption", Static).render())
    # a new dashboard on the same database starts with the figures of the earlier runs
    again = TokentopApp(config, db_path=db, theme_dirs=theme_dirs, autostart=False)
    async with again.run_test(size=(120, 40)) as pilot:
        overview = _overview(again)
        await wait_until(
            pilot, lambda: _cell(overview, "probe", "runs") == "4", what="stored figures"
        )
        assert _cell(overview, "down", "runs") == "1"


async def test_overview_without_a_store_uses_the_runs_in_memory_and_says_so(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(
            sim_url, "probe", key=sim_key, timing=TINY, repeat=Repeat(every_s=0.01, count=3)
        ),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        overview = _overview(app)
        await wait_until(pilot, lambda: _cell(overview, "probe", "runs") == "3", what="3 runs")
        assert not app.monitoring.figures.from_store and app.monitoring.figures.reads == 0
        assert "no store" in str(overview.query_one("#overview-caption", Static).render())


async def test_figures_are_read_once_per_burst_of_finished_runs(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        *(
            sim_session(
                sim_url, f"p{i}", key=sim_key, timing=TINY, repeat=Repeat(every_s=0.01, count=10)
            )
            for i in range(3)
        )
    )
    app = TokentopApp(config, db_path=tmp_path / "runs.db", theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        overview = _overview(app)
        await wait_until(
            pilot,
            lambda: all(_cell(overview, f"p{i}", "runs") == "10" for i in range(3)),
            what="every run counted",
        )
        # 30 runs ended within a few seconds: a handful of reads (debounced), not 30
        assert app.monitoring.tally.total().finished == 30
        assert app.monitoring.figures.reads < 15


@pytest.mark.parametrize("width", [80, 100, 200])
async def test_overview_drops_the_least_important_columns_when_narrow(
    width: int, sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(*(sim_session(sim_url, f"session-{i}", key=sim_key) for i in range(3)))
    app = TokentopApp(config, theme_dirs=theme_dirs, autostart=False)
    async with app.run_test(size=(width, 30)) as pilot:
        overview = _overview(app)
        await wait_until(pilot, lambda: overview.table.row_count == 3, what="rows")
        await pilot.pause()
        keys = [c.key for c in overview.columns]
        table = overview.table
        # every column shown whole: the table's columns fit in the width
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= width
        assert keys[:2] == ["state", "name"]
        assert {"ttft", "rate", "runs", "ok", "p95"} <= set(keys)  # monitoring first
        if width <= 100:
            assert "trend" not in keys and "api" not in keys
        if width >= 200:
            assert set(keys) == {c.key for c in COLUMNS}


# -- quit guard ----


async def test_quit_asks_while_runs_are_active_and_stays_on_no(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    slow = "ttft=0.02,tps=40,tokens=4000"
    config = app_config(
        sim_session(sim_url, "slow", key=sim_key, timing=slow),
        sim_session(sim_url, "probe", key=sim_key, timing=TINY, repeat=Repeat(every_s=30)),
    )
    app = TokentopApp(config, db_path=tmp_path / "runs.db", theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(
            pilot,
            lambda: app.sessions[0].state == "streaming" and app.sessions[1].state == "waiting",
            what="one run streaming, one repeat waiting",
        )
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitConfirm), what="question")
        assert isinstance(app.screen, QuitConfirm)
        assert app.screen.question == "1 run active, 1 session repeating — quit?"
        await pilot.press("q")  # a second q does not stack a second question
        assert sum(isinstance(s, QuitConfirm) for s in app.screen_stack) == 1
        await pilot.press("n")
        assert app.is_running and not isinstance(app.screen, QuitConfirm)
        assert app.sessions[0].running and app.sessions[1].running
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitConfirm), what="asked again")
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.is_running, what="quit")
    async with await Store.open(tmp_path / "runs.db", readonly=True) as store:
        runs = await store.list_runs(limit=10)
    assert [r.status for r in runs if r.session == "slow"] == ["cancelled"]


async def test_quit_at_once_when_idle_or_when_confirm_quit_is_off(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    idle = TokentopApp(
        app_config(sim_session(sim_url, "one", key=sim_key)), theme_dirs=theme_dirs, autostart=False
    )
    async with idle.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: idle.begun, what="start")
        await pilot.press("q")
        await wait_until(pilot, lambda: not idle.is_running, what="quit at once")
    slow = sim_session(sim_url, "slow", key=sim_key, timing="ttft=0.02,tps=40,tokens=4000")
    base = app_config(slow)
    config = replace(base, ui=replace(base.ui, confirm_quit=False))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.sessions[0].state == "streaming", what="streaming")
        await pilot.press("q")
        await wait_until(pilot, lambda: not app.is_running, what="quit without asking")


# -- alerts ----


async def test_alerts_mark_row_and_tab_until_acknowledged_with_one_toast_per_burst(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = sim_session(
        sim_url,
        "down",
        model="sim-broken",
        key=sim_key,
        timing=TINY,
        reconnect=ReconnectPolicy(max_retries=0),
        repeat=Repeat(every_s=0.01, count=6),
        alerts=AlertRules(on_failure=True),
    )
    healthy = sim_session(sim_url, "fine", key=sim_key, timing=TINY)
    app = TokentopApp(app_config(failing, healthy), theme_dirs=theme_dirs)
    written: list[str] = []
    bells: list[int] = []
    app.monitoring.alert_display.write = written.append
    app.monitoring.alert_display.env = {"TERM": "foot"}
    monkeypatch.setattr(app, "bell", lambda: bells.append(1))
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main_screen
        assert main is not None
        monitor = app.monitoring.alerts
        assert monitor is not None
        await wait_until(pilot, lambda: monitor.count("down") == 6, what="six alerts")
        await wait_until(pilot, lambda: not app.sessions[0].running, what="schedule over")
        display = app.monitoring.alert_display
        await wait_until(pilot, lambda: display.toasts.shown >= 1, what="a toast")
        # six alerts within a moment: one toast (or two, if the burst straddled the gather)
        assert display.toasts.shown <= 2 and display.toasts.pending <= 5
        assert len(bells) == display.toasts.shown == display.notifications == len(written)
        assert written[0].startswith("\x1b]777;notify;tokentop alert;")
        assert all(not any(c in w[1:-1] for c in "\x1b\x07") for w in written)
        assert notifications_shown(app) <= 3  # the alert toast, maybe a failure toast
        # the row and the tab show the alert, not just "failed"
        tab = main.tabs.get_tab("session-0")
        await wait_until(pilot, lambda: tab.has_class(ALERT_CLASS), what="alert tab")
        assert str(tab.label).startswith(ALERT_GLYPH)
        overview = main.overview
        await wait_until(
            pilot,
            lambda: _cell(overview, "down", "state").startswith(ALERT_GLYPH),
            what="alert row",
        )
        assert not _cell(overview, "fine", "state").startswith(ALERT_GLYPH)
        assert ALERT_GLYPH in str(main.query_one(TotalsBar).render())
        # "a" on the selected row acknowledges that session only
        overview.table.focus()
        await pilot.press("home")
        assert overview.selected_session is app.sessions[0]
        await pilot.press("a")
        assert monitor.count("down") == 0
        await wait_until(pilot, lambda: not tab.has_class(ALERT_CLASS), what="acknowledged")
        await wait_until(
            pilot, lambda: _cell(overview, "down", "state") == "✖ failed", what="row back"
        )


def test_notification_text_never_carries_control_characters() -> None:
    hostile = "boom\x1b]52;c;ZXZpbA==\x07 \x9b31m\u202eevil\r\nnext\tline"
    cleaned = clean(hostile)
    assert cleaned == "boom]52;c;ZXZpbA== 31mevil next line"
    assert len(clean("x" * 1000)) == TEXT_LIMIT
    assert osc9("5 runs failed") == "\x1b]9;· 5 runs failed\x07"  # ConEmu's 9;<digit>
    assert osc777("a;b", "body; more") == "\x1b]777;notify;a,b;body; more\x07"
    wrapped = tmux_passthrough("\x1b]9;hi\x07")
    assert wrapped == "\x1bPtmux;\x1b\x1b]9;hi\x07\x1b\\"
    assert notification("t", "b", {"TERM_PROGRAM": "iTerm.app"}) == "\x1b]9;t: b\x07"
    assert notification("t", "b", {"TERM": "foot"}) == "\x1b]777;notify;t;b\x07"
    assert osc_kinds({"TERM": "xterm-256color"}) == ("osc9", "osc777")  # not known: both
    assert osc_kinds({"TERM": "xterm-ghostty"}) == ("osc9",)
    in_tmux = notification("t", "b", {"TMUX": "/tmp/tmux-0/default,1,0", "TERM": "tmux-256color"})
    assert in_tmux == tmux_passthrough("\x1b]9;t: b\x07") + tmux_passthrough(
        "\x1b]777;notify;t;b\x07"
    )


# -- monitor view ----


async def test_monitor_view_shows_counts_last_failure_and_charts_per_window(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(
            sim_url, "probe", key=sim_key, timing=TINY, repeat=Repeat(every_s=0.01, count=5)
        ),
        sim_session(
            sim_url,
            "down",
            model="sim-broken",
            key=sim_key,
            reconnect=ReconnectPolicy(max_retries=0),
        ),
    )
    app = TokentopApp(config, db_path=tmp_path / "runs.db", theme_dirs=theme_dirs)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_until(
            pilot, lambda: app.begun and not any(s.running for s in app.sessions), what="runs"
        )
        main = app.main_screen
        assert main is not None
        main.overview.table.focus()
        await pilot.press("home")  # "down" sorts first by name
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen), what="monitor")
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: screen.reads >= 1, what="first read")
        assert screen.live.name == "down"
        summary = str(screen.query_one("#monitor-summary", Static).render())
        assert "runs 1" in summary and "success rate 0%" in summary
        assert "last failure" in summary and "502" in summary
        assert "from the store" in str(screen.query_one("#monitor-title", Static).render())
        # "]" shows the next session; "w" the next window (last hour -> every run)
        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: screen.reads >= 2 and screen.live.name == "probe")
        summary = str(screen.query_one("#monitor-summary", Static).render())
        assert "runs 5" in summary and "success rate 100%" in summary
        assert "none in this window" in summary
        charts = screen.charts
        assert charts is not None and len(charts.ttft_ms) == SERIES_BUCKETS
        assert sum(charts.failures) == 0 and max(charts.ttft_ms) > 0
        assert screen.query_one("#chart-ttft", Sparkline).data == charts.ttft_ms
        await pilot.press("w")
        await wait_until(pilot, lambda: screen.reads >= 3, what="window switched")
        assert "every run" in str(screen.query_one("#monitor-title", Static).render())
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is main, what="back")


async def test_monitor_view_without_a_store_uses_memory(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(
            sim_url, "probe", key=sim_key, timing=TINY, repeat=Repeat(every_s=0.01, count=3)
        )
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.begun and not app.sessions[0].running, what="runs")
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen), what="monitor")
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: screen.reads >= 1, what="first read")
        assert "no store" in str(screen.query_one("#monitor-title", Static).render())
        assert screen.charts is not None and len(screen.charts.ttft_ms) == 3


# -- hours, not minutes ----


def _sizes(app: TokentopApp) -> dict[str, int]:
    """What the dashboard holds that could grow with the number of runs."""
    main = app.main_screen
    assert main is not None
    sizes = {
        "toasts": notifications_shown(app),
        "workers": len(app.workers),
        "tab_state": len(main._tab_state),
        "tally": len(app.monitoring.tally.counts),
    }
    for index, live in enumerate(app.sessions):
        pane = main.panes[index]
        sizes[f"{live.name}.history"] = len(live.history)
        sizes[f"{live.name}.rate_samples"] = len(live.rate_samples)
        sizes[f"{live.name}.raw_lines"] = pane.raw_log.line_count
        sizes[f"{live.name}.transcript_nodes"] = len(list(pane.transcript.walk_children()))
        sizes[f"{live.name}.alerts_kept"] = len(app.monitoring.alerts.active(live.name))
        sizes[f"{live.name}.listeners"] = len(live._listeners)
    return sizes


async def _wait_while_runs_finish(
    pilot: Pilot[Any],
    predicate: Callable[[], bool],
    finished: Callable[[], int],
    *,
    stall_s: float = 20.0,
    what: str,
) -> None:
    """Wait until ``predicate`` holds; fail once ``finished()`` (runs done) stays the same
    for ``stall_s`` seconds (the runs stopped), however long the whole wait takes."""
    last, since = finished(), time.monotonic()
    while not predicate():
        now_finished = finished()
        if now_finished != last:
            last, since = now_finished, time.monotonic()
        elif time.monotonic() - since > stall_s:
            raise AssertionError(f"{what}: no run finished in {stall_s:.0f} s (at {last})")
        await pilot.pause(0.05)


async def test_hundreds_of_runs_keep_every_view_bounded(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    runs = 120
    healthy = sim_session(sim_url, "probe", key=sim_key, timing=TINY, repeat=_fast(runs))
    failing = sim_session(
        sim_url,
        "down",
        model="sim-broken",
        key=sim_key,
        reconnect=_no_retry(),
        repeat=_fast(runs),
        alerts=AlertRules(on_failure=True),
    )
    app = TokentopApp(
        app_config(healthy, failing), db_path=tmp_path / "runs.db", theme_dirs=theme_dirs
    )
    app.monitoring.alert_display.write = lambda data: None
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main_screen
        assert main is not None
        await wait_until(pilot, lambda: len(main.panes) == 2, what="panes")
        main.show_session("probe")  # one pane on screen: it renders every run
        pane = main.panes[0]
        pane.raw = True  # the raw log too
        # the most each thing held while the first runs went by (sampled at every look)
        early: dict[str, int] = {}

        def warmed_up() -> bool:
            for key, value in _sizes(app).items():
                early[key] = max(early.get(key, 0), value)
            return min(s.runs_finished for s in app.sessions) >= HISTORY_LIMIT + 10

        # ~120 runs to the warm-up, 240 in all: how long that takes depends on the machine's
        # load, so the waits fail when the runs stop finishing, not after a fixed time
        def finished() -> int:
            return sum(s.runs_finished for s in app.sessions)

        await _wait_while_runs_finish(pilot, warmed_up, finished, what="warm-up")
        await _wait_while_runs_finish(
            pilot, lambda: not any(s.running for s in app.sessions), finished, what="all runs"
        )
        await pilot.pause(0.3)
        late = _sizes(app)
        assert app.monitoring.tally.total().finished == 2 * runs
        assert app.monitoring.alerts.count("down") == runs  # counted, not kept
        for key, value in late.items():
            if key.endswith("raw_lines"):  # one run's events, at most the log's max_lines
                assert value <= RAW_EVENT_LIMIT + 200, (key, value)
                continue
            # twice as many runs: nothing holds more than during the warm-up (a little slack
            # for what one run's widgets hold at the instant of looking)
            assert value <= max(early[key] * 1.5, early[key] + 8), (key, early[key], value)
        assert late["probe.history"] == late["down.history"] == HISTORY_LIMIT
        assert late["down.alerts_kept"] <= 8
        assert late["toasts"] <= 3
        # a failed run's toast and the alert toasts came in bursts, not one per run
        assert main.failures is not None
        assert app.monitoring.alert_display.toasts.shown < runs / 10


async def test_four_failing_sessions_make_one_toast_not_four(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"down-{i}" for i in range(4)]
    config = app_config(
        *(
            sim_session(sim_url, name, model="sim-broken", key=sim_key, reconnect=_no_retry())
            for name in names
        )
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    toasts: list[tuple[str, str]] = []
    notify = app.notify

    def recording(message: str, **kwargs: Any) -> None:
        toasts.append((str(kwargs.get("title", "")), message))
        notify(message, **kwargs)

    monkeypatch.setattr(app, "notify", recording)
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main_screen
        assert main is not None
        most = 0

        def settled() -> bool:
            nonlocal most
            most = max(most, notifications_shown(app))
            failures = main.failures
            return (
                all(s.state == "failed" for s in app.sessions)
                and failures is not None
                and not failures.pending
                and bool(toasts)
            )

        await wait_until(pilot, settled, what="four failures, toasted")
        failed = [(title, text) for title, text in toasts if title.startswith("Run failed")]
        # one toast for the four (two only if the failures straddled its gathering moment,
        # and then never both on screen at once)
        assert most == 1 and 1 <= len(failed) <= 2, toasts
        if len(failed) == 1:
            title, text = failed[0]
            assert title == "Run failed (4)"
            assert sum(name in text for name in names) == 3 and "… and 1 more" in text


async def test_four_cut_sessions_out_of_view_make_one_toast_not_four(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = "ttft=0.05,tps=40,tokens=4000"
    quick = "ttft=0,tps=5000,tokens=60"  # more than the 8 tokens allowed
    capped = [
        sim_session(sim_url, f"capped-{i}", key=sim_key, max_output_tokens=8, timing=quick)
        for i in range(4)
    ]
    config = app_config(sim_session(sim_url, "watched", key=sim_key, timing=slow), *capped)
    app = TokentopApp(config, theme_dirs=theme_dirs, autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main_screen
        assert main is not None
        await wait_until(pilot, lambda: app.begun and len(main.panes) == 5, what="panes")
        main.show_session("watched")  # the capped sessions end out of view
        await pilot.pause()
        for live in app.sessions:
            live.start()
        most = 0

        def cut() -> bool:
            nonlocal most
            most = max(most, notifications_shown(app))
            return all(s.state == "incomplete" for s in app.sessions[1:])

        await wait_until(pilot, cut, what="four cut answers")
        for _ in range(10):  # the moment their toasts gather and show
            await pilot.pause(0.1)
            cut()
        app.sessions[0].cancel()
        assert most == 1
