"""ComparePrompt: the compare screen's prompt box, which names the sessions it sends to."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import Input


def prompt_placeholder(names: Sequence[str], total: int) -> str:
    """What the empty prompt box says: which of ``total`` sessions the prompt goes to."""
    if not names:
        return "no session checked: check one in a column header (a checks all)"
    if len(names) == total and total > 3:
        who = f"all {total} sessions"
    elif len(names) > 3:
        who = f"{', '.join(names[:3])} and {len(names) - 3} more"
    elif len(names) > 1:
        who = f"{', '.join(names[:-1])} and {names[-1]}"
    else:
        who = names[0]
    return f"prompt for {who} (enter sends)"


class ComparePrompt(Input):
    """The prompt box: Enter sends its text to the checked sessions (the screen does)."""

    DEFAULT_CSS = """
    ComparePrompt { dock: bottom; margin-bottom: 1; }
    """

    def __init__(self, names: Sequence[str], *, value: str = "", id: str | None = None) -> None:
        """A box for ``names`` (all checked at first), holding ``value``."""
        super().__init__(
            value=value,
            placeholder=prompt_placeholder(names, len(names)),
            id=id,
            select_on_focus=False,
        )
        self._total = len(names)

    def name_targets(self, names: Sequence[str]) -> None:
        """Say in the placeholder that the next prompt goes to ``names``."""
        self.placeholder = prompt_placeholder(names, self._total)
