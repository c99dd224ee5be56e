"""A session's conversation: the turns kept so far, and what the next turn carries.

A :class:`ConversationState` belongs to one session controller. Each run is a turn of its
current conversation: turn 1 starts a conversation (a new ``conversation_id``), a follow-up
carries the kept turns (:meth:`history`, a :class:`~tui.stream.history.Conversation` for the
stream layer), and the run's end decides what is kept (:meth:`finish`):

- a completed or cut (``incomplete``) answer becomes a turn: what the model said is part of
  the dialogue, also when it was cut;
- a failed or cancelled turn is not kept: retrying it sends its prompt once, not twice;
- a Responses server that refused ``previous_response_id`` (the stream layer's
  ``history_fallback`` notice) in a turn that the items then carried through teaches the
  session to send the items from then on;
- sending turn N again (an edited prompt, a restart of a kept turn: :meth:`keep_only`) drops
  turns N and later from the history, so that the new try is sent after turn N-1; the old
  answer stays in the store as a branch of the same turn.

Besides the history it keeps the current branch's runs (:attr:`runs`: the run of each kept
turn and the latest try of the turn after them, running or failed), which the views show,
and the plan (:attr:`plan`: the prompts planned by turn, a scripted conversation's turns).

A turn's answer is the redacted text the views and the store saw, and a response id is only
used when the session lets the server keep its responses (``store`` not false in ``params``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tui.stream.history import Conversation, Turn
from tui.vocab import Api, HistoryMode

if TYPE_CHECKING:
    from tui.session.run import SessionRun
    from tui.stream.accumulate import RunAccumulator

__all__ = ["KEPT_STATUSES", "ConversationState", "check_prompt", "new_conversation_id"]

KEPT_STATUSES = frozenset({"completed", "incomplete"})
"""Run statuses whose answer becomes a turn of the conversation."""


def new_conversation_id() -> str:
    """A fresh conversation id (tokentop's own, never a server's)."""
    return uuid.uuid4().hex


def check_prompt(prompt: str) -> None:
    """ValueError for a prompt that says nothing (empty or blank): no turn sends one."""
    if not prompt.strip():
        raise ValueError("the prompt must not be empty")


class ConversationState:
    """The current conversation of one session (see the module)."""

    def __init__(
        self,
        api: Api,
        *,
        mode: HistoryMode = "auto",
        messages: Sequence[Mapping[str, Any]] = (),
        server_keeps: bool = True,
        plan: Sequence[str] = (),
    ) -> None:
        self.api = api
        self.mode: HistoryMode = mode
        """``auto`` becomes ``client`` once the server refused ``previous_response_id``."""
        self.seed = tuple(messages)
        self.server_keeps = server_keeps
        """False when the session sends ``store: false``: no response id is worth sending."""
        self.turns: list[Turn] = []
        """The kept turns, in order: the history of the next turn."""
        self.runs: list[SessionRun] = []
        """The run of each kept turn, then the latest try of the next one (if any)."""
        self.plan: list[str] = list(plan)
        """The prompts planned by turn (``plan[0]`` is turn 1's): the script of a scripted
        conversation; a follow-up or an edit changes it."""
        self.conversation_id = new_conversation_id()
        self.fell_back = False
        """True once the server refused ``previous_response_id`` (said once, remembered)."""

    @property
    def next_turn(self) -> int:
        """The 1-based number of the turn that would be sent next."""
        return len(self.turns) + 1

    @property
    def current_turn(self) -> int:
        """The number of the latest turn sent (running, failed or kept); 0 before any."""
        return self.runs[-1].turn if self.runs else 0

    def restart(self, plan: Sequence[str] = (), conversation_id: str | None = None) -> str:
        """Begin a new conversation (turn 1 next) planned as ``plan``; returns its id."""
        self.turns.clear()
        self.runs.clear()
        self.plan = list(plan)
        self.conversation_id = conversation_id or new_conversation_id()
        return self.conversation_id

    def history(self) -> Conversation | None:
        """What the next turn carries (None for a first turn without seeded messages)."""
        if not self.turns and not self.seed:
            return None
        return Conversation(messages=self.seed, turns=tuple(self.turns), mode=self.mode)

    def keep_only(self, count: int) -> None:
        """Keep the first ``count`` turns only: the next turn sent is turn ``count + 1``
        (the later ones become a branch, in the store)."""
        del self.turns[count:]
        del self.runs[count:]

    def plan_turn(self, turn: int, prompt: str, *, keep_rest: bool) -> list[str]:
        """Plan ``prompt`` as turn ``turn``, the later planned turns kept (``keep_rest``) or
        dropped; returns the prompts from that turn on."""
        before = self.plan[: turn - 1]
        # turns sent beyond the plan (follow-ups) are planned as they were sent
        before += [run.prompt for run in self.runs[len(before) : turn - 1]]
        after = self.plan[turn:] if keep_rest else []
        self.plan = [*before, prompt, *after]
        return self.plan[turn - 1 :]

    def begin(self, run: SessionRun) -> None:
        """``run`` is the new try of turn ``run.turn`` (after the kept turns before it).

        The run it follows keeps its text and figures (the views show every turn) but lets
        go of its raw events, which only the current run's raw view shows: a long
        conversation holds one run's raw events, not one per turn."""
        if self.runs:
            self.runs[-1].debug_events.clear()
        del self.runs[run.turn - 1 :]
        self.runs.append(run)

    def finish(self, prompt: str, acc: RunAccumulator) -> bool:
        """Record the end of a turn sent with ``prompt``; True when it was kept."""
        if acc.status not in KEPT_STATUSES:
            return False
        # the runner imports httpx: not when the controller is imported (a dashboard's first
        # frame, the import hygiene of the headless layers); it is loaded once a turn ran
        from tui.stream.runner import HISTORY_FALLBACK

        # learnt from a turn the items carried through: a 400 that the items did not cure
        # either (a context window that is too small) says nothing of the server's state
        if HISTORY_FALLBACK in acc.notices and self.mode == "auto":
            self.mode = "client"
            self.fell_back = True
        response_id = acc.response_id if self.api == "responses" and self.server_keeps else None
        self.turns.append(
            Turn(prompt, acc.output_text, tuple(acc.tool_calls), response_id=response_id)
        )
        return True
