"""The output faces' last line of defence against secrets (headless).

:class:`RedactingWriter` wraps a text stream (stdout, stderr) and redacts each write whole;
:class:`SecretLogFilter` redacts a log record in place (message with its arguments, exception
and stack text), and :func:`install_log_filter` puts one on the root logger, its handlers and
Python's last-resort handler. Both only apply a :class:`~tui.stream.redaction.Redactor`;
the run events themselves are redacted earlier, by :mod:`tui.session.redact`. Neither ever
drops output: a write or a record goes on, redacted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TextIO

from tui.stream.redaction import Redactor

__all__ = ["RedactingWriter", "SecretLogFilter", "install_log_filter"]


class RedactingWriter:
    """A text stream (stdout, stderr) that redacts every write before passing it on; each
    write is redacted whole (the faces write whole lines and records)."""

    def __init__(self, stream: TextIO, redactor: Redactor) -> None:
        self.stream = stream
        self.redactor = redactor

    def write(self, text: str) -> int:
        """Write ``text`` redacted; returns the length of ``text``."""
        self.stream.write(self.redactor.redact(text))
        return len(text)

    def flush(self) -> None:
        """Flush the stream underneath."""
        self.stream.flush()

    def isatty(self) -> bool:
        """Whether the stream underneath is a terminal."""
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class SecretLogFilter(logging.Filter):
    """Redacts a log record in place (its message with the arguments merged in, its
    exception and stack text) and lets it through."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record``; always True."""
        r = self.redactor
        if not r:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what there is, redacted
            message = f"{record.msg} {record.args}"
        record.msg = r.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = r.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = r.redact(record.stack_info)
        return True


def install_log_filter(redactor: Redactor) -> Callable[[], None]:
    """Put a :class:`SecretLogFilter` on the root logger, its handlers and Python's
    last-resort handler (records of every logger reach one of them); returns the function
    that removes them. Handlers added later are not covered."""
    log_filter = SecretLogFilter(redactor)
    root = logging.getLogger()
    targets: list[logging.Filterer] = [root, *root.handlers]
    if logging.lastResort is not None:
        targets.append(logging.lastResort)
    for target in targets:
        target.addFilter(log_filter)

    def uninstall() -> None:
        for target in targets:
            target.removeFilter(log_filter)

    return uninstall
