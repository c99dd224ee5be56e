"""The session layer: one runtime per process, one controller per session (headless)."""

from tui.session.controller import SessionController
from tui.session.recorder import RunRecorder
from tui.session.run import (
    HISTORY_LIMIT,
    RAW_EVENT_LIMIT,
    DebugEvent,
    RawTuple,
    RunSummary,
    SessionListener,
    SessionRun,
)
from tui.session.runtime import SessionRuntime

__all__ = [
    "HISTORY_LIMIT",
    "RAW_EVENT_LIMIT",
    "DebugEvent",
    "RawTuple",
    "RunRecorder",
    "RunSummary",
    "SessionController",
    "SessionListener",
    "SessionRun",
    "SessionRuntime",
]
