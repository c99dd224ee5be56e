"""The dashboard and its database (issue 14): a database it may not write, and a store that
stops writing while the dashboard runs."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.screen import Screen

from tests.store.conftest import completed_events, make_session
from tests.ui.conftest import app_config, sim_session, wait_until
from tui.ui.app import TokentopApp
from tui.ui.screens.compare import CompareScreen
from tui.ui.textual_private import notifications_shown
from tui.ui.widgets.recording import RecordingStatus

ROOT = Path(__file__).resolve().parents[2]

WITHOUT_OVERRIDE = "-dac_override,-dac_read_search,-fowner,-linux_immutable"
"""The capabilities that let root write what its permissions forbid."""

DASHBOARD_ON = """
import asyncio, json
from pathlib import Path
from tests.ui.conftest import SHIPPED_THEMES, app_config, sim_session, wait_until
from tui.ui.app import TokentopApp
from tui.ui.screens.history import HistoryScreen
from tui.ui.widgets.recording import RecordingStatus

async def main():
    config = app_config(sim_session({sim_url!r}, "fresh"))
    app = TokentopApp(config, db_path=Path({db!r}), theme_dirs=[SHIPPED_THEMES])
    notes = []
    notify = app.notify
    def recording(message, **kwargs):
        notes.append(message)
        notify(message, **kwargs)
    app.notify = recording
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: app.begun and app.sessions[0].state == "done")
        status = app.main_screen.query_one(RecordingStatus)
        await wait_until(pilot, lambda: status.has_class("-shown"))
        header = str(status.render())
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await wait_until(pilot, lambda: app.screen.loads > 0)
        history = app.screen
        seen = {{
            "history": [(r.session, r.output_text) for r in history.runs],
            "error": history.error,
            "readonly": app.store is not None and app.store.readonly,
            "header": header,
            "history_header": str(history.query_one(RecordingStatus).render()),
        }}
    seen["notes"] = notes
    print(json.dumps(seen))

asyncio.run(main())
"""


def run_unprivileged(code: str, *, timeout: float = 60) -> Any:
    """Run ``code`` in a fresh interpreter that file permissions bind (as root, without the
    capabilities that override them); its last line of output, read as JSON."""
    command = [sys.executable, "-c", textwrap.dedent(code)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: permissions cannot bind")
        command = [setpriv, f"--bounding-set={WITHOUT_OVERRIDE}", *command]
    proc = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory whose modes the test may take away (given back afterwards)."""
    path = tmp_path / "ro"
    path.mkdir()
    try:
        yield path
    finally:
        for p in [path, *path.rglob("*")]:
            p.chmod(0o755) if p.is_dir() else p.chmod(0o644)


def _make_db(path: Path) -> None:
    """A database with one saved run of session "earlier"."""
    from tui.store import Store

    async def main() -> None:
        async with await Store.open(path) as store:
            run_id = await store.start_run(make_session("earlier"), prompt="kept")
            store.add_events(run_id, completed_events("an answer saved earlier"))

    asyncio.run(main())


@pytest.mark.parametrize("read_only", ["file", "directory"])
def test_a_database_it_may_not_write_is_read_for_history(
    sim_url: str, read_only_dir: Path, read_only: str
) -> None:
    where = read_only_dir
    db = where / "tokentop.db"
    _make_db(db)
    if read_only == "file":
        where.chmod(0o777)
        for p in where.iterdir():
            p.chmod(0o444)
    else:
        for p in where.iterdir():
            p.chmod(0o666)
        where.chmod(0o555)
    seen = run_unprivileged(DASHBOARD_ON.format(sim_url=sim_url, db=str(db)))
    # History works on the database that `tokentop history` reads, and nothing says
    # "History needs the store"; that runs are not saved is said once, with the reason.
    assert seen["history"] == [["earlier", "an answer saved earlier"]]
    assert seen["error"] is None and seen["readonly"]
    assert not [n for n in seen["notes"] if "needs the store" in n]
    unsaved = [n for n in seen["notes"] if "will not be saved" in n]
    assert len(unsaved) == 1 and "read-only" in unsaved[0], seen["notes"]
    # and the header says so for as long as the dashboard runs, on every screen
    for header in (seen["header"], seen["history_header"]):
        assert header.startswith("● not recording: ") and "read-only" in header


def _status(screen: Screen[Any]) -> RecordingStatus:
    return screen.query_one(RecordingStatus)


async def test_a_store_that_stops_writing_is_said_in_the_header_for_good(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    # a long answer: its row needs pages of its own (a short one fits in the free space)
    long = "ttft=0.01,tps=5000,tokens=2000"
    config = app_config(sim_session(sim_url, "chatty", key=sim_key, timing=long))
    app = TokentopApp(config, db_path=tmp_path / "runs.db", theme_dirs=theme_dirs, autostart=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: app.begun, what="start")
        main = app.main_screen
        assert main is not None and app.store is not None
        header = _status(main)
        assert header.problem is None and not header.display  # recording: nothing to say
        # The disk fills up: no room for another page (a test may reach into the store's
        # connection: the limit is per connection, as in tests/store/test_faults.py).
        store = app.store
        (pages,) = next(iter(await store._conn.execute_fetchall("PRAGMA page_count")))
        await store._conn.execute(f"PRAGMA max_page_count = {pages}")
        app.sessions[0].start()
        await wait_until(pilot, lambda: app.sessions[0].state == "done", what="the run")
        await wait_until(pilot, lambda: header.display, what="the header line")
        text = str(header.render())
        assert text.startswith("● not recording: ") and "full" in text
        assert store.last_error is not None and store.last_error in text
        # the toast goes; the line stays, also on the other screens
        await wait_until(pilot, lambda: notifications_shown(app) > 0, what="the toast")
        app.clear_notifications()
        await pilot.pause(1.2)  # a few checks of the line
        assert header.display and str(header.render()) == text
        await pilot.press("c")
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        await wait_until(pilot, lambda: _status(compare).display, what="compare's line")
        assert str(_status(compare).render()) == text


async def test_a_store_that_could_not_be_opened_is_said_in_the_header(
    sim_url: str, sim_key: str, tmp_path: Path, theme_dirs: list[Path | None]
) -> None:
    not_a_db = tmp_path / "dir-not-db"
    not_a_db.mkdir()
    config = app_config(sim_session(sim_url, "unsaved", key=sim_key))
    app = TokentopApp(config, db_path=not_a_db, theme_dirs=theme_dirs)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: app.begun, what="start")
        main = app.main_screen
        assert main is not None and app.store is None
        header = _status(main)
        await wait_until(pilot, lambda: header.display, what="the header line")
        assert str(header.render()).startswith("● not recording: ")
        assert str(not_a_db) in str(header.render())
