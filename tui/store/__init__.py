"""The transcript store: every run and every event in SQLite (aiosqlite), headless.

Names are imported lazily: importing ``tui.store`` (or a light module of it) does not pull
in aiosqlite and msgspec until :class:`Store` is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .broadcasts import ColumnItem, ComparedConversation
    from .conversation_records import ConversationRecord, ConversationSummary, ConversationTurn
    from .errors import StoreError
    from .records import (
        AttemptRecord,
        PruneResult,
        RoundRecord,
        RoundRun,
        RunDetail,
        RunSummary,
        StoredAlert,
        result_record,
    )
    from .replay import TurnStart
    from .store import Store

__all__ = [
    "AttemptRecord",
    "ColumnItem",
    "ComparedConversation",
    "ConversationRecord",
    "ConversationSummary",
    "ConversationTurn",
    "PruneResult",
    "RoundRecord",
    "RoundRun",
    "RunDetail",
    "RunSummary",
    "Store",
    "StoreError",
    "StoredAlert",
    "TurnStart",
    "result_record",
]

_HOMES = {
    "Store": ".store",
    "StoreError": ".errors",
    "AttemptRecord": ".records",
    "RunDetail": ".records",
    "RunSummary": ".records",
    "StoredAlert": ".records",
    "PruneResult": ".records",
    "RoundRecord": ".records",
    "RoundRun": ".records",
    "result_record": ".records",
    "ConversationRecord": ".conversation_records",
    "ConversationSummary": ".conversation_records",
    "ConversationTurn": ".conversation_records",
    "TurnStart": ".replay",
    "ColumnItem": ".broadcasts",
    "ComparedConversation": ".broadcasts",
}


def __getattr__(name: str) -> Any:
    """Import the public names on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home, __name__), name)
    globals()[name] = value
    return value
