"""Fixtures of the session tests: an HTTP client and a transcript store on a temp file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tui.store import Store


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A plain client for the loopback simulator, closed after the test."""
    async with httpx.AsyncClient(timeout=30) as http:
        yield http


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's transcript database lives."""
    return tmp_path / "tokentop.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Store]:
    """A writer on a fresh database, closed after the test."""
    s = await Store.open(db_path)
    try:
        yield s
    finally:
        await s.close()
