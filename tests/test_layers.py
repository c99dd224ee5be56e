"""The import layering: import-linter's contracts (``[tool.importlinter]`` in pyproject.toml)
hold, cover every package, and catch a violation; and the headless core never loads Textual,
Rich or tui.ui (checked in fresh interpreters).

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
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

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


LINT = (
    "from importlinter.cli import lint_imports; "
    "raise SystemExit(lint_imports(config_filename='pyproject.toml', no_cache=True))"
)


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    """Run the contracts of ``root/pyproject.toml`` over the ``tui`` package in ``root``."""
    return subprocess.run(
        [sys.executable, "-c", LINT],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def layers() -> list[str]:
    """Every package named in the layers contract, top to bottom."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    return [name.strip() for layer in contract["layers"] for name in layer.split("|")]


def test_import_contracts_are_kept() -> None:
    proc = lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_the_layers_contract_names_every_package() -> None:
    """A new package or module under tui/ must take its place in the layers."""
    named = set(layers())
    found = {
        f"tui.{m.name}"
        for m in pkgutil.iter_modules(importlib.import_module("tui").__path__)
        if m.name != "__main__"
    }
    assert found == named


@pytest.mark.parametrize(
    ("module", "upward"),
    [("tui/stream/events.py", "tui.session"), ("tui/vocab.py", "tui.config")],
)
def test_the_contracts_catch_an_upward_import(tmp_path: Path, module: str, upward: str) -> None:
    shutil.copytree(ROOT / "tui", tmp_path / "tui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / module
    path.write_text(path.read_text(encoding="utf-8") + f"\nimport {upward}\n", encoding="utf-8")
    proc = lint(tmp_path)
    assert proc.returncode != 0
    assert "BROKEN" in proc.stdout and upward in proc.stdout


def headless_modules() -> list[str]:
    """Every module of tui.stream, tui.config, the simulator, the store and the headless
    runner (all of them must exist: a missing one fails the test)."""
    names = ["tui.vocab", "tui.config", "tui.paths", "tui.headless", "tui.sim.server"]
    for package in ("tui.stream", "tui.store", "tui.sim", "tui.session"):
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


MAX_MODULE_LINES = 420
"""About 400 lines: past that a module holds more than one idea; split it along a seam."""


def test_no_module_of_the_package_is_over_about_400_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in (ROOT / "tui").rglob("*.py")
    }
    assert len(sizes) > 50
    assert {p: n for p, n in sizes.items() if n > MAX_MODULE_LINES} == {}
