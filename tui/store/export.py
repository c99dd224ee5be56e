"""A stored run rendered for people (Markdown) or programs (JSON, JSON lines)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, Literal, TypeAlias

from tui.stream.events import RunEvent
from tui.stream.result import error_dict
from tui.vocab import MISSING

from .codec import event_fields
from .labels import client_words, tokens_words, tpot_of
from .records import RunDetail, RunSummary, result_record

ExportFormat: TypeAlias = Literal["md", "json", "jsonl"]
FORMATS: tuple[ExportFormat, ...] = ("md", "json", "jsonl")


def _num(value: float | None, unit: str = "", digits: int = 1) -> str:
    return MISSING if value is None else f"{value:.{digits}f}{unit}"


def json_line(value: Any) -> str:
    """``value`` as one line of JSON (UTF-8 kept; U+2028/U+2029, which some readers take for
    line breaks, escaped), newline included."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"


def md_cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell (one line, pipes escaped)."""
    return " ".join(text.split()).replace("|", "\\|")


def md_fence(text: str, info: str = "") -> str:
    """``text`` in a code fence longer than any backtick run inside it."""
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text}\n{ticks}"


def run_rows(run: RunDetail) -> list[tuple[str, str]]:
    """The run's table: identity, outcome, metrics and usage."""
    finish = run.finish_reason or MISSING
    if run.raw_finish_reason and run.raw_finish_reason != run.finish_reason:
        finish += f" (server said `{run.raw_finish_reason}`)"
    chunks = run.counted == "chunks"  # no usage, no tokenizer: the figures count chunks
    inter_chunk = (run.itl_p50_ms, run.itl_p95_ms, run.itl_p99_ms)
    rows = [
        ("Run", f"`{run.run_id}`"),
        ("Session", run.session),
        ("Model", f"{run.model} ({run.api} API)"),
        ("Started", run.started_at.isoformat(timespec="seconds")),
        ("Status", run.status),
        ("Finish reason", finish),
        ("TTFT", _num(run.ttft_ms, " ms")),
        ("Chunks/s" if chunks else "Tokens/s", _num(run.tokens_per_s, "", 2)),
        ("Inter-chunk p50 / p95 / p99", " / ".join(_num(v, " ms", 2) for v in inter_chunk)),
        ("TPOT (per output token)", _num(tpot_of(run), " ms", 2)),
        ("Duration", _num(run.duration_ms, " ms")),
        ("Input tokens", MISSING if run.input_tokens is None else str(run.input_tokens)),
        ("Output chunks" if chunks else "Output tokens", tokens_words(run)),
        ("Chunks", str(run.chunks)),
        ("Attempts", f"{run.attempts} ({run.resumes} resumed)"),
    ]
    if run.client_bound is not None:
        rows.append(("Client-bound", client_words(run)))
    if run.response_id:
        rows.append(("Response id", f"`{run.response_id}`"))
    if run.request_id:
        rows.append(("Request id", f"`{run.request_id}`"))
    return rows


def md_table(rows: Sequence[tuple[str, str]]) -> list[str]:
    """A two-column Markdown table without a header (the lines)."""
    return ["| | |", "|---|---|", *(f"| {k} | {md_cell(v)} |" for k, v in rows)]


def run_sections(run: RunDetail, level: int) -> list[str]:
    """The run's prompt, output, reasoning, tool calls, error and attempts, each under a
    heading of ``level`` (``##`` is 2)."""
    h = "#" * level
    out = ["", f"{h} Prompt", "", md_fence(run.prompt), "", f"{h} Output", ""]
    out.append(run.output_text or "_(none)_")
    if run.reasoning_text:
        out += ["", f"{h} Reasoning", "", run.reasoning_text]
    if run.tool_calls:
        out += ["", f"{h} Tool calls", ""]
        for call in run.tool_calls:
            out += [
                f"{h}# {call.name or '(unnamed)'} `{call.call_id or ''}`",
                "",
                md_fence(call.arguments, "json"),
                "",
            ]
    if run.error is not None:
        status = f" (HTTP {run.error.http_status})" if run.error.http_status else ""
        out += ["", f"{h} Error", "", f"**{run.error.kind}**{status}: {run.error.message}"]
    if len(run.attempt_records) > 1 or any(a.cause for a in run.attempt_records):
        out += ["", f"{h} Attempts", "", "| # | at | mode | HTTP | cause |"]
        out.append("|---|---|---|---|---|")
        for a in run.attempt_records:
            cause = f"{a.cause.kind}: {a.cause.message}" if a.cause else ""
            out.append(
                f"| {a.number} | {a.at_s:.3f} s | {a.mode or ''} | {a.http_status or ''} "
                f"| {md_cell(cause)} |"
            )
    return out


def to_markdown(run: RunDetail) -> str:
    """The run for reading: prompt, output, finish reason, metrics, attempts (and its
    conversation and turn when it is not a one-turn conversation of its own)."""
    rows = run_rows(run)
    if run.conversation_id != run.run_id:
        rows.insert(1, ("Conversation", f"`{run.conversation_id}`"))
    if run.turn != 1:
        rows.insert(2, ("Turn", str(run.turn)))
    out = [f"# {run.session} · {run.model}", "", *md_table(rows), *run_sections(run, 2)]
    return "\n".join(out).rstrip() + "\n"


def to_json(run: RunDetail) -> str:
    """The whole run (:func:`run_fields`) as indented JSON."""
    return json.dumps(run_fields(run), ensure_ascii=False, indent=2) + "\n"


def run_fields(run: RunDetail) -> dict[str, Any]:
    """The whole run: the result record (with its conversation and turn) plus ids, usage,
    config snapshot, and each attempt's details in ``attempt_log``."""
    record: dict[str, Any] = result_record(run)
    record.update(
        {
            "prompt": run.prompt,
            "response_id": run.response_id,
            "request_id": run.request_id,
            "first_token_s": run.first_token_s,
            "ended_s": run.ended_s,
            "usage": {
                "input_tokens": run.input_tokens,
                "output_tokens": run.output_tokens,
                "reasoning_tokens": run.reasoning_tokens,
                "cached_tokens": run.cached_tokens,
                "total_tokens": run.total_tokens,
            },
            "tool_calls": [
                {"index": c.index, "call_id": c.call_id, "name": c.name, "arguments": c.arguments}
                for c in run.tool_calls
            ],
            # the result record's attempt_log, with what only the store keeps (attempts
            # stays the count, as in `run --jsonl` and `history --json`)
            "attempt_log": [
                {
                    "number": a.number,
                    "at_s": a.at_s,
                    "mode": a.mode,
                    "http_status": a.http_status,
                    "request_id": a.request_id,
                    "cause": error_dict(a.cause),
                    "resumed_after": a.after_sequence,
                    "last_event_id": a.last_event_id,
                    "output_text": a.output_text,
                }
                for a in run.attempt_records
            ],
            "config": dict(run.config),
            "events": run.event_count,
        }
    )
    return record


def to_jsonl(
    events: Sequence[RunEvent], run: RunSummary | None = None, *, first_seq: int = 0
) -> Iterator[str]:
    """One JSON line per event: ``seq`` (its place in its run; ``events`` begin at
    ``first_seq``), ``t`` (seconds since the run started), ``kind`` and the event's fields;
    with ``run``, also the ``run_id`` and ``turn`` of the run they are of."""
    where = {} if run is None else {"run_id": run.run_id, "turn": run.turn}
    for seq, event in enumerate(events, first_seq):
        line: dict[str, Any] = {"seq": seq, "t": event.t, "kind": type(event).__name__}
        line.update(event_fields(event))
        line.update(where)
        yield json_line(line)
