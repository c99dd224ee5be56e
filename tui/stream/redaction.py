"""How secrets and their long fragments are found in text (headless, no events).

A :class:`Redactor` knows a few secrets (a session's API key and the values of credential
headers and parameters of its config, :func:`session_secrets`) and blanks out of any text
not only each whole secret but every **long fragment** of one: any run of at least
:func:`fragment_length` consecutive characters of a secret (8 for a secret of 16 characters
or more; half of a shorter one, rounded up, but at least 4) becomes :data:`REDACTED`. A
fragment is what a truncated error snippet, a key split over two raw events or a server
that echoes half a key leaves behind. Secrets shorter than :data:`MIN_SECRET` characters
are not searched (they would match ordinary text). For text that arrives in pieces,
:meth:`Redactor.tail` says how much of a piece's end to hold back (:data:`HOLD_PIECE`) so
that a secret split over pieces is still found whole; :mod:`tui.session.redact` applies
this to run events.

Promises: :meth:`Redactor.redact` returns ``text`` itself (the same object) when nothing in
it matches; :meth:`Redactor.runs` returns sorted, disjoint spans. Nothing here keeps state
between calls.

Cost: with secrets, each string is searched for the secret's aligned blocks of
``ceil(m / 2)`` characters (every fragment of ``m`` characters contains one), one
``str.find`` per block: O(text) with a small constant; only a hit is examined further.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tui.config import SessionConfig

__all__ = [
    "HOLD_PIECE",
    "MIN_SECRET",
    "REDACTED",
    "Redactor",
    "fragment_length",
    "session_secrets",
]


REDACTED = "[redacted]"
"""What replaces a secret or a long fragment of one (the store's marker too)."""

MIN_SECRET = 4
"""Shorter secrets are not searched for."""

FRAGMENT = 8
"""Fragment length for a secret of :data:`LONG_SECRET` characters or more."""

LONG_SECRET = 16

HOLD_PIECE = 3
"""A delta's end is held back when it begins a secret (at any length), or when it is a
piece of one of at least this many characters. So a secret split anywhere over deltas is
redacted whole, and a fragment from its middle split over deltas loses at most
``HOLD_PIECE - 1`` leading characters to the delta before (which alone say nothing),
while most deltas of ordinary text, ending in a character or two that also occur in the
secret, go on at once."""

_SECRET_NAME = re.compile(
    r"auth|api[-_]?key|secret|passw|cookie|credential|^key$|(^|[-_])[a-z]*[-_]?token$"
)
"""Header and parameter names whose values are secrets (as the store's snapshot drops)."""


def fragment_length(secret_length: int) -> int:
    """The shortest run of a secret's characters that is redacted: 8 for a secret of 16
    characters or more, else half the secret rounded up, but at least 4 (at most all)."""
    if secret_length >= LONG_SECRET:
        return FRAGMENT
    return min(secret_length, max(MIN_SECRET, (secret_length + 1) // 2))


def session_secrets(session: SessionConfig) -> tuple[str, ...]:
    """The secrets of ``session`` as it is now: its API key (read from the environment) and
    the values of headers and parameters named like credentials (``Authorization``,
    ``x-api-key``, ``*_token``...), with a ``Bearer``-style scheme word split off."""
    found: list[str] = []
    key = session.api_key()
    if key:
        found.append(key)
    for name, value in (*session.headers.items(), *session.params.items()):
        if isinstance(value, str) and _SECRET_NAME.search(str(name).strip().lower()):
            found.append(value)
            scheme, _, rest = value.partition(" ")
            if rest and scheme.isalpha():
                found.append(rest.strip())
    return tuple(dict.fromkeys(s for s in found if len(s) >= MIN_SECRET))


@dataclass(frozen=True, slots=True)
class _Secret:
    """One secret, prepared for the search."""

    text: str
    fragment: int
    """The shortest run of its characters that is redacted."""
    width: int
    """Length of the aligned blocks (every fragment contains a whole one)."""
    blocks: tuple[tuple[str, tuple[int, ...]], ...]
    """Each distinct aligned block and its offsets in the secret."""

    @classmethod
    def of(cls, text: str) -> _Secret:
        m = fragment_length(len(text))
        # a run of m characters starting at offset i contains the block starting at the
        # first multiple of width >= i, which ends by i + 2 * width - 1 <= i + m
        width = (m + 1) // 2
        offsets: dict[str, list[int]] = {}
        for off in range(0, len(text) - width + 1, width):
            offsets.setdefault(text[off : off + width], []).append(off)
        blocks = tuple((b, tuple(o)) for b, o in offsets.items())
        return cls(text, m, width, blocks)

    def runs(self, text: str, found: list[tuple[int, int]]) -> None:
        """Append to ``found`` every maximal run ``(start, end)`` of ``text`` that matches
        the secret's characters at one alignment and is at least :attr:`fragment` long."""
        key = self.text
        n = len(key)
        m = self.fragment
        width = self.width
        size = len(text)
        reach: dict[int, int] = {}  # alignment (text pos - key offset) -> end found
        for block, offsets in self.blocks:
            p = text.find(block)
            while p >= 0:
                for off in offsets:
                    diag = p - off
                    if reach.get(diag, -1) >= p + width:
                        continue  # inside a run already found at this alignment
                    s, ks = p, off
                    while s > 0 and ks > 0 and text[s - 1] == key[ks - 1]:
                        s -= 1
                        ks -= 1
                    e, ke = p + width, off + width
                    while e < size and ke < n and text[e] == key[ke]:
                        e += 1
                        ke += 1
                    reach[diag] = e
                    if e - s >= m:
                        found.append((s, e))
                p = text.find(block, p + 1)

    def tail(self, text: str) -> int:
        """How many characters at the end of ``text`` to hold back: the longest end that
        is a beginning of the secret (of any length), or a piece of it of at least
        :data:`HOLD_PIECE` characters (shorter than the whole secret either way)."""
        key = self.text
        size = len(text)
        best = 0
        if size >= HOLD_PIECE and text[-HOLD_PIECE:] in key:
            # "the last k characters are a piece of the secret" holds for every k up to
            # the answer: search for it
            lo, hi = HOLD_PIECE, min(size, len(key) - 1)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if text[-mid:] in key:
                    lo = mid
                else:
                    hi = mid - 1
            best = lo
        first = key[0]
        p = text.find(first, max(0, size - len(key) + 1))
        while 0 <= p < size - best:  # the first match is the longest
            if key.startswith(text[p:]):
                return size - p
            p = text.find(first, p + 1)
        return best


def _merge(found: list[tuple[int, int]]) -> list[tuple[int, int]]:
    found.sort()
    merged = [found[0]]
    for s, e in found[1:]:
        last_s, last_e = merged[-1]
        if s <= last_e:
            if e > last_e:
                merged[-1] = (last_s, e)
        else:
            merged.append((s, e))
    return merged


class Redactor:
    """Blanks out known secrets and their long fragments (see the module docstring)."""

    __slots__ = ("_blocks", "_secrets", "secrets")

    def __init__(self, secrets: Iterable[str]) -> None:
        kept: list[str] = []
        for s in secrets:
            if len(s) >= MIN_SECRET:
                kept.append(s)
                escaped = _json_escaped(s)
                if escaped != s:  # as it appears inside a raw event's JSON data
                    kept.append(escaped)
        self.secrets: tuple[str, ...] = tuple(dict.fromkeys(kept))
        """The secrets searched for."""
        self._secrets = tuple(_Secret.of(s) for s in self.secrets)
        self._blocks = tuple(dict.fromkeys(b for s in self._secrets for b, _ in s.blocks))

    @classmethod
    def for_sessions(cls, sessions: Iterable[SessionConfig]) -> Redactor:
        """One redactor for the secrets of all ``sessions`` (output streams, logs)."""
        return cls(s for session in sessions for s in session_secrets(session))

    def __bool__(self) -> bool:
        """False when there is nothing to redact."""
        return bool(self._secrets)

    def runs(self, text: str) -> list[tuple[int, int]]:
        """The sorted, disjoint spans of ``text`` that are secrets or long fragments."""
        for block in self._blocks:
            if block in text:
                break
        else:  # the usual case: one C search per block, nothing found
            return []
        found: list[tuple[int, int]] = []
        for secret in self._secrets:
            secret.runs(text, found)
        return _merge(found) if found else found

    def redact(self, text: str) -> str:
        """``text`` with every secret and long fragment replaced by :data:`REDACTED`."""
        if not self._secrets or not text:
            return text
        runs = self.runs(text)
        if not runs:
            return text
        parts: list[str] = []
        at = 0
        for s, e in runs:
            parts.append(text[at:s])
            parts.append(REDACTED)
            at = e
        parts.append(text[at:])
        return "".join(parts)

    def redact_optional(self, text: str | None) -> str | None:
        """:meth:`redact` for an optional string."""
        return None if text is None else self.redact(text)

    def tail(self, text: str) -> int:
        """How many characters at the end of ``text`` to hold back (:data:`HOLD_PIECE`)."""
        best = 0
        for secret in self._secrets:
            n = secret.tail(text)
            if n > best:
                best = n
        return best

    def redact_value(self, value: Any) -> Any:
        """Strings, and the strings inside lists, tuples and dicts, redacted (for log
        arguments and records); anything else as is."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list | tuple):
            return type(value)(self.redact_value(v) for v in value)
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        return value


def _json_escaped(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)[1:-1]
