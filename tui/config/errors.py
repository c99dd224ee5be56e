"""What is wrong with a sessions file: one :class:`ConfigProblem` per issue, all of them in one
:class:`ConfigError`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem found in a sessions file."""

    message: str
    """What is wrong and how to fix it (never contains a secret)."""
    session: str | None = None
    """Name of the session concerned (None for a file-level problem or an unnamed session)."""
    key: str | None = None
    """The key concerned, dotted for nested tables (``reconnect.max_retries``)."""
    line: int | None = None
    """1-based line in the file, when known."""
    column: int | None = None
    """1-based column (TOML syntax errors only)."""
    index: int | None = None
    """1-based position of the ``[[sessions]]`` table, for sessions without a usable name."""


class ConfigError(Exception):
    """A sessions file that must not start anything; ``problems`` lists every issue found."""

    def __init__(self, path: Path | None, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        """All problems, one per line, each naming the file, the session and the key."""
        where = str(self.path) if self.path else "<config>"
        lines = [f"{where}: {len(self.problems)} problem(s):"]
        for p in self.problems:
            place = where
            if p.line:
                place += f":{p.line}" + (f":{p.column}" if p.column else "")
            parts = [place]
            if p.session is not None:
                parts.append(f"session {p.session!r}")
            elif p.index is not None:
                parts.append(f"session #{p.index}")
            if p.key is not None:
                parts.append(f"key {p.key!r}")
            lines.append("  " + ", ".join(parts) + ": " + p.message)
        return "\n".join(lines)
