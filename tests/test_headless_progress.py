"""``tokentop run``'s progress output at scale: past the budget, each second reports a portion
of the running runs in turn (every one of them in time); each tick is one write; a terminal
block shows what fits and says how many more are running; no run keeps raw events for a
raw view that this face does not have."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.test_headless import write_config
from tui.config import load_config
from tui.headless import RunOptions, run_sessions
from tui.headless import printer as printer_module
from tui.session import SessionController

SESSIONS = 5
TICK_S = 0.15


class Writes(io.StringIO):
    """A text stream that counts its write calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def write(self, text: str) -> int:
        self.calls += 1
        return super().write(text)


def _config(tmp_path: Path, sim_key: str) -> Any:
    blocks = [
        f"""
        [[sessions]]
        name = "s{i}"
        model = "sim"
        prompt = "p"
        headers = {{ "X-Sim-Timing" = "tokens=40,tps=40,ttft=0.05", "X-Sim-Key" = "{sim_key}" }}
        """
        for i in range(SESSIONS)
    ]
    return load_config(write_config(tmp_path, "".join(blocks)), environ={})


@pytest.fixture
def fast_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(printer_module, "PROGRESS_EVERY_S", TICK_S)
    monkeypatch.setattr(printer_module, "REDRAW_EVERY_S", TICK_S)


async def test_past_the_budget_runs_are_reported_in_turn(
    tmp_path: Path, sim_key: str, fast_ticks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(printer_module, "PROGRESS_BUDGET", 2)
    config = _config(tmp_path, sim_key)
    out, err = Writes(), Writes()
    options = RunOptions(store=False, jsonl=True)
    assert await run_sessions(config.sessions, options, out=out, err=err) == 0
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    progress = [r for r in records if r["type"] == "progress"]
    assert progress, records
    # every tick reports at most the budget, and the turns reach every session
    lines = [line for line in err.getvalue().splitlines() if line.startswith("s")]
    ticks = len(progress) / 2
    assert len(lines) <= 2 * (ticks + 1)
    assert {r["session"] for r in progress} == {f"s{i}" for i in range(SESSIONS)}
    # one write per tick for the records, not one per record
    results = sum(1 for r in records if r["type"] != "progress")
    assert out.calls <= results + ticks + 1


async def test_a_terminal_block_shows_what_fits(
    tmp_path: Path, sim_key: str, fast_ticks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "tui.headless.output.shutil.get_terminal_size", lambda: os.terminal_size((80, 4))
    )
    config = _config(tmp_path, sim_key)
    out, err = io.StringIO(), io.StringIO()
    options = RunOptions(store=False)
    assert await run_sessions(config.sessions, options, out=out, err=err, interactive=True) == 0
    text = err.getvalue()
    # two rows of runs and the line that counts the others; each redraw clears those three
    assert "... and 3 more running" in text
    assert "\x1b[3F\x1b[J" in text


async def test_no_run_keeps_raw_events(
    tmp_path: Path, sim_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[SessionController] = []
    original = SessionController.start

    def start(self: SessionController, *args: Any, **kwargs: Any) -> Any:
        seen.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SessionController, "start", start)
    config = _config(tmp_path, sim_key)
    assert (
        await run_sessions(
            config.sessions[:1], RunOptions(store=False), out=io.StringIO(), err=io.StringIO()
        )
        == 0
    )
    (controller,) = seen
    run = controller.current
    assert run is not None and run.finished is not None and run.events > 40
    # the attempt boundaries are kept (they are few), the raw SSE events are not
    assert run.debug_events and all(not isinstance(e, tuple) for e in run.debug_events)
