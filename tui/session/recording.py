"""Recording a run's start in the store: the session as used (secrets redacted), the run's
turn of its conversation, its client-lag source and the compare broadcast it was sent in.

A compare broadcast (the compare screen's prompt box, one prompt to several sessions) gives
each run it starts the same ``broadcast_id``, which links their conversations in the store
as the columns of one compare (``tui.store.broadcasts``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.session.redact import redact_session
from tui.stream.events import new_run_id

if TYPE_CHECKING:
    from tui.config import SessionConfig
    from tui.session.recorder import RunRecorder
    from tui.session.run import SessionRun

__all__ = ["new_broadcast_id", "record_start"]


def new_broadcast_id() -> str:
    """A fresh broadcast id (tokentop's own), time-ordered as run ids are."""
    return new_run_id()


async def record_start(
    store: RunRecorder, session: SessionConfig, run: SessionRun, broadcast_id: str | None
) -> None:
    """Record the start of ``run`` of ``session`` in ``store``: the session's settings with
    the run's secrets blanked out, its turn, its accumulator (the store reads the run's
    state from it), the run itself as the source of its client lag, and the compare
    broadcast it was sent in. Raises what the store raises."""
    redactor = run.redactor
    stored = session if redactor is None else redact_session(session, redactor.redactor)
    await store.start_run(
        stored,
        prompt=run.prompt,
        run_id=run.run_id,
        accumulator=run.accumulator,
        conversation_id=run.conversation_id,
        turn=run.turn,
        lag_source=run,
        broadcast_id=broadcast_id,
    )
