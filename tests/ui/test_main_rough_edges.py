"""Rough edges of the main screen, each tried as a new user would: tab labels, the overview
after a restart, Escape in the filter, the raw view's Home/End, the reasoning block, the
preview's Markdown and tool calls, the run history of cancelled runs, copying under tmux."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from tests.ui.conftest import app_config, paste, sim_session, wait_until
from tui.ui.app import TokentopApp
from tui.ui.screens.main import MainScreen, session_tab_id
from tui.ui.widgets.preview import SessionPreview

QUICK = "ttft=0.01,tps=0,tokens=20"

EXAMPLE_NAMES = (
    "poem · responses",
    "quick · chat",
    "reasoning",
    "tool call · chat",
    "capped · length",
    "flaky · resumes",
)
"""The session names of sessions.example.toml."""


def _main(app: TokentopApp) -> MainScreen:
    main = app.main_screen
    assert isinstance(main, MainScreen)
    return main


def _labels(main: MainScreen) -> list[str]:
    return [str(main.tabs.get_tab(session_tab_id(i)).label) for i in range(len(main.sessions))]


async def _tabs_settled(pilot: Pilot[Any], main: MainScreen) -> None:
    """Until every tab is laid out with its current label (they refresh at 4 Hz)."""
    before: list[str] = []

    def same_twice() -> bool:
        nonlocal before
        now = _labels(main)
        settled = now == before
        before = now
        return settled

    app = pilot.app
    assert isinstance(app, TokentopApp)
    await wait_until(pilot, lambda: app.begun, what="the start")
    await wait_until(pilot, lambda: all(s.state == "done" for s in main.sessions))
    for _ in range(2):
        await pilot.pause(0.3)
    await wait_until(pilot, same_twice, what="settled tab labels")


def _check_tabs(main: MainScreen, width: int) -> list[str]:
    """Every session tab is whole on screen, shows its whole name or an elided start of it,
    and has the whole name as its tooltip; returns the labels."""
    labels = _labels(main)
    tabs = [main.tabs.get_tab(session_tab_id(i)) for i in range(len(main.sessions))]
    for live, tab in zip(main.sessions, tabs, strict=True):
        region = tab.region
        assert region.width > 0 and region.x >= 0 and region.right <= width, (
            f"tab {live.name!r} is cut at {width} columns: {region}"
        )
    for live, label in zip(main.sessions, labels, strict=True):
        if live.name not in label:
            assert label.endswith("…"), label
            start = label.split(" ", 1)[1].removesuffix("…")
            assert live.name.startswith(start), (label, live.name)
    assert [tab.tooltip for tab in tabs] == [live.name for live in main.sessions]
    return labels


@pytest.mark.parametrize("width", [80, 120, 200])
async def test_tab_labels_show_the_whole_names_wherever_they_fit(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None], width: int
) -> None:
    config = app_config(
        *(sim_session(sim_url, n, key=sim_key, timing=QUICK) for n in EXAMPLE_NAMES)
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(width, 30)) as pilot:
        main = _main(app)
        await _tabs_settled(pilot, main)
        labels = _check_tabs(main, width)
        if width >= 120:  # the example's names all fit whole from 120 columns on
            assert all(name in label for name, label in zip(EXAMPLE_NAMES, labels, strict=True))
        if width >= 200:  # and with the unread markers of the tabs not seen yet
            unread = [main.panes[i].unread for i in range(len(EXAMPLE_NAMES))]
            assert [label.endswith(" •") for label in labels] == unread
        # the pane's title says the whole name, however short its tab's label is
        main.show_session("tool call · chat")
        await pilot.pause()
        pane = main.current_pane
        assert pane is not None
        title = str(pane.query_one("#pane-title", Static).render())
        assert "tool call · chat" in title


async def test_only_names_too_long_to_fit_are_elided(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    names = (
        "a",
        "quick · chat",
        "a very long session name · with many words · and a gateway",
        "another quite long session name · responses · over a proxy",
    )
    config = app_config(*(sim_session(sim_url, n, key=sim_key, timing=QUICK) for n in names))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(100, 30)) as pilot:
        main = _main(app)
        await _tabs_settled(pilot, main)
        labels = _check_tabs(main, 100)
        assert names[0] in labels[0] and names[1] in labels[1]
        assert labels[2].endswith("…") and labels[3].endswith("…")
        await pilot.resize_terminal(220, 30)
        await wait_until(
            pilot,
            lambda: all(n in label for n, label in zip(names, _labels(main), strict=True)),
            within=5,
            what="whole names once the terminal is wide enough",
        )
        _check_tabs(main, 220)


def test_fit_names_cuts_the_longest_names_to_one_length_and_keeps_the_short_ones() -> None:
    from rich.cells import cell_len

    from tui.ui.widgets.format import elide, fit_names

    names = ["a", "quick · chat", "a very long session name", "another long one · chat"]
    assert fit_names(names, 200) == names
    fitted = fit_names(names, 40)
    assert fitted[:2] == names[:2] and sum(cell_len(n) for n in fitted) <= 40
    assert all(n.endswith("…") for n in fitted[2:])
    assert elide("poem · responses", 8) == "poem…"  # no dangling separator before the …
    wide = elide("日本語のセッション", 7)  # two cells a character
    assert wide == "日本語…" and cell_len(wide) <= 7
    assert fit_names(["abcdefghij"] * 10, 10, shortest=6) == ["abcde…"] * 10  # never shorter


SLOWISH = "ttft=0.05,tps=25,tokens=50"
"""About two seconds a run: long enough to switch tabs while it streams."""


async def _first_frame_states(pilot: Pilot[Any], main: MainScreen, key: str) -> list[str]:
    """Press ``key`` (without waiting for the app to idle) and read the overview's status
    cells in the first frame that shows it."""
    overview = main.overview
    pilot.app.simulate_key(key)
    deadline = time.monotonic() + 10
    while not (main.current_pane is None and overview.table.is_on_screen):
        assert time.monotonic() < deadline, "the overview never showed"
        await asyncio.sleep(0.002)
    return [str(overview.table.get_cell(name, "state")) for name in overview.visible_names]


async def test_the_overview_shows_the_current_runs_in_its_first_frame_after_a_restart(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    names = ("alpha", "bravo", "charlie")
    config = app_config(*(sim_session(sim_url, n, key=sim_key, timing=SLOWISH) for n in names))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 30)) as pilot:
        main = _main(app)
        sessions = main.sessions
        await wait_until(pilot, lambda: app.begun and all(s.state == "done" for s in sessions))
        await pilot.pause(0.3)

        # R on the overview (its rows show the new runs starting), then away to a tab while
        # they stream: the runs end while the overview is hidden.
        app.simulate_key("R")
        await wait_until(pilot, lambda: all(s.runs_started == 2 for s in sessions))
        await wait_until(pilot, lambda: main.overview.refreshes > 0 and main.current_pane is None)
        app.simulate_key("right_square_bracket")
        await wait_until(pilot, lambda: main.current_pane is not None, what="a session tab")
        await wait_until(pilot, lambda: all(s.state == "done" for s in sessions), what="the end")
        states = await _first_frame_states(pilot, main, "o")
        assert states == ["✓ done"] * 3, states  # not the "◌ connecting" seen before

        # R on a session tab, back to the overview while the new runs stream: no row may
        # show the previous (finished) run.
        app.simulate_key("right_square_bracket")
        await wait_until(pilot, lambda: main.current_pane is not None, what="a session tab")
        await pilot.pause(0.3)
        app.simulate_key("R")
        await wait_until(pilot, lambda: all(s.runs_started == 3 for s in sessions))
        states = await _first_frame_states(pilot, main, "o")
        running = [s.current is not None and s.current.finished is None for s in sessions]
        for name, state, still_running in zip(names, states, running, strict=True):
            if still_running:
                assert state != "✓ done", f"{name}: the previous run's {state!r}"
        # and the preview under the table follows the selected session's new run
        preview = main.overview.query_one(SessionPreview)
        current = sessions[0].current
        assert current is not None and current.run_id in preview.text


async def test_escape_clears_the_overview_filter_and_a_second_escape_does_what_it_did(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    config = app_config(
        sim_session(sim_url, "poem · responses", key=sim_key, timing=QUICK),
        sim_session(sim_url, "quick · chat", api="chat", key=sim_key, timing=QUICK),
        sim_session(sim_url, "tool call · chat", api="chat", key=sim_key, timing=QUICK),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 30)) as pilot:
        main = _main(app)
        overview = main.overview
        await wait_until(pilot, lambda: app.begun and all(s.state == "done" for s in main.sessions))
        everyone = ["poem · responses", "quick · chat", "tool call · chat"]
        await wait_until(pilot, lambda: overview.visible_names == everyone)
        field = overview.query_one("#overview-filter", Input)

        # typing in the filter, then escape: the filter is empty, every row is back, the
        # table has the focus
        await pilot.press("slash")
        await paste(pilot, "tool")
        await wait_until(pilot, lambda: overview.visible_names == ["tool call · chat"])
        await pilot.press("escape")
        await wait_until(pilot, lambda: overview.visible_names == everyone, what="every row")
        assert field.value == "" and app.focused is overview.table

        # a second escape does what escape did before: the screen and its rows stay
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is main and main.current_pane is None
        assert overview.visible_names == everyone and app.focused is overview.table

        # a filter left with enter (focus on the table) is cleared by escape too
        await pilot.press("slash")
        await paste(pilot, "chat")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(overview.visible_names) == 2)
        assert app.focused is overview.table
        await pilot.press("escape")
        await wait_until(pilot, lambda: overview.visible_names == everyone, what="every row")

        # an empty, focused filter: escape just leaves it
        await pilot.press("slash")
        assert field.has_focus
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.focused is overview.table, what="back to the table")


async def test_the_raw_view_has_home_and_end_and_end_follows_again(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    # streams for the whole test, however slow the machine (~7 min; the app's exit ends it)
    streaming = "ttft=0.01,tps=150,tokens=60000"
    config = app_config(sim_session(sim_url, "raw · long", key=sim_key, timing=streaming))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(100, 30)) as pilot:
        main = _main(app)
        await wait_until(pilot, lambda: app.begun and bool(main.panes), what="the pane")
        main.show_session("raw · long")
        app.simulate_key("v")
        pane = main.panes[0]
        raw = pane.raw_log
        await wait_until(pilot, lambda: pane.raw and raw.max_scroll_y > 20, what="raw lines")
        await wait_until(pilot, lambda: app.focused is raw, what="the raw view focused")

        app.simulate_key("home")
        await wait_until(pilot, lambda: raw.scroll_y == 0, what="the top")
        lines = raw.line_count
        await wait_until(pilot, lambda: raw.line_count > lines + 20, what="more events")
        assert raw.scroll_y == 0  # new events do not pull it down
        assert not raw.following

        app.simulate_key("end")
        await wait_until(pilot, lambda: raw.following, what="following again")
        lines = raw.line_count
        await wait_until(pilot, lambda: raw.line_count > lines + 20, what="more events")
        await wait_until(
            pilot, lambda: raw.scroll_y == raw.max_scroll_y > 0, what="the end, following"
        )
        assert app.sessions[0].running  # all of it while the run streams


@pytest.mark.parametrize(
    ("keymap", "key", "shown"), [({}, "t", "t"), ({"pane.thinking": "ctrl+k"}, "ctrl+k", "^k")]
)
async def test_the_reasoning_block_says_how_to_open_it_and_a_pane_key_does(
    sim_url: str,
    sim_key: str,
    theme_dirs: list[Path | None],
    keymap: dict[str, str],
    key: str,
    shown: str,
) -> None:
    from textual.widgets import Collapsible

    config = app_config(
        sim_session(sim_url, "reasoning", model="sim-think", key=sim_key, timing=QUICK),
        keymap=keymap,
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(100, 30)) as pilot:
        main = _main(app)
        await wait_until(pilot, lambda: app.begun and bool(main.panes), what="the pane")
        main.show_session("reasoning")
        pane = main.panes[0]
        block = pane.transcript.query_one("#reasoning", Collapsible)
        body = block.query_one("#reasoning-md")
        await wait_until(pilot, lambda: block.display and block.region.height > 0, what="reasoning")
        assert block.collapsed and body.region.height == 0
        title = str(block.title)
        assert f"press {shown} to show" in title, title  # the hint on the collapsed block
        await pilot.press(key)
        await wait_until(pilot, lambda: not block.collapsed and body.region.height > 0)
        assert f"press {shown} to hide" in str(block.title)
        await pilot.press(key)
        await wait_until(pilot, lambda: block.collapsed, what="collapsed again")
        # the key is in the key help, with its id
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: app.screen is not main, what="the key help")
        rows = getattr(app.screen, "rows", [])
        thinking = [row for row in rows if row.binding_id == "pane.thinking"]
        assert thinking and thinking[0].keys == [shown] and thinking[0].description == "Thinking"


async def test_the_preview_shows_the_answer_as_text_and_the_tool_calls(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    import json

    config = app_config(
        sim_session(sim_url, "poem · responses", key=sim_key, timing="ttft=0.01,tps=0,tokens=400"),
        sim_session(sim_url, "tool call · chat", model="sim-tools", api="chat", key=sim_key),
    )
    app = TokentopApp(config, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 44)) as pilot:
        main = _main(app)
        overview = main.overview
        preview = overview.query_one(SessionPreview)
        await wait_until(pilot, lambda: app.begun and all(s.state == "done" for s in main.sessions))
        poem, tool = main.sessions
        assert poem.current is not None and tool.current is not None
        overview.table.focus()
        await pilot.press("home")
        await wait_until(
            pilot, lambda: poem.current is not None and poem.current.run_id in preview.text
        )
        answer = poem.current.accumulator.output_text
        headings = [line for line in answer.splitlines() if line.startswith("## ")]
        assert headings and "**" in answer and "```" in answer  # the answer is Markdown
        text = preview.text
        assert headings[-1].removeprefix("## ").strip() in text  # the heading's words ...
        for syntax in ("## ", "**", "```"):  # ... without the Markdown around them
            assert syntax not in text, f"{syntax!r} in the preview:\n{text}"

        await pilot.press("down")
        await wait_until(pilot, lambda: "⚙ get_weather(" in preview.text, what="the tool call")
        calls = tool.current.accumulator.tool_calls
        arguments = json.loads(calls[0].arguments)
        line = next(line for line in preview.text.splitlines() if "⚙ get_weather(" in line)
        for key, value in arguments.items():
            assert f'"{key}": {json.dumps(value, ensure_ascii=False)}' in line, line


def test_markdown_lines_keep_the_words_and_drop_the_syntax() -> None:
    from tui.ui.widgets.preview import TAIL_CHARS, answer_tail, markdown_lines, open_fence

    text = (
        "## Streaming, *measured*\n\nTTFT is the wait **before** the first `delta`; see "
        "[the guide](http://x.test).\n\n- one\n- two\n  1. nested\n\n> quoted\n\n"
        "```python\nasync for event in run:\n\n    print(event)\n```\n\n| a | b |\n|---|---|\n"
        "| 1 | 2 |"
    )
    plain = [line.plain for line in markdown_lines(text)]
    assert plain[0] == "Streaming, measured"
    assert "TTFT is the wait before the first delta; see the guide." in plain
    assert plain[4:7] == ["• one", "• two", "  1. nested"]
    assert "│ quoted" in plain and "a │ b" in plain and "1 │ 2" in plain
    assert "  async for event in run:" in plain and "      print(event)" in plain
    assert not any(mark in line for line in plain for mark in ("##", "**", "`", "](", "|-"))
    # a tail that starts inside a code fence is still shown as code, not as headings
    assert open_fence("text\n```sh\n# not a heading\n") == "```"
    assert open_fence("```\ncode\n```\n") is None
    long = "intro\n\n```sh\n" + "# a shell comment\n" * (TAIL_CHARS // 10) + "```\n\nThe end."
    tail = [line.plain for line in answer_tail(long)]
    assert tail[0] == "…" and tail[-1] == "The end."
    assert "  # a shell comment" in tail and "a shell comment" not in tail


async def test_a_run_without_a_ttft_is_a_gap_in_the_run_history_not_a_zero_bar(
    sim_url: str, sim_key: str, theme_dirs: list[Path | None]
) -> None:
    from tui.ui.widgets.run_history import RunHistory

    # the first attempt stalls before any event (cancelled below), later ones answer
    session = sim_session(
        sim_url, "flaky · stalls", key=sim_key, timing=QUICK, headers={"X-Sim-Fault": "stall=0"}
    )
    app = TokentopApp(app_config(session), theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 30)) as pilot:
        main = _main(app)
        await wait_until(pilot, lambda: app.begun and bool(main.panes), what="the pane")
        main.show_session("flaky · stalls")
        live = main.sessions[0]
        await wait_until(pilot, lambda: live.running and live.current is not None)
        app.simulate_key("x")
        await wait_until(pilot, lambda: live.state == "cancelled", what="the cancel")
        for runs in (2, 3):
            app.simulate_key("r")

            def ended(n: int = runs) -> bool:
                return len(live.history) == n and live.state == "done"

            await wait_until(pilot, ended, what=f"run {runs}")
        assert [h.status for h in live.history] == ["cancelled", "completed", "completed"]
        assert live.history[0].ttft_ms is None
        history = main.panes[0].query_one(RunHistory)
        await wait_until(pilot, lambda: history.region.height > 0, what="the run history")
        await wait_until(pilot, lambda: "runs 3" in str(history.render()))
        line = str(history.render())
        ttft_spark = line.split("TTFT ", 1)[1][:3]
        assert ttft_spark[0] == " ", line  # a gap where old code drew a zero bar (▁)
        assert ttft_spark[1] != " " and ttft_spark[2] != " ", line  # then two bars
        assert "1 gap: no first token" in line, line
        assert history.tooltip and "gap" in str(history.tooltip)


FAKE_TMUX = """#!/bin/sh
# a stand-in tmux: records its arguments and the buffer it is given
echo "$*" >> "$FAKE_TMUX_DIR/calls"
case "$1" in
  load-buffer)
    cat > "$FAKE_TMUX_DIR/buffer"
    [ -n "$FAKE_TMUX_HANG" ] && sleep 30
    exit "${FAKE_TMUX_STATUS:-0}" ;;
  show) echo "${FAKE_TMUX_SET_CLIPBOARD:-off}" ;;
esac
"""


def _record_notifications(app: TokentopApp, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The messages the app is asked to notify, as it shows them (the list fills up)."""
    notes: list[str] = []
    original = app.notify

    def recording_notify(message: str, **kwargs: Any) -> None:
        notes.append(message)
        original(message, **kwargs)

    monkeypatch.setattr(app, "notify", recording_notify)
    return notes


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {},
            "into tmux's buffer (prefix ] pastes); for the system clipboard:"
            " set -g set-clipboard on",
        ),
        (
            {"FAKE_TMUX_SET_CLIPBOARD": "on"},
            "into tmux's buffer (prefix ] pastes) and the system clipboard.",
        ),
        (
            {"FAKE_TMUX_STATUS": "1"},
            "by OSC 52, which tmux drops unless it has set -g set-clipboard on",
        ),
        ({"FAKE_TMUX_HANG": "1"}, "tmux's buffer failed (tmux load-buffer took over 0.5 s)"),
        ({"TMUX": ""}, "Copied {chars} characters of copy · me."),
    ],
    ids=["set-clipboard-off", "set-clipboard-on", "tmux-fails", "tmux-hangs", "no-tmux"],
)
async def test_copy_under_tmux_puts_the_answer_into_its_buffer_and_says_where_it_went(
    sim_url: str,
    sim_key: str,
    theme_dirs: list[Path | None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    expected: str,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "tmux"
    fake.write_text(FAKE_TMUX)
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_TMUX_DIR", str(tmp_path))
    monkeypatch.setenv("TMUX", "/tmp/tmux-1000/default,4242,0")
    if "FAKE_TMUX_HANG" in env:  # a tmux that never answers: cut after half a second
        from tui.ui import clipboard

        monkeypatch.setattr(clipboard, "TMUX_TIMEOUT_S", 0.5)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    timing = "ttft=0.01,tps=0,tokens=12"
    config = app_config(sim_session(sim_url, "copy · me", key=sim_key, timing=timing))
    app = TokentopApp(config, theme_dirs=theme_dirs)
    notes = _record_notifications(app, monkeypatch)
    async with app.run_test(size=(120, 30)) as pilot:
        main = _main(app)
        await wait_until(pilot, lambda: app.begun and main.sessions[0].state == "done")
        live = main.sessions[0]
        assert live.current is not None
        answer = live.current.accumulator.output_text
        expected = expected.format(chars=f"{len(answer):,}")
        await pilot.press("y")
        await wait_until(pilot, lambda: any(expected in note for note in notes), what=expected)
        assert app.clipboard == answer  # OSC 52 is sent in every case
        calls = tmp_path / "calls"
        if env.get("TMUX") == "":
            assert not calls.exists()  # outside tmux, tmux is not asked
            return
        assert calls.read_text().splitlines()[0] == "load-buffer -w -"
        assert (tmp_path / "buffer").read_text() == answer
