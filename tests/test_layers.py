"""The headless core never imports Textual, Rich or tui.ui (checked in fresh interpreters).

One wrinkle: ``import httpx`` itself loads Rich (and pygments and click) when they are
installed, for its optional command-line client (``httpx/__init__.py`` tries
``from ._main import main`` and falls back on ImportError). Textual depends on Rich, so in
this environment every httpx user gets Rich in ``sys.modules`` through no import of ours.
The tests therefore (1) import every headless module with the forbidden packages made
unimportable, which must work and leave none of them loaded, and (2) check that without
such blocking, Rich arrives only through ``httpx._main``.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("textual", "rich", "tui.ui")

BLOCKER = """
import importlib.abc, sys
FORBIDDEN = %r
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
            raise ImportError("headless code imported " + name)
        return None
sys.meta_path.insert(0, Block())
"""


def headless_modules() -> list[str]:
    """Every module of tui.stream, tui.config, the simulator, the store and the headless
    runner (all of them must exist: a missing one fails the test)."""
    names = ["tui.config", "tui.paths", "tui.headless", "tui.sim.server"]
    for package in ("tui.stream", "tui.store", "tui.sim"):
        path = importlib.import_module(package).__path__
        found = pkgutil.iter_modules(path, package + ".")
        names += [m.name for m in found if not m.name.endswith("__main__")]
    return sorted(set(names))


def loaded_after_import(modules: list[str], prelude: str = "") -> list[str]:
    """Import ``modules`` in a fresh interpreter (after ``prelude``); its sys.modules."""
    code = (
        prelude + "\nimport importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    loaded: list[str] = json.loads(proc.stdout)
    return loaded


def forbidden(loaded: list[str]) -> list[str]:
    """The loaded modules that belong to Textual, Rich or tui.ui."""
    return [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


def test_headless_modules_need_no_ui_packages() -> None:
    modules = headless_modules()
    assert {"tui.stream.sse", "tui.stream.runner", "tui.stream.accumulate"} <= set(modules)
    loaded = loaded_after_import(modules, BLOCKER % (FORBIDDEN,))
    assert forbidden(loaded) == []
    assert {"tui.sim.server", "tui.stream.runner", "tui.config"} <= set(loaded)


def test_rich_only_arrives_through_httpx_cli() -> None:
    modules = headless_modules()
    loaded = loaded_after_import(modules, "import sys; sys.modules['httpx._main'] = None")
    assert forbidden(loaded) == []
    without_httpx = ["tui.config", "tui.sim.server", "tui.store"]
    assert forbidden(loaded_after_import(without_httpx)) == []
