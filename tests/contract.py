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

RESULT_KEYS = ISSUE_RESULT_KEYS | {"attempt_log"}
"""Every key of a result record: the issue's keys plus the per-attempt log."""
