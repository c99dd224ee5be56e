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

from tests.store.conftest import completed_events, make_session

ROOT = Path(__file__).resolve().parents[2]

WITHOUT_OVERRIDE = "-dac_override,-dac_read_search,-fowner,-linux_immutable"
"""The capabilities that let root write what its permissions forbid."""

DASHBOARD_ON = """
import asyncio, json
from pathlib import Path
from tests.ui.conftest import SHIPPED_THEMES, app_config, sim_session, wait_until
from tui.ui.app import TokentopApp
from tui.ui.screens.history import HistoryScreen

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
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await wait_until(pilot, lambda: app.screen.loads > 0)
        history = app.screen
        seen = {{
            "history": [(r.session, r.output_text) for r in history.runs],
            "error": history.error,
            "readonly": app.store is not None and app.store.readonly,
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
