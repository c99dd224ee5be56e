"""What the faces see of a session's conversation: a read-only view of its turns
(:class:`ConversationView`), the summary of a series of turns once it ended
(:class:`ConversationOutcome`), the reason a follow-up is refused (:class:`TurnRefused`) and
the wording of the failures that belong to a conversation (:func:`turn_error`).

The views are frozen snapshots built from the current branch's runs (the run of each kept
turn, then the latest try of the next one): a face may keep one, compare it, or poll
``controller.conversation`` (cached per batch) at its own rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from tui.session.conversation import KEPT_STATUSES
from tui.stream.events import RunError
from tui.stream.result import ToolCall
from tui.vocab import Api, FinishReason, HistoryMode, RunStatus, SessionState

if TYPE_CHECKING:
    from tui.session.conversation import ConversationState
    from tui.session.run import SessionRun
    from tui.stream.metrics import TokensSource

__all__ = [
    "ConversationEnd",
    "ConversationOutcome",
    "ConversationView",
    "TurnRefused",
    "TurnView",
    "conversation_view",
    "summarize",
    "turn_error",
]

ConversationEnd: TypeAlias = Literal["completed", "stopped", "cancelled"]
"""How a series of turns ended: every planned turn kept, a turn that failed stopped it, or
it was cancelled (a turn cancelled, or cancelled between turns)."""


class TurnRefused(Exception):
    """A follow-up that cannot be sent now; the message says why (fit to show)."""


def send_refusal(
    name: str, running: bool, run: SessionRun | None, state: SessionState
) -> str | None:
    """Why session ``name`` cannot take a follow-up now (a sentence), or None: while its
    run loop is ``running`` its current ``run`` is not done, or it is in ``state``
    ``waiting`` for a scheduled run, or it is still running a conversation."""
    if not running:
        return None
    if run is not None and not run.done:
        return f"{name}: turn {run.turn} is still running: wait for its answer, or cancel it first"
    if state == "waiting":
        return f"{name} is waiting for its next scheduled run: cancel the schedule first"
    return f"{name} is still running its conversation: wait for it, or cancel it first"


@dataclass(frozen=True, slots=True)
class TurnView:
    """One turn of the current branch, as it stands."""

    turn: int
    """Its number, from 1."""
    run_id: str
    prompt: str
    """What was sent (the output of the previous turn's tool calls when ``answers_tools``)."""
    answer: str
    """The answer so far (its text; tool calls are in :attr:`tool_calls`)."""
    status: RunStatus | None
    """None while it runs."""
    finish_reason: FinishReason | None
    error: str | None
    """Why it failed (a sentence that names the turn where the conversation is the cause)."""
    input_tokens: int | None
    """Its input tokens, from the server's usage (the whole history it carried)."""
    output_tokens: int | None
    input_tokens_so_far: int | None
    """Input tokens of turns 1 to this one together (None when a turn reported none)."""
    kept: bool
    """Part of the history of the next turn (completed, or cut but answered)."""
    tool_calls: tuple[ToolCall, ...]
    answers_tools: bool
    """Its prompt was sent as the output of the previous turn's tool calls."""
    output_counted: TokensSource = "usage"
    """What :attr:`output_tokens` counts: the server's usage, a tokenizer's estimate (no
    usage, or a usage of zero for an answer with content), or content chunks."""


@dataclass(frozen=True, slots=True)
class ConversationView:
    """A session's current conversation (``controller.conversation``)."""

    conversation_id: str
    turns: tuple[TurnView, ...]
    """The current branch: each kept turn, then the latest try of the next one."""
    planned: int
    """Turns planned (a scripted conversation's turns; at least the turns sent)."""
    mode: HistoryMode
    """How a Responses follow-up carries the history now (``client`` after a fallback)."""
    fell_back: bool
    """The server refused ``previous_response_id`` (``auto`` mode sends the items since)."""
    server_keeps: bool
    """False when the session sends ``store: false`` (no ``previous_response_id``)."""
    pending_tool_calls: tuple[ToolCall, ...]
    """The tool calls the next prompt answers (the last kept turn's, if it ended in some)."""
    running: bool
    """A turn (or a series of them) is running."""

    @property
    def next_turn(self) -> int:
        """The number of the turn a follow-up would be."""
        return sum(1 for t in self.turns if t.kept) + 1

    @property
    def answers_tool_call(self) -> bool:
        """True when the next prompt is sent as the output of the last turn's tool calls."""
        return bool(self.pending_tool_calls)

    @property
    def input_tokens(self) -> int:
        """Input tokens of every turn shown, together (turns without usage count 0)."""
        return sum(t.input_tokens or 0 for t in self.turns)

    @property
    def output_tokens(self) -> int:
        """Output tokens of every turn shown, together."""
        return sum(t.output_tokens or 0 for t in self.turns)

    @property
    def output_counted(self) -> TokensSource:
        """What :attr:`output_tokens` counts: ``usage`` when every turn's count is the
        server's, ``chunks`` when some turn counted chunks, else ``estimated``."""
        sources = {t.output_counted for t in self.turns if t.output_tokens}
        if "chunks" in sources:
            return "chunks"
        return "estimated" if "estimated" in sources else "usage"


@dataclass(frozen=True, slots=True)
class ConversationOutcome:
    """A series of turns that ended: a started conversation's script, a follow-up, an
    edited or retried turn (the conversation's totals as they stand then)."""

    session: str
    api: Api
    conversation_id: str
    turns_done: int
    """Kept turns of the conversation."""
    turns_planned: int
    input_tokens: int
    output_tokens: int
    duration_s: float
    """From the start of the series' first turn to the end of its last."""
    ended: ConversationEnd
    stopped_at: int | None
    """The turn that stopped or was cancelled (None when the series completed)."""
    reason: str | None
    """Why it stopped (the failed turn's error), or None."""
    mode: HistoryMode
    fell_back: bool
    run_ids: tuple[str, ...]
    """The runs of the series, in order."""
    output_counted: TokensSource = "usage"
    """What :attr:`output_tokens` counts (see :attr:`ConversationView.output_counted`)."""

    @property
    def ok(self) -> bool:
        """True when every planned turn was kept."""
        return self.ended == "completed"

    def as_dict(self) -> dict[str, Any]:
        """The summary as ``tokentop run --jsonl`` prints it (without ``type``)."""
        return {
            "session": self.session,
            "api": self.api,
            "conversation_id": self.conversation_id,
            "turns_done": self.turns_done,
            "turns_planned": self.turns_planned,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "output_tokens_source": self.output_counted,
            "duration_ms": round(self.duration_s * 1000, 3),
            "ended": self.ended,
            "stopped_at": self.stopped_at,
            "reason": self.reason,
            "history": self.mode,
            "history_fallback": self.fell_back,
            "run_ids": list(self.run_ids),
        }


def _turn_view(run: SessionRun, kept: bool, so_far: int | None, answers: bool) -> TurnView:
    acc = run.accumulator
    usage = acc.usage
    input_tokens = usage.input_tokens if usage is not None else None
    output_tokens = usage.output_tokens if usage is not None else None
    counted: TokensSource = "usage"
    if not output_tokens and acc.done:  # no usage, or zero for an answer (aimock's)
        metrics = acc.metrics()
        output_tokens, counted = metrics.output_tokens, metrics.tokens_source
    return TurnView(
        turn=run.turn,
        run_id=run.run_id,
        prompt=run.prompt,
        answer=acc.output_text,
        status=acc.status,
        finish_reason=acc.finish_reason,
        error=None if acc.error is None else acc.error.message,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        input_tokens_so_far=None if so_far is None or input_tokens is None else so_far,
        kept=kept,
        tool_calls=tuple(acc.tool_calls),
        answers_tools=answers,
        output_counted=counted,
    )


def conversation_view(state: ConversationState, *, running: bool) -> ConversationView:
    """The view of ``state`` now (see :class:`ConversationView`)."""
    turns: list[TurnView] = []
    so_far: int | None = 0
    calls: tuple[ToolCall, ...] = ()
    for index, run in enumerate(state.runs):
        kept = index < len(state.turns)
        usage = run.accumulator.usage
        used = usage.input_tokens if usage is not None else None
        so_far = None if so_far is None or used is None else so_far + used
        turns.append(_turn_view(run, kept, so_far, bool(calls)))
        calls = state.turns[index].tool_calls if kept else ()
    return ConversationView(
        conversation_id=state.conversation_id,
        turns=tuple(turns),
        planned=max(len(state.plan), len(state.runs)),
        mode=state.mode,
        fell_back=state.fell_back,
        server_keeps=state.server_keeps,
        pending_tool_calls=state.turns[-1].tool_calls if state.turns else (),
        running=running,
    )


def summarize(
    session: str, state: ConversationState, runs: Sequence[SessionRun], *, planned: int
) -> ConversationOutcome:
    """The summary of the series ``runs`` of ``state``'s conversation, which was to reach
    turn ``planned``."""
    view = conversation_view(state, running=False)
    kept = len(state.turns)
    last = runs[-1] if runs else None
    acc = None if last is None else last.accumulator
    ended: ConversationEnd
    stopped_at: int | None = None
    reason: str | None = None
    if acc is not None and kept >= planned and acc.status in KEPT_STATUSES:
        ended = "completed"
    elif acc is not None and last is not None and acc.status == "failed":
        ended, stopped_at = "stopped", last.turn
        reason = acc.error.message if acc.error is not None else "the turn failed"
    else:  # a turn cancelled, or the series cancelled between turns
        ended = "cancelled"
        cut = last is not None and acc is not None and acc.status == "cancelled"
        stopped_at = last.turn if cut and last is not None else kept + 1
    duration = 0.0
    if last is not None and acc is not None:
        ran_ms = acc.metrics().duration_ms or 0.0
        duration = last.started_mono - runs[0].started_mono + ran_ms / 1000
    return ConversationOutcome(
        session=session,
        api=state.api,
        conversation_id=state.conversation_id,
        turns_done=kept,
        turns_planned=max(planned, kept),
        input_tokens=view.input_tokens,
        output_tokens=view.output_tokens,
        output_counted=view.output_counted,
        duration_s=duration,
        ended=ended,
        stopped_at=stopped_at,
        reason=reason,
        mode=state.mode,
        fell_back=state.fell_back,
        run_ids=tuple(r.run_id for r in runs),
    )


def turn_error(
    error: RunError, turn: int, *, mode: HistoryMode, sent_previous_id: bool
) -> RunError:
    """``error`` of turn ``turn`` worded as what it is when the conversation is its cause:
    a history that outgrew the model's context window, or a server that refused
    ``previous_response_id`` in ``server`` mode (which has nothing else to send)."""
    if error.code == "context_length_exceeded":
        fits = "no longer fits" if turn > 1 else "does not fit"
        message = (
            f"turn {turn} {fits} the model's context window "
            f"(context_length_exceeded): {error.message}"
        )
        return replace(error, message=message)
    if sent_previous_id and mode == "server" and error.http_status in (400, 404):
        message = (
            f"turn {turn}: the server refused previous_response_id ({error.message}); "
            'history = "server" sends nothing else, so the conversation cannot go on: use '
            'history = "auto" or "client" with this server'
        )
        return replace(error, message=message)
    return error
