"""A conversation's output count says what it counts, as a run's does: a server whose usage
is zero for an answer with content (aimock's Responses) or missing is estimated by the
tokenizer, and the conversation's total and `tokentop run`'s lines mark it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from tui.headless.output import conversation_line, conversations_table
from tui.session.conversation_view import ConversationOutcome, _turn_view
from tui.session.run import SessionRun
from tui.stream.accumulate import fold_events
from tui.stream.events import Connecting, Finished, RunEvent, TextDelta, Usage

ANSWER = "Rivers carry water from the hills to the sea, shaping valleys on the way."


@dataclass
class Run:
    """What a turn's view reads of a session run."""

    accumulator: Any
    turn: int = 1
    run_id: str = "r1"
    prompt: str = "rivers"


def turn(usage: Usage | None) -> Any:
    events: list[RunEvent] = [
        Connecting(0.0, 1, "POST", "http://x/v1/responses"),
        TextDelta(0.1, ANSWER),
    ]
    if usage is not None:
        events.append(usage)
    events.append(Finished(0.2, "completed", "stop", "completed", None))
    acc = fold_events(events, "r1", "s", "responses", "m", "rivers")
    return _turn_view(cast(SessionRun, Run(acc)), True, None, False)


def test_a_zero_usage_for_an_answer_is_no_usage() -> None:
    reported = turn(Usage(0.15, 12, 16))
    assert (reported.output_tokens, reported.output_counted) == (16, "usage")
    for usage in (Usage(0.15, 0, 0), None):
        estimated = turn(usage)
        assert estimated.output_counted == "estimated"
        assert estimated.output_tokens is not None and estimated.output_tokens > 0


def outcome(counted: str, tokens: int) -> ConversationOutcome:
    return ConversationOutcome(
        session="aimock-resp",
        api="responses",
        conversation_id="c434c682aaaa",
        turns_done=2,
        turns_planned=2,
        input_tokens=0,
        output_tokens=tokens,
        duration_s=0.9,
        ended="completed",
        stopped_at=None,
        reason=None,
        mode="client",
        fell_back=True,
        run_ids=("a", "b"),
        output_counted=counted,  # type: ignore[arg-type]
    )


def test_run_marks_an_estimated_conversation_total() -> None:
    estimated = outcome("estimated", 25)
    assert "~25 output tokens (estimated)" in conversation_line(estimated)
    assert "items since the server kept none" in conversation_line(estimated)
    row = conversations_table([estimated]).splitlines()[-1]
    assert " ~25 " in row
    assert estimated.as_dict()["output_tokens_source"] == "estimated"
    assert "30 output tokens," in conversation_line(outcome("usage", 30))
    assert "7 output chunks" in conversation_line(outcome("chunks", 7))
