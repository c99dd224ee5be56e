"""A stored run's figures named for what they measured, for every text that shows them
(``tokentop history``, the Markdown export).

- Output tokens: the server's count as is, ``~N`` / "(estimated)" when a tokenizer
  estimated it, ``Nch`` / "chunks" when neither served and the figure counts content chunks
  (its rate is chunks per second).
- Inter-chunk latency (the stored ``itl_p*_ms``) is per chunk; TPOT, time per output token,
  only exists for counted tokens.
- A client-bound run's timing may be tokentop's own (its loop lagged past the bound).
"""

from __future__ import annotations

from collections.abc import Iterable

from tui.stream.metrics import time_per_output_token
from tui.vocab import MISSING

from .records import RunSummary

__all__ = ["client_words", "tokens_cell", "tokens_legend", "tokens_words", "tpot_of"]


def tokens_cell(run: RunSummary) -> str:
    """The output count in a table cell: ``412``, ``~412`` (estimated), ``103ch`` (chunks)."""
    if run.output_tokens is None:
        return MISSING
    counted = run.counted
    if counted == "chunks":
        return f"{run.output_tokens}ch"
    return f"~{run.output_tokens}" if counted == "estimated" else str(run.output_tokens)


def tokens_words(run: RunSummary) -> str:
    """The output count in words: ``412``, ``~412 (estimated)``, ``103 chunks (no usage,
    no tokenizer)``."""
    if run.output_tokens is None:
        return MISSING
    counted = run.counted
    if counted == "chunks":
        return f"{run.output_tokens} chunks (no usage, no tokenizer)"
    if counted == "estimated":
        return f"~{run.output_tokens} (estimated)"
    return str(run.output_tokens)


def tpot_of(run: RunSummary) -> float | None:
    """The run's time per output token in ms: stored, or for a run stored before it was
    kept the result record's formula over its figures (None when the tokens are chunks)."""
    if run.tpot_ms is not None:
        return run.tpot_ms
    return time_per_output_token(run.duration_ms, run.ttft_ms, run.output_tokens, run.counted)


def client_words(run: RunSummary) -> str:
    """Whether the run's timing is the client's: ``client-bound (engine lag p99 81.2 ms)``,
    ``no (engine lag p99 3.1 ms)``, or :data:`MISSING` when unknown."""
    if run.client_bound is None:
        return MISSING
    lag = run.client_lag_p99_ms
    measured = "" if lag is None else f" (engine lag p99 {lag:.1f} ms)"
    return ("client-bound" if run.client_bound else "no") + measured


def tokens_legend(runs: Iterable[RunSummary]) -> list[str]:
    """What the marks of a table of ``runs`` mean (only those that occur)."""
    counted = {run.counted for run in runs if run.output_tokens is not None}
    notes = []
    if "estimated" in counted:
        notes.append("~N: estimated by a tokenizer (the server sent no usage)")
    if "chunks" in counted:
        notes.append("Nch: content chunks, not tokens (no usage, no tokenizer; tok/s is chunks/s)")
    return notes
