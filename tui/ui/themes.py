"""Theme files (TOML) -> Textual :class:`~textual.theme.Theme` objects.

A theme file is a flat TOML table with Textual's base colours plus an optional
``[variables]`` table for tokentop's own colour variables (see :data:`APP_VARIABLES`)::

    name = "tokentop-dark"
    dark = true
    primary = "#4fb3bf"
    background = "#14171c"

    [variables]
    status-ok = "#9ece6a"

Every colour is checked with :meth:`textual.color.Color.parse`. Loading never raises: each
broken file becomes a :class:`ThemeProblem`, so the app can report all of them in one
notification and go on with the others.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

BASE_COLOURS: tuple[str, ...] = (
    "primary",
    "secondary",
    "warning",
    "error",
    "success",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)
"""Textual's theme colour fields (``primary`` is required)."""

APP_VARIABLES: dict[str, str] = {
    "status-queued": "$foreground 45%",
    "status-connecting": "$secondary",
    "status-streaming": "$primary",
    "status-ok": "$success",
    "status-retry": "$warning",
    "status-warn": "$warning",
    "status-failed": "$error",
    "status-cancelled": "$foreground 55%",
    "status-alert": "$accent",
    "metric-good": "$success",
    "metric-bad": "$error",
    "unread": "$accent",
}
"""tokentop's own colour variables and their defaults for themes that do not set them
(Textual built-ins): used from TCSS as ``$status-ok`` and for DataTable cell styles.
``$name`` refers to the theme's generated colour of that name; a trailing ``NN%`` fades it
into the background. :func:`app_variable_defaults` turns them into literal colours."""

_OTHER_KEYS = frozenset({"name", "dark", "variables", "luminosity_spread", "text_alpha"})


@dataclass(frozen=True, slots=True)
class ThemeProblem:
    """Why one theme file could not be used."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path.name}: {self.message}"


@dataclass(slots=True)
class ThemeCatalog:
    """The themes found in some directories, by name, plus every problem met on the way."""

    themes: dict[str, Theme] = field(default_factory=dict)
    problems: list[ThemeProblem] = field(default_factory=list)
    sources: dict[str, Path] = field(default_factory=dict)
    """Which file each theme came from (the last one wins when names repeat)."""


class ThemeFileError(ValueError):
    """A theme file that cannot be used; the message lists every problem in it."""


def resolve_colour(value: str, variables: dict[str, str]) -> Color:
    """A colour value as a :class:`Color`: ``$name`` looked up in ``variables``, an optional
    ``NN%`` blended into ``$background`` (so Rich styles get an opaque colour)."""
    parts = value.split()
    colour_text = parts[0]
    if colour_text.startswith("$"):
        colour_text = variables[colour_text[1:]]
        colour_text = colour_text.split()[0]
    colour = Color.parse(colour_text)
    if len(parts) > 1 and parts[1].endswith("%"):
        background = Color.parse(variables.get("background", "#000000").split()[0])
        colour = background.blend(colour, float(parts[1][:-1]) / 100)
    return colour


def app_variable_defaults(theme: Theme) -> dict[str, str]:
    """:data:`APP_VARIABLES` as literal hex colours for ``theme`` (for themes that do not
    set them; Textual needs literal values here)."""
    base = theme.to_color_system().generate()
    return {name: resolve_colour(ref, base).hex for name, ref in APP_VARIABLES.items()}


def _check_colour(key: str, value: object, problems: list[str]) -> str | None:
    if not isinstance(value, str):
        problems.append(f"{key!r} must be a colour string, not {type(value).__name__}")
        return None
    try:
        Color.parse(value)
    except ColorParseError:
        problems.append(f"{key!r}: {value!r} is not a colour")
        return None
    return value


def parse_theme(data: dict[str, Any], *, default_name: str) -> Theme:
    """Build a :class:`Theme` from a parsed TOML table; raise :class:`ThemeFileError`."""
    problems: list[str] = []
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        problems.append("'name' must be a non-empty string")
        name = default_name
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        problems.append("'dark' must be true or false")
        dark = True
    colours: dict[str, str] = {}
    for key in BASE_COLOURS:
        if key in data:
            checked = _check_colour(key, data[key], problems)
            if checked is not None:
                colours[key] = checked
    if "primary" not in data:
        problems.append("'primary' is required")
    variables: dict[str, str] = {}
    raw_variables = data.get("variables", {})
    if not isinstance(raw_variables, dict):
        problems.append("[variables] must be a table")
    else:
        for key, value in raw_variables.items():
            checked = _check_colour(f"variables.{key}", value, problems)
            if checked is not None:
                variables[str(key)] = checked
    unknown = sorted(set(data) - set(BASE_COLOURS) - _OTHER_KEYS)
    if unknown:
        problems.append("unknown key(s): " + ", ".join(repr(k) for k in unknown))
    if problems:
        raise ThemeFileError("; ".join(problems))
    return Theme(
        name=name.strip(),
        dark=dark,
        variables=variables,
        primary=colours.get("primary", "#888888"),
        secondary=colours.get("secondary"),
        warning=colours.get("warning"),
        error=colours.get("error"),
        success=colours.get("success"),
        accent=colours.get("accent"),
        foreground=colours.get("foreground"),
        background=colours.get("background"),
        surface=colours.get("surface"),
        panel=colours.get("panel"),
        boost=colours.get("boost"),
    )


def load_theme_file(path: Path) -> Theme:
    """Read one theme file; raise :class:`ThemeFileError` naming what is wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThemeFileError(f"cannot read: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ThemeFileError(f"not valid TOML: {exc}") from exc
    return parse_theme(data, default_name=path.stem)


def load_themes(directories: Iterable[Path | None]) -> ThemeCatalog:
    """Load every ``*.toml`` in each directory, in order; later directories override
    earlier ones by theme name (so user themes replace shipped ones). Never raises."""
    catalog = ThemeCatalog()
    for directory in directories:
        if directory is None or not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            try:
                theme = load_theme_file(path)
            except ThemeFileError as exc:
                catalog.problems.append(ThemeProblem(path, str(exc)))
                continue
            catalog.themes[theme.name] = theme
            catalog.sources[theme.name] = path
    return catalog


def problems_message(problems: Iterable[ThemeProblem]) -> str:
    """One notification text that lists every broken theme file."""
    lines = [str(p) for p in problems]
    return f"{len(lines)} theme file(s) skipped:\n" + "\n".join(lines)


def default_theme_dirs() -> list[Path | None]:
    """Where themes come from: the shipped ``themes/`` and the user's themes directory
    (None when the config directory cannot be used: only the user themes are lost)."""
    from tui import paths

    user: Path | None
    try:
        user = paths.user_themes_dir()
    except OSError:
        user = None
    return [paths.shipped_themes_dir(), user]
