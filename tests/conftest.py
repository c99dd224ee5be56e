"""Shared pytest fixtures: a running simulator for the whole session and a per-test key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

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
