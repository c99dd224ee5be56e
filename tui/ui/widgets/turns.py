"""The turns of a conversation before the live one, above the live turn's transcript.

:class:`EarlierTurns` sits at the top of a :class:`~tui.ui.widgets.transcript.TranscriptView`:
one block per earlier turn (a heading with the turn's input tokens and the total so far,
its prompt, then its answer), and last the heading of the live turn. A block is rendered
once, when its turn stops being the live one; :meth:`EarlierTurns.sync` only appends or
drops blocks (an edited turn, a new conversation), so a batch of the live turn never
re-renders an earlier one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Markdown, Static

from tui.session.conversation_view import ConversationView, TurnView
from tui.ui.widgets.answer import SEGMENT_CHARS
from tui.ui.widgets.format import fmt_count
from tui.vocab import MISSING, TONE_GLYPHS, outcome_tone

if TYPE_CHECKING:
    from tui.session import SessionRun

__all__ = ["EarlierTurns", "TurnsShown", "turn_heading", "turns_shown"]

PROMPT_LINE_CHARS = 300
"""An earlier turn's prompt is shown up to this many characters (the store has it whole)."""


@dataclass(frozen=True, slots=True)
class TurnsShown:
    """What a view of one session shows of its conversation around the run it shows."""

    earlier: tuple[TurnView, ...]
    """The turns above the live one (each rendered once, as :class:`EarlierTurns` does)."""
    live: TurnView | None
    """The live run's turn (None: it is not in the conversation's view yet, or there is no
    run to show)."""
    fresh: bool
    """True for a new conversation before its first turn: the last run is not part of it,
    so the view shows an empty conversation."""


def turns_shown(conv: ConversationView, run: SessionRun | None) -> TurnsShown:
    """The turns a session pane or a compare column shows around ``run`` (the session's
    current run, or None) of the session's conversation ``conv``."""
    if run is not None and run.done and run.conversation_id != conv.conversation_id:
        return TurnsShown(conv.turns, None, True)
    # the live run's turn may not be in the view yet (it is told before it begins)
    turn = run.turn if run is not None else 1
    earlier = tuple(t for t in conv.turns if t.turn < turn)
    live = next((t for t in conv.turns if run is not None and t.run_id == run.run_id), None)
    return TurnsShown(earlier, live, False)


def turn_heading(turn: TurnView) -> str:
    """``turn 3 · 1,240 in (3,410 so far)``, plus how it ended when it did not complete and
    whether its prompt was the output of the previous turn's tool calls."""
    parts = [f"turn {turn.turn}"]
    if turn.input_tokens is not None:
        so_far = turn.input_tokens_so_far
        total = f" ({fmt_count(so_far)} so far)" if so_far is not None and turn.turn > 1 else ""
        parts.append(f"{fmt_count(turn.input_tokens)} in{total}")
    if turn.answers_tools:
        parts.append("tool output")
    if turn.status is not None and (turn.status != "completed" or not turn.kept):
        tone = outcome_tone(turn.status, turn.finish_reason or turn.status)
        parts.append(f"{TONE_GLYPHS[tone]} {turn.finish_reason or turn.status}")
    return " · ".join(parts)


def _prompt_line(prompt: str) -> str:
    line = " ".join(prompt.split())
    return line if len(line) <= PROMPT_LINE_CHARS else line[: PROMPT_LINE_CHARS - 1] + "…"


def _answer_widget(turn: TurnView) -> Widget:
    """The answer of a finished turn: Markdown rendered once, plain text when it is long
    (Markdown lays out every block again on each layout)."""
    text = turn.answer
    calls = [f"→ {call.name}({call.arguments})" for call in turn.tool_calls]
    if turn.error:
        calls.append(f"{TONE_GLYPHS['failed']} {turn.error}")
    if not text:
        return Static("\n".join(calls) or MISSING, classes="turn-answer -plain", markup=False)
    if len(text) > SEGMENT_CHARS * 2:
        return Static("\n".join([text, *calls]), classes="turn-answer -plain", markup=False)
    body = text if not calls else text + "\n\n" + "\n\n".join(f"`{c}`" for c in calls)
    return Markdown(body, classes="turn-answer")


class TurnBlock(Vertical):
    """One earlier turn: heading, prompt, answer (rendered once)."""

    def __init__(self, turn: TurnView) -> None:
        super().__init__(classes="turn-block")
        self.turn = turn

    def compose(self) -> ComposeResult:
        yield Static(turn_heading(self.turn), classes="turn-heading", markup=False)
        yield Static(f"› {_prompt_line(self.turn.prompt)}", classes="turn-prompt", markup=False)
        yield _answer_widget(self.turn)


class EarlierTurns(Vertical):
    """Every turn of the conversation before the live one, and the live turn's heading."""

    DEFAULT_CSS = """
    EarlierTurns { height: auto; }
    EarlierTurns .turn-block { height: auto; margin: 0 0 1 0; }
    EarlierTurns .turn-heading { color: $text-muted; text-style: bold; }
    EarlierTurns .turn-prompt { color: $text-accent; }
    EarlierTurns .turn-answer { margin: 0; padding: 0; height: auto; }
    EarlierTurns #live-turn { display: none; color: $text-muted; text-style: bold; }
    EarlierTurns #live-prompt { display: none; color: $text-accent; margin: 0 0 1 0; }
    EarlierTurns.-live #live-turn { display: block; }
    EarlierTurns.-live #live-prompt { display: block; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._keys: list[tuple[int, str]] = []
        """(turn, run id) of each block shown, in order."""
        self._live: tuple[str, str] | None = None
        self._wanted: tuple[tuple[TurnView, ...], TurnView | None] | None = None

    def on_mount(self) -> None:
        if self._wanted is not None:
            earlier, live = self._wanted
            self._wanted = None
            self.call_after_refresh(self.sync, earlier, live)

    def compose(self) -> ComposeResult:
        yield Static("", id="live-turn", markup=False)
        yield Static("", id="live-prompt", markup=False)

    @property
    def shown(self) -> list[tuple[int, str]]:
        """(turn, run id) of the earlier turns shown."""
        return list(self._keys)

    def sync(self, earlier: Sequence[TurnView], live: TurnView | None) -> None:
        """Show ``earlier`` above the live turn ``live`` (no heading when it is turn 1 of a
        conversation that has nothing before it). Blocks already shown stay as they are;
        those that are no longer the conversation's (an edit, a new conversation) go."""
        if not self.query("#live-turn"):  # not composed yet: on mount
            self._wanted = (tuple(earlier), live)
            return
        keys = [(t.turn, t.run_id) for t in earlier]
        keep = 0
        for old, new in zip(self._keys, keys, strict=False):
            if old != new:
                break
            keep += 1
        if keep < len(self._keys):
            for block in list(self.query(TurnBlock))[keep:]:
                block.remove()
        if keep < len(keys):
            self.mount_all(
                [TurnBlock(turn) for turn in earlier[keep:]], before=self.query_one("#live-turn")
            )
        self._keys = keys
        self.set_live(live if earlier or (live is not None and live.turn > 1) else None)

    def set_live(self, live: TurnView | None) -> None:
        """The live turn's heading (its figures change as it runs); None hides it."""
        shown = None if live is None else (turn_heading(live), f"› {_prompt_line(live.prompt)}")
        if shown == self._live:
            return
        self._live = shown
        self.set_class(shown is not None, "-live")
        if shown is not None:
            self.query_one("#live-turn", Static).update(shown[0])
            self.query_one("#live-prompt", Static).update(shown[1])
