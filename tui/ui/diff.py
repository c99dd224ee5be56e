"""Word-level diff of two answers, for the compare screen's diff mode.

Pure Python (no Textual): :func:`word_diff` returns spans tagged ``equal`` / ``insert`` /
``delete`` / ``replace`` that the screen styles with theme variables.

Tokens are words *with their trailing whitespace* (``"quick "``), punctuation runs (so that
``foo(bar)`` in a code block diffs as ``foo`` ``(`` ``bar`` ``)``), and single CJK ideographs
and kana (Chinese and Japanese do not separate words with spaces). Korean separates words
with spaces, so a Hangul word (eojeol) is one token like any other word.

Speed: ``SequenceMatcher`` with ``autojunk=False`` is quadratic in the number of repeated
tokens, which a 10k-word answer has plenty of (``"the "``). So the texts are first matched
line by line (lines rarely repeat), and only the changed line blocks are diffed word by word.
On two 10k-word answers that differ in a few places this takes a few tens of milliseconds;
see ``tests/ui/test_diff.py::test_large_answers_are_fast``.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal, TypeAlias

SpanKind: TypeAlias = Literal["equal", "insert", "delete", "replace"]
"""How a span of the two answers relates: same text, only right, only left, or changed."""

SideKind: TypeAlias = Literal["equal", "insert", "delete"]
"""How a piece of one side is shown: unchanged, added (right side) or removed (left side)."""

_CJK = (
    r"\u3040-\u30ff"  # hiragana, katakana
    r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs
)
_TOKEN = re.compile(
    rf"[{_CJK}]\s*"  # one ideograph or kana
    rf"|(?:(?![{_CJK}])\w)+\s*"  # a word (Latin, Hangul, digits, ...)
    r"|[^\w\s]+\s*"  # a punctuation run (code: braces, operators, fences)
    r"|\s+"  # leading whitespace
)


def tokenize(text: str) -> list[str]:
    """Split ``text`` into diff tokens; ``"".join(tokenize(text)) == text`` always holds."""
    return _TOKEN.findall(text)


@dataclass(frozen=True, slots=True)
class DiffSpan:
    """One run of the diff: ``left`` is the first answer's text, ``right`` the second's.

    ``equal`` spans have ``left == right``; ``insert`` spans have ``left == ""``; ``delete``
    spans have ``right == ""``; ``replace`` spans have both.
    """

    kind: SpanKind
    left: str
    right: str


@dataclass(frozen=True, slots=True)
class WordDiff:
    """The word-level diff of two answers."""

    spans: tuple[DiffSpan, ...]

    @property
    def identical(self) -> bool:
        """True when the two answers are the same text."""
        return all(s.kind == "equal" for s in self.spans)

    @property
    def changed(self) -> int:
        """Number of spans that are not ``equal`` (each one highlighted place)."""
        return sum(1 for s in self.spans if s.kind != "equal")

    def left_text(self) -> str:
        """The first answer, reassembled from the spans."""
        return "".join(s.left for s in self.spans)

    def right_text(self) -> str:
        """The second answer, reassembled from the spans."""
        return "".join(s.right for s in self.spans)

    def left_pieces(self) -> list[tuple[str, SideKind]]:
        """The first answer as pieces to style: changed text is ``delete``."""
        return _merge(
            (s.left, "equal" if s.kind == "equal" else "delete") for s in self.spans if s.left
        )

    def right_pieces(self) -> list[tuple[str, SideKind]]:
        """The second answer as pieces to style: changed text is ``insert``."""
        return _merge(
            (s.right, "equal" if s.kind == "equal" else "insert") for s in self.spans if s.right
        )

    def similarity(self) -> float:
        """Share of characters (0..1) that both answers have in common."""
        same = sum(len(s.left) for s in self.spans if s.kind == "equal")
        total = sum(len(s.left) + len(s.right) for s in self.spans)
        return 1.0 if total == 0 else 2 * same / total


def _merge(pieces: Iterable[tuple[str, SideKind]]) -> list[tuple[str, SideKind]]:
    """Join neighbouring pieces of the same kind."""
    merged: list[tuple[str, SideKind]] = []
    for text, kind in pieces:
        if merged and merged[-1][1] == kind:
            merged[-1] = (merged[-1][0] + text, kind)
        else:
            merged.append((text, kind))
    return merged


class _SpanBuilder:
    """Collects spans, merging neighbours so that the result is minimal and canonical."""

    def __init__(self) -> None:
        self.spans: list[DiffSpan] = []

    def add(self, left: str, right: str, *, equal: bool = False) -> None:
        """Add ``left`` (first answer) against ``right`` (second answer)."""
        if not left and not right:
            return
        if equal:
            kind: SpanKind = "equal"
        elif left and right:
            kind = "replace"
        else:
            kind = "delete" if left else "insert"
        if self.spans:
            last = self.spans[-1]
            if last.kind == kind == "equal":
                self.spans[-1] = DiffSpan("equal", last.left + left, last.right + right)
                return
            if last.kind != "equal" and kind != "equal":
                # Two changes next to each other are one change.
                left, right = last.left + left, last.right + right
                merged: SpanKind = "replace" if left and right else kind
                self.spans[-1] = DiffSpan(merged, left, right)
                return
        self.spans.append(DiffSpan(kind, left, right))


_SMALL = 400 * 400
"""Below this many token pairs, ``SequenceMatcher`` alone is fast enough."""
_HUGE = 3000 * 3000
"""Above this many token pairs without anchors, popular tokens are treated as junk."""


def _diff_tokens(a: Sequence[str], b: Sequence[str], out: _SpanBuilder) -> None:
    """Word-level diff of two token lists into ``out``.

    Large inputs are first cut at tokens that occur exactly once in each side, in the same
    order (patience diff's anchors); the pieces between anchors are small.
    """
    lo = 0
    while lo < len(a) and lo < len(b) and a[lo] == b[lo]:
        lo += 1
    hi = 0
    while hi < len(a) - lo and hi < len(b) - lo and a[-1 - hi] == b[-1 - hi]:
        hi += 1
    out.add("".join(a[:lo]), "".join(b[:lo]), equal=True)
    a_mid, b_mid = a[lo : len(a) - hi], b[lo : len(b) - hi]
    anchors = _anchors(a_mid, b_mid) if len(a_mid) * len(b_mid) > _SMALL else []
    if not anchors:
        # Without anchors, a huge block of few distinct words (a pathological answer) would
        # take seconds; there difflib's popularity heuristic keeps it bounded.
        huge = len(a_mid) * len(b_mid) > _HUGE
        matcher = SequenceMatcher(None, a_mid, b_mid, autojunk=huge)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            out.add("".join(a_mid[i1:i2]), "".join(b_mid[j1:j2]), equal=tag == "equal")
    else:
        i0 = j0 = 0
        for i, j in anchors:
            _diff_tokens(a_mid[i0:i], b_mid[j0:j], out)
            out.add(a_mid[i], b_mid[j], equal=True)
            i0, j0 = i + 1, j + 1
        _diff_tokens(a_mid[i0:], b_mid[j0:], out)
    tail = len(a) - hi
    out.add("".join(a[tail:]), "".join(b[len(b) - hi :]), equal=True)


def _anchors(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs (i, j) of tokens unique in both sides, longest run in the same order."""
    count_a: dict[str, int] = {}
    for tok in a:
        count_a[tok] = count_a.get(tok, 0) + 1
    where_b: dict[str, int] = {}
    count_b: dict[str, int] = {}
    for j, tok in enumerate(b):
        count_b[tok] = count_b.get(tok, 0) + 1
        where_b[tok] = j
    pairs = [
        (i, where_b[tok]) for i, tok in enumerate(a) if count_a[tok] == 1 and count_b.get(tok) == 1
    ]
    return _longest_increasing(pairs)


def _longest_increasing(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest subsequence of ``pairs`` (sorted by i) whose j also increases."""
    tails: list[int] = []  # tails[k] = index into pairs of the best run of length k + 1
    prev: list[int] = [-1] * len(pairs)
    tail_js: list[int] = []
    for n, (_, j) in enumerate(pairs):
        k = bisect_left(tail_js, j)
        if k:
            prev[n] = tails[k - 1]
        if k == len(tails):
            tails.append(n)
            tail_js.append(j)
        else:
            tails[k] = n
            tail_js[k] = j
    run: list[tuple[int, int]] = []
    n = tails[-1] if tails else -1
    while n >= 0:
        run.append(pairs[n])
        n = prev[n]
    return run[::-1]


def word_diff(left: str, right: str) -> WordDiff:
    """Diff two answers word by word.

    The result's spans reassemble both texts exactly (``left_text() == left``).
    """
    out = _SpanBuilder()
    if left == right:
        out.add(left, right, equal=True)
        return WordDiff(tuple(out.spans))
    a_lines = left.splitlines(keepends=True)
    b_lines = right.splitlines(keepends=True)
    lines = SequenceMatcher(None, a_lines, b_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in lines.get_opcodes():
        if tag == "equal":
            out.add("".join(a_lines[i1:i2]), "".join(b_lines[j1:j2]), equal=True)
        else:
            _diff_tokens(tokenize("".join(a_lines[i1:i2])), tokenize("".join(b_lines[j1:j2])), out)
    return WordDiff(tuple(out.spans))
