"""What a session runtime needs from the transcript store (``tui.store.Store`` is one).

:class:`RunRecorder` is what every recorder does; a recorder that also keeps alerts is an
:class:`AlertRecorder` too (the runtime checks for it, so that a recorder without alerts,
such as a test's, still records runs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tui.config import SessionConfig
    from tui.store.rows import ClientLagSource
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
        conversation_id: str | None = None,
        turn: int = 1,
        lag_source: ClientLagSource | None = None,
        broadcast_id: str | None = None,
    ) -> str:
        """Record a new run (the session's settings as used, without secrets), turn ``turn``
        of the conversation ``conversation_id``, sent in the compare broadcast
        ``broadcast_id`` (None: none); it reads the run's state from ``accumulator``, which
        the caller feeds before recording events, and the client's own loop lag over the
        run from ``lag_source`` when the run's final row is written."""
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


@runtime_checkable
class AlertRecorder(Protocol):
    """A recorder that also keeps the alerts of the runs (``tui.store.Store``)."""

    def record_alert(
        self,
        *,
        session: str,
        run_id: str,
        metric: str,
        value: float | None,
        threshold: float | None,
        message: str,
        at: float,
    ) -> None:
        """Record one alert of run ``run_id`` (cheap: queued, written with the next flush);
        ``at`` is wall time (``time.time()``)."""
        ...
