"""The one exception type the store raises for expected problems."""

from __future__ import annotations


class StoreError(Exception):
    """A database problem with a message fit to show a person as is (never a traceback).

    Raised for a database locked by another tokentop, a read-only or corrupt file, a schema
    from a newer tokentop, an unknown or ambiguous run id, and similar expected conditions.
    """
