"""Desktop notifications through the terminal: OSC 9 and OSC 777 escape sequences.

- OSC 9 (``ESC ] 9 ; text BEL``): iTerm2, Windows Terminal, kitty, WezTerm, ghostty, ConEmu.
- OSC 777 (``ESC ] 777 ; notify ; title ; body BEL``): urxvt, foot, ghostty, contour, VTE
  terminals that carry the notify patch.

Which one a terminal understands is guessed from the environment (:func:`osc_kinds`); when
the terminal is not known, both are sent (a terminal ignores an OSC it does not know).
Inside tmux the sequence is wrapped in tmux's DCS passthrough (``ESC P tmux ; ... ESC \\``,
each ESC doubled), which tmux forwards to the outer terminal when ``allow-passthrough`` is
on. Text from a server never reaches the terminal raw: :func:`clean` removes every control
and format character (an ESC or BEL in a message would end the sequence and let the rest
be read as terminal commands) and cuts it short.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Literal, TypeAlias

OscKind: TypeAlias = Literal["osc9", "osc777"]

TEXT_LIMIT = 180
"""A notification's body is cut to this many characters."""

_OSC9_TERMINALS = ("iterm", "wezterm", "kitty", "ghostty", "vscode", "apple_terminal")
_OSC777_TERMINALS = ("foot", "rxvt", "contour", "ghostty")


def clean(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` on one line without control or format characters (C0, C1, DEL, bidi
    controls), at most ``limit`` characters."""
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Zl", "Zp") or char in "\t\r\n":
            kept.append(" ")
        elif category[0] != "C":  # Cc controls, Cf format (bidi), Cs, Co, Cn
            kept.append(char)
    one_line = " ".join("".join(kept).split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def osc9(text: str) -> str:
    """An OSC 9 notification. The text never starts with a digit: ConEmu reads
    ``9;<digit>`` as one of its own commands."""
    body = clean(text)
    if body[:1].isdigit():
        body = "· " + body
    return f"\x1b]9;{body}\x07"


def osc777(title: str, body: str) -> str:
    """An OSC 777 ``notify`` (a ``;`` in the title would start the body: it becomes ``,``)."""
    return f"\x1b]777;notify;{clean(title, 60).replace(';', ',')};{clean(body)}\x07"


def tmux_passthrough(sequence: str) -> str:
    """``sequence`` wrapped for tmux to hand it to the outer terminal."""
    return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"


def osc_kinds(env: Mapping[str, str]) -> tuple[OscKind, ...]:
    """Which notification sequences the terminal of ``env`` is likely to show (both when
    it is not known)."""
    names = " ".join(env.get(key, "").lower() for key in ("TERM_PROGRAM", "LC_TERMINAL", "TERM"))
    if env.get("WT_SESSION") or env.get("KITTY_WINDOW_ID"):
        names += " kitty"  # Windows Terminal and kitty show OSC 9
    osc9_known = any(name in names for name in _OSC9_TERMINALS)
    osc777_known = any(name in names for name in _OSC777_TERMINALS)
    if "ghostty" in names:
        return ("osc9",)  # it shows both: one notification is enough
    if osc9_known and not osc777_known:
        return ("osc9",)
    if osc777_known and not osc9_known:
        return ("osc777",)
    return ("osc9", "osc777")


def notification(title: str, body: str, env: Mapping[str, str]) -> str:
    """The bytes (as text) that ask the terminal of ``env`` for a desktop notification."""
    parts = []
    for kind in osc_kinds(env):
        parts.append(osc9(f"{title}: {body}") if kind == "osc9" else osc777(title, body))
    sequence = "".join(parts)
    if env.get("TMUX"):
        return "".join(tmux_passthrough(part) for part in parts)
    return sequence
