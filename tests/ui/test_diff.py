"""Word-level diff of two answers (tui/ui/diff.py)."""

from __future__ import annotations

import random
import time

import pytest

from tui.ui.diff import DiffSpan, tokenize, word_diff


def kinds(left: str, right: str) -> list[tuple[str, str, str]]:
    """The diff as (kind, left, right) triples."""
    return [(s.kind, s.left, s.right) for s in word_diff(left, right).spans]


def test_identical_texts_are_one_equal_span() -> None:
    diff = word_diff("same answer\n", "same answer\n")
    assert diff.spans == (DiffSpan("equal", "same answer\n", "same answer\n"),)
    assert diff.identical
    assert diff.changed == 0
    assert diff.similarity() == 1.0


def test_both_empty() -> None:
    diff = word_diff("", "")
    assert diff.spans == ()
    assert diff.identical
    assert diff.similarity() == 1.0


def test_insert() -> None:
    assert kinds("the quick fox", "the quick brown fox") == [
        ("equal", "the quick ", "the quick "),
        ("insert", "", "brown "),
        ("equal", "fox", "fox"),
    ]


def test_delete() -> None:
    assert kinds("the quick brown fox", "the brown fox") == [
        ("equal", "the ", "the "),
        ("delete", "quick ", ""),
        ("equal", "brown fox", "brown fox"),
    ]


def test_replace() -> None:
    assert kinds("streams at 40 tokens per second", "streams at 55 tokens per second") == [
        ("equal", "streams at ", "streams at "),
        ("replace", "40 ", "55 "),
        ("equal", "tokens per second", "tokens per second"),
    ]


def test_adjacent_changes_merge_into_one_replace() -> None:
    spans = word_diff("a b c d", "a x y d").spans
    assert [s.kind for s in spans] == ["equal", "replace", "equal"]
    assert spans[1] == DiffSpan("replace", "b c ", "x y ")


def test_one_side_empty() -> None:
    assert kinds("", "new text") == [("insert", "", "new text")]
    assert kinds("old text", "") == [("delete", "old text", "")]


def test_korean_words() -> None:
    left = "저는 사과를 좋아합니다. 오늘은 날씨가 맑습니다."
    right = "저는 배를 좋아합니다. 오늘은 날씨가 흐립니다."
    assert kinds(left, right) == [
        ("equal", "저는 ", "저는 "),
        ("replace", "사과를 ", "배를 "),
        ("equal", "좋아합니다. 오늘은 날씨가 ", "좋아합니다. 오늘은 날씨가 "),
        ("replace", "맑습니다", "흐립니다"),
        ("equal", ".", "."),
    ]


def test_cjk_without_spaces_diffs_per_character() -> None:
    assert kinds("今日は晴れです", "今日は雨です") == [
        ("equal", "今日は", "今日は"),
        ("replace", "晴れ", "雨"),
        ("equal", "です", "です"),
    ]


def test_code_block_diffs_identifiers_not_whole_lines() -> None:
    left = "```python\ndef area(r):\n    return 3.14 * r * r\n```\n"
    right = "```python\ndef area(radius):\n    return 3.14 * radius * radius\n```\n"
    diff = word_diff(left, right)
    changed = [(s.left.strip(), s.right.strip()) for s in diff.spans if s.kind != "equal"]
    assert changed == [("r", "radius")] * 3
    # Fences and keywords stay equal.
    equal = "".join(s.left for s in diff.spans if s.kind == "equal")
    assert "```python" in equal and "def area(" in equal and "return 3.14" in equal


def test_side_pieces_mark_removed_and_added_text() -> None:
    diff = word_diff("keep old keep", "keep new keep")
    assert diff.left_pieces() == [("keep ", "equal"), ("old ", "delete"), ("keep", "equal")]
    assert diff.right_pieces() == [("keep ", "equal"), ("new ", "insert"), ("keep", "equal")]


@pytest.mark.parametrize(
    "text",
    ["", "plain words here", "  leading\n\ttabs\r\nand CRLF  ", "사과를 먹었다!", "x=f(y)->z"],
)
def test_tokenize_round_trips(text: str) -> None:
    assert "".join(tokenize(text)) == text


def test_tokens_carry_trailing_whitespace() -> None:
    assert tokenize("foo(bar)  baz\n") == ["foo", "(", "bar", ")  ", "baz\n"]


def test_random_edits_reassemble_both_texts() -> None:
    rng = random.Random(7)
    vocab = ["alpha", "beta", "감마", "delta", "(", ")", "\n", "  ", "epsilon"]
    for _ in range(200):
        a = " ".join(rng.choices(vocab, k=rng.randint(0, 40)))
        b = " ".join(rng.choices(vocab, k=rng.randint(0, 40)))
        diff = word_diff(a, b)
        assert diff.left_text() == a
        assert diff.right_text() == b
        for span in diff.spans:
            assert (span.kind == "equal") == (span.left == span.right and bool(span.left))
        # No two neighbouring spans are both changes or both equal.
        for first, second in zip(diff.spans, diff.spans[1:], strict=False):
            assert (first.kind == "equal") != (second.kind == "equal")


def _answer(rng: random.Random, words: int) -> list[str]:
    """A Zipf-like answer of ``words`` words."""
    vocab = [f"word{i}" for i in range(3000)]
    weights = [1 / (i + 1) for i in range(len(vocab))]
    return rng.choices(vocab, weights, k=words)


def test_large_answers_are_fast() -> None:
    rng = random.Random(3)
    words = _answer(rng, 10_000)
    edited = list(words)
    for k in range(0, len(edited), 400):
        edited[k] = "CHANGED"
    left = " ".join(words)  # one 10k-word line: the worst case for the line pass
    right = " ".join(edited)
    other = " ".join(_answer(rng, 10_000))

    start = time.perf_counter()
    similar = word_diff(left, right)
    different = word_diff(left, other)
    elapsed = time.perf_counter() - start

    assert similar.changed == 25
    assert similar.right_text() == right
    assert different.left_text() == left and different.right_text() == other
    # Measured at ~0.03 s for both on an idle machine (a quadratic pass takes minutes): the
    # bound only catches the wrong complexity, with room for a loaded 2-core CI machine.
    assert elapsed < 10.0, elapsed


def test_few_distinct_words_stay_bounded() -> None:
    rng = random.Random(5)
    left = " ".join(rng.choices(["a", "b", "c", "d"], k=10_000))
    right = " ".join(rng.choices(["a", "b", "c", "d"], k=10_000))
    start = time.perf_counter()
    diff = word_diff(left, right)
    assert time.perf_counter() - start < 10.0  # the complexity, not the speed (see above)
    assert diff.left_text() == left and diff.right_text() == right
