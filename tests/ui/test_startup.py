"""The dashboard's first frame imports what it draws and nothing else.

The HTTP client, the store, the simulator, token counting, prices and the forms behind a key
load just after the first frame (or when first used): a module-level import of one of them
on the way to the first frame would add its import time to every start, silently. The
child runs ``tokentop``'s dashboard headless (the shipped example, a fresh database) and
reports which of them are loaded when the main screen's first frame is painted. The
collector, off while the dashboard starts, is checked to be back on, tuned, once the start
is over, and on after a start that ends in a config error.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from tests.test_headless import cli_env
from tests.ui.conftest import app_config, sim_session
from tui.ui.app import GC_THRESHOLDS, TokentopApp

DEFERRED = (
    "aiohttp",
    "aiosqlite",
    "genai_prices",
    "httpx",
    "msgspec",
    "prometheus_client",
    "pygments",
    "sqlite3",
    "starlette",
    "tiktoken",
    "tomli_w",
    "uvicorn",
    "tui.session.prometheus",
    "tui.sim",
    "tui.store.store",
    "tui.stream.models",
    "tui.stream.request",
    "tui.stream.transport",
    "tui.ui.screens.add_session",
    "tui.ui.screens.prompt",
)
"""Modules (and their submodules) the first frame must not need."""

FIRST_FRAME = """
import json, os, sys
from pathlib import Path

import tui.cli  # what `tokentop` imports first
from tui.config import load_default_config
from tui.ui.app import TokentopApp
from tui.ui.screens.main import MainScreen

DEFERRED = tuple(sys.argv[2:])
display = TokentopApp._display


def first_frame(self, screen, renderable):
    # the first frame of the main screen, as Textual hands it to its driver (as
    # bench/startup.py sees it)
    if renderable is not None and isinstance(screen, MainScreen):
        loaded = sorted(
            m for m in sys.modules
            if m in DEFERRED or m.startswith(tuple(d + "." for d in DEFERRED))
        )
        print(json.dumps({"painted": True, "loaded": loaded}), flush=True)
        os._exit(0)
    return display(self, screen, renderable)


TokentopApp._display = first_frame
config = load_default_config()
TokentopApp(config, db_path=Path(sys.argv[1]), freeze_gc=True).run(headless=True, size=(120, 40))
"""


def test_the_first_frame_imports_none_of_the_deferred_modules(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", FIRST_FRAME, str(tmp_path / "fresh.db"), *DEFERRED],
        capture_output=True,
        text=True,
        env=cli_env(tmp_path),
        cwd=tmp_path,  # no ./sessions.toml: the shipped example
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"painted": True, "loaded": []}


async def test_the_collector_is_off_while_the_app_starts_and_tuned_after(
    tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    thresholds = gc.get_threshold()
    app = TokentopApp(
        app_config(sim_session("http://127.0.0.1:9/v1", "idle")),  # never started
        db_path=tmp_path / "gc.db",
        theme_dirs=theme_dirs,
        freeze_gc=True,
        autostart=False,
    )
    try:
        assert not gc.isenabled()
        async with app.run_test(size=(100, 30)) as pilot:
            while not app.begun:
                await pilot.pause(0.05)
            assert gc.isenabled() and gc.get_threshold() == GC_THRESHOLDS
            assert gc.get_freeze_count() > 0
    finally:
        gc.enable()
        gc.unfreeze()  # the test's app is garbage now; let the collector have it
        gc.set_threshold(*thresholds)


def test_a_config_error_leaves_the_collector_on(tmp_path: Path) -> None:
    from tui.cli import main

    broken = tmp_path / "broken.toml"
    broken.write_text("[[sessions]]\nname = 1\n")
    result = CliRunner().invoke(main, [str(broken)])
    assert result.exit_code == 2, result.output
    assert gc.isenabled()


async def test_a_quit_before_the_start_is_over_ends_cleanly(
    tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    thresholds = gc.get_threshold()
    app = TokentopApp(
        app_config(sim_session("http://127.0.0.1:9/v1", "idle")),
        db_path=tmp_path / "quit.db",
        theme_dirs=theme_dirs,
        freeze_gc=True,
        autostart=False,
    )
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("q")  # the store may still be opening
        assert app.return_code == 0
        assert gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def test_the_collector_is_back_on_in_a_replay(
    tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    from tui.store import Store

    db = tmp_path / "replay.db"
    await (await Store.open(db)).close()
    thresholds = gc.get_threshold()
    app = TokentopApp(
        app_config(sim_session("http://127.0.0.1:9/v1", "idle")),
        db_path=db,
        theme_dirs=theme_dirs,
        freeze_gc=True,
        replay_run_id="ffffffffffff",  # not stored: the replay says so
    )
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            while not gc.isenabled():
                await pilot.pause(0.05)
            assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.enable()
        gc.unfreeze()
        gc.set_threshold(*thresholds)
