"""Line numbers of the keys and tables of a TOML document, which ``tomllib`` does not keep.

:class:`KeyLines` scans the text once, as a TOML lexer would: it skips comments and all four
kinds of strings (basic and literal, single- and multi-line, with escapes and the quotes that
may touch a closing delimiter), follows arrays and inline tables, and records where each key,
table header and array element starts, under its full path. Keys may be bare, quoted or
dotted; entries of an array of tables (``[[sessions]]``) and elements of an inline array are
numbered from 1, so the second session's retry limit is ``("sessions", 2, "reconnect",
"max_retries")`` whether it is written under ``[sessions.reconnect]``, as a dotted key or in an
inline table.

Limits: the text must be one that ``tomllib`` accepted (nothing is validated; on other text
the answers are best effort, and the scan still ends); a path's line is the line where its
first mention starts (a table's header, or the first key that implies it); values are not
decoded, except quoted keys.
"""

from __future__ import annotations

import bisect
import re
from typing import TypeAlias

KeyPath: TypeAlias = tuple[str | int, ...]
"""Keys from the document root; an int is a 1-based array position."""

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR = re.compile(r"[^,\]}\r\n#]*")
_BASIC_SPECIAL = re.compile(r'[\\"\n]')
_MULTI_BASIC_SPECIAL = re.compile(r'[\\"]')
_MULTI_LITERAL_SPECIAL = re.compile("'")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


class KeyLines:
    """Where each key path of a TOML document is first mentioned (1-based lines)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self._lines: dict[KeyPath, int] = {}
        self._array_tables: dict[KeyPath, int] = {}
        """Arrays of tables (``[[...]]``) -> the number of their current entry."""
        self._document()

    def line(self, path: KeyPath) -> int | None:
        """The line of ``path``, else of its nearest recorded parent; None when there is none."""
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return None

    # --- recording ---

    def _record(self, path: KeyPath, pos: int) -> None:
        line = bisect.bisect_right(self._line_starts, pos)
        for end in range(1, len(path) + 1):
            self._lines.setdefault(path[:end], line)

    def _table_path(self, keys: list[str]) -> KeyPath:
        """The path of ``[keys]``: a key naming an array of tables means its current entry."""
        path: KeyPath = ()
        for key in keys:
            path = (*path, key)
            if path in self._array_tables:
                path = (*path, self._array_tables[path])
        return path

    def _new_array_entry(self, keys: list[str]) -> KeyPath:
        """The path of ``[[keys]]``: the next entry of that array of tables."""
        array = (*self._table_path(keys[:-1]), keys[-1]) if keys else ()
        number = self._array_tables.get(array, 0) + 1
        self._array_tables[array] = number
        return (*array, number)

    # --- scanning ---

    def _peek(self, size: int = 1) -> str:
        return self._text[self._pos : self._pos + size]

    def _skip_blank(self, *, lines: bool) -> None:
        """Skip spaces and tabs; with ``lines``, also line breaks and comments."""
        text, end = self._text, len(self._text)
        while self._pos < end:
            char = text[self._pos]
            if char in " \t" or (lines and char in "\r\n"):
                self._pos += 1
            elif lines and char == "#":
                newline = text.find("\n", self._pos)
                self._pos = end if newline < 0 else newline
            else:
                return

    def _document(self) -> None:
        table: KeyPath = ()
        end = len(self._text)
        while self._pos < end:
            self._skip_blank(lines=True)
            start = self._pos
            if start >= end:
                return
            if self._peek(2) == "[[":
                self._pos += 2
                table = self._new_array_entry(self._keys())
                self._record(table, start)
            elif self._peek() == "[":
                self._pos += 1
                table = self._table_path(self._keys())
                self._record(table, start)
            else:
                keys = self._keys()
                if keys:
                    path = (*table, *keys)
                    self._record(path, start)
                    self._skip_blank(lines=False)
                    if self._peek() == "=":
                        self._pos += 1
                    self._value(path)
            if self._pos == start:  # not TOML: skip the rest of the line
                newline = self._text.find("\n", start)
                self._pos = end if newline < 0 else newline + 1
            else:
                self._skip_to_line_end()

    def _skip_to_line_end(self) -> None:
        """After a header or a key/value: the rest of the line (``]``, spaces, a comment)."""
        newline = self._text.find("\n", self._pos)
        self._pos = len(self._text) if newline < 0 else newline + 1

    def _keys(self) -> list[str]:
        """A bare, quoted or dotted key, decoded; stops after it (and after a header's ``]``)."""
        keys: list[str] = []
        while True:
            self._skip_blank(lines=False)
            char = self._peek()
            if char == '"':
                keys.append(self._basic_string())
            elif char == "'":
                keys.append(self._literal_string())
            else:
                match = _BARE_KEY.match(self._text, self._pos)
                if match is None:
                    return keys
                keys.append(match.group())
                self._pos = match.end()
            self._skip_blank(lines=False)
            if self._peek() != ".":
                return keys
            self._pos += 1

    def _value(self, path: KeyPath) -> None:
        self._skip_blank(lines=False)
        if self._peek(3) == '"""':
            self._multiline_string('"', _MULTI_BASIC_SPECIAL)
        elif self._peek(3) == "'''":
            self._multiline_string("'", _MULTI_LITERAL_SPECIAL)
        elif self._peek() == '"':
            self._basic_string()
        elif self._peek() == "'":
            self._literal_string()
        elif self._peek() == "[":
            self._array(path)
        elif self._peek() == "{":
            self._inline_table(path)
        else:  # number, boolean, date/time
            match = _SCALAR.match(self._text, self._pos)
            self._pos = match.end() if match else self._pos

    def _array(self, path: KeyPath) -> None:
        self._pos += 1
        number = 0
        while self._pos < len(self._text):
            self._skip_blank(lines=True)
            char = self._peek()
            if char == "]":
                self._pos += 1
                return
            if char == ",":
                self._pos += 1
                continue
            number += 1
            start = self._pos
            self._record((*path, number), start)
            self._value((*path, number))
            if self._pos == start:
                self._pos += 1

    def _inline_table(self, path: KeyPath) -> None:
        self._pos += 1
        while self._pos < len(self._text):
            self._skip_blank(lines=True)
            char = self._peek()
            if char == "}":
                self._pos += 1
                return
            if char == ",":
                self._pos += 1
                continue
            start = self._pos
            keys = self._keys()
            if not keys:
                self._pos += 1
                continue
            self._record((*path, *keys), start)
            self._skip_blank(lines=False)
            if self._peek() == "=":
                self._pos += 1
            self._value((*path, *keys))

    def _basic_string(self) -> str:
        """A one-line ``"..."`` string at the position, decoded."""
        text, out = self._text, []
        self._pos += 1
        while True:
            match = _BASIC_SPECIAL.search(text, self._pos)
            if match is None or match.group() == "\n":  # unterminated: stop at the line end
                end = len(text) if match is None else match.start()
                out.append(text[self._pos : end])
                self._pos = end
                return "".join(out)
            out.append(text[self._pos : match.start()])
            self._pos = match.end()
            if match.group() == '"':
                return "".join(out)
            escape = self._peek()
            if escape in ("u", "U"):
                digits = text[self._pos + 1 : self._pos + (5 if escape == "u" else 9)]
                try:
                    out.append(chr(int(digits, 16)))
                except ValueError:
                    out.append(digits)
                self._pos += 1 + len(digits)
            else:
                out.append(_ESCAPES.get(escape, escape))
                self._pos += len(escape)

    def _literal_string(self) -> str:
        """A one-line ``'...'`` string at the position (no escapes)."""
        text = self._text
        end = text.find("'", self._pos + 1)
        newline = text.find("\n", self._pos + 1)
        if end < 0 or 0 <= newline < end:
            end = len(text) if newline < 0 else newline
            value, self._pos = text[self._pos + 1 : end], end
            return value
        value, self._pos = text[self._pos + 1 : end], end + 1
        return value

    def _multiline_string(self, quote: str, special: re.Pattern[str]) -> None:
        """Skip a ``\"\"\"`` or ``'''`` string: it ends at the first run of three or more quotes
        (up to two of them belong to the string); a backslash escapes the next character in the
        basic form."""
        text = self._text
        self._pos += 3
        while True:
            match = special.search(text, self._pos)
            if match is None:
                self._pos = len(text)
                return
            if match.group() == "\\":
                self._pos = match.end() + 1
                continue
            run_end = match.start()
            while run_end < len(text) and text[run_end] == quote:
                run_end += 1
            self._pos = run_end
            if run_end - match.start() >= 3:
                return
