"""Facts of the public contract that several test modules check."""

from __future__ import annotations

ISSUE_RESULT_KEYS = frozenset(
    {
        "session",
        "run_id",
        "api",
        "model",
        "status",
        "finish_reason",
        "raw_finish_reason",
        "output_text",
        "reasoning_text",
        "tool_calls",
        "input_tokens",
        "output_tokens",
        "tokens_estimated",
        "chunks",
        "ttft_ms",
        "duration_ms",
        "tokens_per_s",
        "itl_ms",
        "attempts",
        "resumes",
        "error",
    }
)
"""The result record keys that issue #2 requires of ``tokentop run --jsonl``."""

CONVERSATION_RESULT_KEYS = frozenset({"conversation_id", "turn"})
"""The result record keys that issue #11 adds: the run's conversation and its turn (1-based)."""

TRUTHFUL_RESULT_KEYS = frozenset({"inter_chunk_ms", "tpot_ms", "tokens_source"})
"""The keys that issue #13 adds: inter-chunk latency under its own name (``itl_ms`` keeps
the same figures), time per output token, and what ``output_tokens`` counts."""

CLIENT_LAG_KEYS = frozenset({"client_lag_p99_ms", "client_bound"})
"""The keys a session's run adds (issue #13): the engine loop's own lag during the run and
whether it passed the bound, so a saturated tokentop does not pass for a slow server."""

RESULT_KEYS = ISSUE_RESULT_KEYS | CONVERSATION_RESULT_KEYS | TRUTHFUL_RESULT_KEYS | {"attempt_log"}
"""Every key of a result record: the issues' keys plus the per-attempt log (a session
run's record, e.g. ``tokentop run --jsonl``'s, also has :data:`CLIENT_LAG_KEYS`)."""
