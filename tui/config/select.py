"""Choosing sessions by name on the command line (``--only``), as people type names: the
exact name, the name in any case, a glob (``'*chat*'``), or a part of it (``quick`` for
``quick · chat``), so that names with ``·`` and spaces need no quoting gymnastics."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

_GLOB = frozenset("*?[")


def matching(names: Sequence[str], pattern: str) -> list[str]:
    """The names ``pattern`` chooses, in their order: the exact name if there is one, else
    every name equal to it in any case, else every name it matches as a glob (in any case)
    or, without glob characters, every name that contains it (in any case)."""
    if pattern in names:
        return [pattern]
    folded = pattern.casefold()
    same = [n for n in names if n.casefold() == folded]
    if same:
        return same
    if _GLOB & set(pattern):
        return [n for n in names if fnmatch.fnmatchcase(n.casefold(), folded)]
    return [n for n in names if folded in n.casefold()]


def chosen(names: Sequence[str], patterns: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the names any of ``patterns`` chooses, in file order; the patterns that choose none)."""
    picked: set[str] = set()
    unmatched: list[str] = []
    for pattern in patterns:
        found = matching(names, pattern)
        if not found:
            unmatched.append(pattern)
        picked.update(found)
    return [n for n in names if n in picked], unmatched
