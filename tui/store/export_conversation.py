"""A stored conversation rendered for people (Markdown) or programs (JSON, JSON lines), as
pieces of text written one after the other (``tokentop export ID``).

Every format holds every turn with its prompt, answer, finish reason, tool calls, usage and
metrics, and its branches (the turn's other runs: earlier answers of an edit, failed tries)
marked as such. A conversation of one run is exported as that run always was, plus its
``conversation_id`` and ``turn``, so that what read a run's export reads it still:

- ``md``: the run's page (:func:`~tui.store.export.to_markdown`); with several runs, a
  header with a table of the turns, then a section per run, in the order they started.
- ``json``: the run's object (:func:`~tui.store.export.run_fields`) of the run the id named
  (for a conversation id, the last turn's answer); with several runs it also has
  ``branch`` (whether that run is a branch) and ``turns``: per turn, its answer's object
  with a ``branches`` list of theirs.
- ``jsonl``: per run, in the order they started turn by turn, a ``{"kind": "Turn"}`` line
  (``turn``, ``branch`` and the run's object) and then its events' lines
  (:func:`~tui.store.export.to_jsonl`, each with ``run_id`` and ``turn``), read and written
  a batch at a time (:meth:`~tui.store.reading.RunQueries.iter_run_events`): memory stays
  bounded on a run of any size.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

from tui.stream.events import RunEvent
from tui.vocab import MISSING

from .conversation_records import ConversationRecord, ConversationTurn
from .export import (
    ExportFormat,
    json_line,
    md_cell,
    md_table,
    run_fields,
    run_rows,
    run_sections,
    to_jsonl,
    to_markdown,
)
from .records import RunDetail

__all__ = ["EventSource", "export_conversation", "named_run", "to_json", "to_markdown_pieces"]


LINES_PER_PIECE = 512
"""JSON lines written at once (a write per line would be a system call per event)."""


class EventSource(Protocol):
    """Where a run's events are read (:class:`~tui.store.store.Store` is one)."""

    def iter_run_events(
        self, run_id_or_prefix: str, batch: int = ...
    ) -> AsyncIterator[list[RunEvent]]:
        """The run's events, in order, a batch at a time."""
        ...


def named_run(record: ConversationRecord, id_or_prefix: str) -> RunDetail:
    """The run of ``record`` that ``id_or_prefix`` names (its id, or a prefix that only it
    of the conversation's runs has, and that the conversation's id does not have); for the
    conversation's own id (or a prefix of it), its last turn's answer."""
    wanted = id_or_prefix.strip().lower()
    runs = list(record.runs)
    exact = [r for r in runs if r.run_id.lower() == wanted]
    if exact:
        return exact[0]
    if not record.id.lower().startswith(wanted):
        prefixed = [r for r in runs if r.run_id.lower().startswith(wanted)]
        if len(prefixed) == 1:
            return prefixed[0]
    return record.turns[-1].run


def _several(record: ConversationRecord) -> bool:
    return len(record.turns) > 1 or bool(record.turns[0].branches)


def _turn_fields(turn: ConversationTurn) -> dict[str, Any]:
    return {**run_fields(turn.run), "branches": [run_fields(b) for b in turn.branches]}


def to_json(record: ConversationRecord, top: RunDetail) -> Iterator[str]:
    """The conversation as indented JSON (see the module), ``top`` the run at the top level;
    the pieces join to ``json.dumps(whole, indent=2)`` and a newline."""
    fields = run_fields(top)
    if not _several(record):
        yield json.dumps(fields, ensure_ascii=False, indent=2) + "\n"
        return
    found = record.turn_of(top.run_id)
    fields["branch"] = found is not None and found[1]
    head = json.dumps(fields, ensure_ascii=False, indent=2)
    yield head[: -len("\n}")] + ',\n  "turns": ['
    for i, turn in enumerate(record.turns):
        text = json.dumps(_turn_fields(turn), ensure_ascii=False, indent=2)
        yield ("," if i else "") + "\n" + textwrap.indent(text, "    ", lambda _: True)
    yield "\n  ]\n}\n"


def _turns_table(record: ConversationRecord) -> list[str]:
    """One line per run: turn, answer or branch, status, finish, tokens in and out, TTFT,
    duration, run id."""
    out = [
        "| Turn | | Status | Finish | Input tokens | Output tokens | TTFT | Duration | Run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for turn in record.turns:
        for run, branch in turn.tries:
            cells = (
                str(turn.turn),
                "branch" if branch else "answer",
                run.status,
                run.finish_reason or MISSING,
                MISSING if run.input_tokens is None else str(run.input_tokens),
                MISSING if run.output_tokens is None else str(run.output_tokens),
                MISSING if run.ttft_ms is None else f"{run.ttft_ms:.1f} ms",
                MISSING if run.duration_ms is None else f"{run.duration_ms:.1f} ms",
                f"`{run.run_id}`",
            )
            out.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    return out


def to_markdown_pieces(record: ConversationRecord) -> Iterator[str]:
    """The conversation for reading (see the module), piece by piece."""
    if not _several(record):
        yield to_markdown(record.turns[0].run)
        return
    first = record.turns[0].run
    runs = sum(1 for _ in record.runs)
    rows = [
        ("Conversation", f"`{record.id}`"),
        ("Session", record.session),
        ("Model", f"{record.model} ({first.api} API)"),
        ("Started", first.started_at.isoformat(timespec="seconds")),
        ("Turns", f"{len(record.turns)} ({runs} runs)"),
    ]
    head = [f"# {record.session} · {record.model} · {len(record.turns)} turns", ""]
    yield "\n".join([*head, *md_table(rows), "", *_turns_table(record)]) + "\n"
    for turn in record.turns:
        for run, branch in turn.tries:
            title = f"Turn {turn.turn}" + (" · branch (not the turn's answer)" if branch else "")
            rows = [r for r in run_rows(run) if r[0] not in ("Session",)]
            lines = ["", f"## {title}", "", *md_table(rows), *run_sections(run, 3)]
            yield "\n".join(lines).rstrip() + "\n"


async def export_conversation(
    store: EventSource, record: ConversationRecord, fmt: ExportFormat, *, top: RunDetail
) -> AsyncIterator[str]:
    """The conversation in ``fmt`` (see the module), as pieces of text; ``top`` is the run
    the id named (:func:`named_run`). Reads one run's events at a time from ``store``."""
    if fmt == "md":
        for piece in to_markdown_pieces(record):
            yield piece
    elif fmt == "json":
        for piece in to_json(record, top):
            yield piece
    else:
        for turn in record.turns:
            for run, branch in turn.tries:
                head = {"kind": "Turn", "turn": run.turn, "branch": branch}
                lines = [json_line(head | run_fields(run))]
                seq = 0
                async for chunk in store.iter_run_events(run.run_id):
                    for line in to_jsonl(chunk, run, first_seq=seq):
                        lines.append(line)
                        if len(lines) >= LINES_PER_PIECE:
                            yield "".join(lines)
                            lines.clear()
                    seq += len(chunk)
                yield "".join(lines)
