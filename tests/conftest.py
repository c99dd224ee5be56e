"""Shared pytest fixtures: a running simulator for the whole session, a per-test key, and
tokentop's own file (local.toml) kept per test, so a developer's own never changes a result."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.sim.server import Simulator


@pytest.fixture(scope="session")
def sim_url() -> Iterator[str]:
    """Base URL (ending in ``/v1``) of a simulator started once for the test session."""
    sim = Simulator(seed=0)
    url = sim.start()
    try:
        yield url
    finally:
        sim.stop()


@pytest.fixture
def sim_key(request: pytest.FixtureRequest) -> str:
    """A unique ``X-Sim-Key`` value for this test, so attempt counting never leaks between
    tests (faults such as ``drop`` apply per key on the first attempts only)."""
    return f"{request.node.name}-{uuid.uuid4().hex}"


@pytest.fixture(autouse=True)
def own_local_file(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """``TOKENTOP_LOCAL_CONFIG`` for this test: a path of its own that does not exist yet
    (tokentop's own file of sessions added from the dashboard, and kept UI settings)."""
    path = tmp_path_factory.mktemp("local") / "local.toml"
    monkeypatch.setenv("TOKENTOP_LOCAL_CONFIG", str(path))
    return path
