"""The one exception type the store raises for expected problems."""

from __future__ import annotations

from typing import Literal, TypeAlias

StoreProblem: TypeAlias = Literal["readonly", "busy", "cantopen", "corrupt", "full"]
"""What went wrong, for the code that must tell problems apart (never by message text):
``readonly`` (the file or its directory cannot be written), ``busy`` (another connection held
a write transaction too long), ``cantopen``, ``corrupt`` (not an SQLite file, or damaged) and
``full`` (disk or size limit)."""


class StoreError(Exception):
    """A database problem with a message fit to show a person as is (never a traceback).

    Raised for a database locked by another tokentop, a read-only or corrupt file, a schema
    from a newer tokentop, an unknown or ambiguous run id, and similar expected conditions.
    """

    def __init__(self, message: str, *, problem: StoreProblem | None = None) -> None:
        super().__init__(message)
        self.problem: StoreProblem | None = problem
        """The kind of an SQLite problem (None for the store's own checks)."""
