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

RESULT_KEYS = ISSUE_RESULT_KEYS | CONVERSATION_RESULT_KEYS | {"attempt_log"}
"""Every key of a result record: the issues' keys plus the per-attempt log."""
