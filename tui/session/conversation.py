"""A session's conversation: the turns kept so far, and what the next turn carries.

A :class:`ConversationState` belongs to one session controller. Each run is a turn of its
current conversation: turn 1 starts a conversation (a new ``conversation_id``), a follow-up
carries the kept turns (:meth:`history`, a :class:`~tui.stream.history.Conversation` for the
stream layer), and the run's end decides what is kept (:meth:`finish`):

- a completed or cut (``incomplete``) answer becomes a turn: what the model said is part of
  the dialogue, also when it was cut;
- a failed or cancelled turn is not kept: retrying it sends its prompt once, not twice;
- a Responses server that refused ``previous_response_id`` (the stream layer's
  ``history_fallback`` notice) teaches the session to send the items from then on;
- editing the last turn (:meth:`edit_last`) drops it from the history so that it is sent
  again with the new prompt; the old answer stays in the store as a branch of the same turn.

A turn's answer is the redacted text the views and the store saw, and a response id is only
used when the session lets the server keep its responses (``store`` not false in ``params``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from tui.stream.accumulate import RunAccumulator
from tui.stream.history import Conversation, Turn
from tui.stream.runner import HISTORY_FALLBACK
from tui.vocab import Api, HistoryMode

__all__ = ["ConversationState", "new_conversation_id"]

KEPT_STATUSES = frozenset({"completed", "incomplete"})
"""Run statuses whose answer becomes a turn of the conversation."""


def new_conversation_id() -> str:
    """A fresh conversation id (tokentop's own, never a server's)."""
    return uuid.uuid4().hex


class ConversationState:
    """The current conversation of one session (see the module)."""

    def __init__(
        self,
        api: Api,
        *,
        mode: HistoryMode = "auto",
        messages: Sequence[Mapping[str, Any]] = (),
        server_keeps: bool = True,
    ) -> None:
        self.api = api
        self.mode: HistoryMode = mode
        """``auto`` becomes ``client`` once the server refused ``previous_response_id``."""
        self.seed = tuple(messages)
        self.server_keeps = server_keeps
        """False when the session sends ``store: false``: no response id is worth sending."""
        self.turns: list[Turn] = []
        self.conversation_id = new_conversation_id()
        self.fell_back = False
        """True once the server refused ``previous_response_id`` (said once, remembered)."""

    @property
    def next_turn(self) -> int:
        """The 1-based number of the turn that would be sent next."""
        return len(self.turns) + 1

    def restart(self) -> str:
        """Begin a new conversation (turn 1 next); returns its id."""
        self.turns.clear()
        self.conversation_id = new_conversation_id()
        return self.conversation_id

    def history(self) -> Conversation | None:
        """What the next turn carries (None for a first turn without seeded messages)."""
        if not self.turns and not self.seed:
            return None
        return Conversation(messages=self.seed, turns=tuple(self.turns), mode=self.mode)

    def edit_last(self) -> Turn | None:
        """Drop the last kept turn so that it is sent again (with an edited prompt); returns
        it (None when there is none)."""
        return self.turns.pop() if self.turns else None

    def finish(self, prompt: str, acc: RunAccumulator) -> bool:
        """Record the end of a turn sent with ``prompt``; True when it was kept."""
        if HISTORY_FALLBACK in acc.notices and self.mode == "auto":
            self.mode = "client"
            self.fell_back = True
        if acc.status not in KEPT_STATUSES:
            return False
        response_id = acc.response_id if self.api == "responses" and self.server_keeps else None
        self.turns.append(
            Turn(prompt, acc.output_text, tuple(acc.tool_calls), response_id=response_id)
        )
        return True
