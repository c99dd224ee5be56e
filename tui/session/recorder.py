"""What a session runtime needs from the transcript store (``tui.store.Store`` is one)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tui.config import SessionConfig
    from tui.stream.accumulate import RunAccumulator
    from tui.stream.events import RunEvent


class RunRecorder(Protocol):
    """Where runs are kept while they stream and after they end."""

    async def start_run(
        self,
        session: SessionConfig,
        *,
        prompt: str,
        run_id: str,
        accumulator: RunAccumulator | None = None,
    ) -> str:
        """Record a new run (the session's settings as used, without secrets); it reads the
        run's state from ``accumulator``, which the caller feeds before recording events."""
        ...

    def add_events(self, run_id: str, events: Sequence[RunEvent]) -> None:
        """Record events of a run, in order (cheap: queued and written in batches)."""
        ...

    async def flush(self) -> None:
        """Write everything queued so far."""
        ...

    async def close(self) -> None:
        """Write everything queued and close."""
        ...
