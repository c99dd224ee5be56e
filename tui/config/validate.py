"""Checks derived from a schema's dataclass fields: the declaration is the validation.

A schema class is a frozen dataclass whose field types say what its TOML value must be:

- ``bool``, ``int``, ``float`` (an integer is accepted and converted), ``str``, a ``Literal`` of
  strings (the only values allowed), ``tuple[str, ...]`` (an array of strings),
  ``Mapping[str, str]``, ``Mapping[str, Any]`` (any table),
  another schema class (a nested table, checked key by key), ``tuple[Schema, ...]`` (an
  array of such tables, each checked key by key; item ``n`` of ``messages`` is reported as
  ``messages.n``, counted from 1), and ``X | None`` (an optional key: TOML has no null, so
  ``None`` only ever comes from the default);
- ``Annotated`` metadata refines a type: a *rule* is a callable ``(key, value) -> value`` that
  runs after the type check and raises :class:`Invalid` or returns the value (possibly
  normalized), e.g. :class:`AtLeast`; :data:`MERGED` marks a table that a session merges key by
  key over the same table in ``[defaults]``; :class:`Hint` is said when a required key is
  missing from a nested table;
- a field without a default is a required key.

Every message names the key it is about, as the caller spells it (``reconnect.max_retries``).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
from collections.abc import Callable, Iterable, Mapping
from typing import (
    Annotated,
    Any,
    Literal,
    TypeAlias,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

T = TypeVar("T")

Rule: TypeAlias = Callable[[str, Any], Any]
"""Checks one value: ``(key, value) -> value``, raises :class:`Invalid`."""

Report: TypeAlias = Callable[[tuple[str, ...], str], None]
"""Receives a problem: the key's path inside the checked table, and the message."""


class Invalid(Exception):
    """A value that breaks its key's type or rules; the message names the key."""


@dataclasses.dataclass(frozen=True, slots=True)
class AtLeast:
    """Rule: a number >= ``bound``."""

    bound: int

    def __call__(self, key: str, value: float) -> float:
        if value < self.bound:
            raise Invalid(f"{key} must be >= {self.bound}, got {value}")
        return value


@dataclasses.dataclass(frozen=True, slots=True)
class Above:
    """Rule: a number > ``bound``."""

    bound: int

    def __call__(self, key: str, value: float) -> float:
        if value <= self.bound:
            raise Invalid(f"{key} must be > {self.bound}, got {value}")
        return value


def not_blank(key: str, value: str) -> str:
    """Rule: a string with something besides whitespace."""
    if not value.strip():
        raise Invalid(f"{key} must not be empty")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class Hint:
    """What a required key of a nested table means, said when it is missing."""

    text: str


class _Merged:
    """The type of :data:`MERGED`."""

    def __repr__(self) -> str:
        return "MERGED"


MERGED = _Merged()
"""Metadata of a table field: a session's table is merged key by key over ``[defaults]``'s."""


@dataclasses.dataclass(frozen=True, slots=True)
class Replaces:
    """Metadata of a field: when a table sets it, the base table's values of ``keys`` are
    not merged in (``turns`` in a session replaces a ``prompt`` of ``[defaults]``)."""

    keys: tuple[str, ...]


# --- the TOML type of a value ----------------------------------------------------------------


_TOML_TYPES = (
    (bool, "boolean"),  # before int: a bool is an int
    (int, "integer"),
    (float, "float"),
    (str, "string"),
    (dict, "table"),
    (list, "array"),
)


def type_name(value: object) -> str:
    """The TOML name of a parsed value's type (``integer``, ``table``, ...)."""
    return next((name for t, name in _TOML_TYPES if isinstance(value, t)), "date/time")


def _wrong_type(key: str, expected: str, value: object) -> Invalid:
    return Invalid(f"{key} must be {expected}, got {type_name(value)}")


def _boolean(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _wrong_type(key, "true or false", value)
    return value


def _integer(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(key, "an integer", value)
    return value


def _number(key: str, value: object) -> float:
    """A finite int or float, returned as it is (rules then see the value as written)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(key, "a number", value)
    if not math.isfinite(value):
        raise Invalid(f"{key} must be a finite number")
    return value


def _text(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise _wrong_type(key, "a string", value)
    return value


def table(key: str, value: object) -> dict[str, Any]:
    """``value`` when it is a table, else :class:`Invalid`."""
    if not isinstance(value, dict):
        raise _wrong_type(key, "a table", value)
    return value


def _string_table(key: str, value: object) -> dict[str, str]:
    checked = table(key, value)
    bad = [k for k, v in checked.items() if not isinstance(v, str)]
    if bad:
        raise Invalid(f"{key} values must be strings (not {', '.join(map(repr, bad))})")
    return checked


def _string_array(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _wrong_type(key, "an array of strings", value)
    bad = [i for i, v in enumerate(value) if not isinstance(v, str)]
    if bad:
        raise Invalid(f"{key} must be an array of strings (item {bad[0] + 1} is not a string)")
    return tuple(value)


def _table_array(key: str, value: object) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list):
        raise _wrong_type(key, "an array of tables", value)
    bad = [i for i, v in enumerate(value) if not isinstance(v, dict)]
    if bad:
        raise Invalid(
            f"{key} must be an array of tables (item {bad[0] + 1} is a {type_name(value[bad[0]])})"
        )
    return tuple(value)


def _is_schema(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _choice(allowed: tuple[str, ...]) -> Rule:
    def check(key: str, value: object) -> str:
        text = _text(key, value)
        if text not in allowed:
            options = " | ".join(f'"{a}"' for a in allowed)
            raise Invalid(f"{key} must be one of {options}, got {text!r}")
        return text

    return check


def _base_check(tp: Any) -> tuple[Rule, type | None, bool]:
    """The type check for ``tp`` (without ``Annotated``), its schema class if it is one (or
    an array of them), and whether it is an array of such tables."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return _base_check(inner)
    if origin is Literal:
        return _choice(args), None, False
    if origin is Mapping and args[1] in (str, Any):
        return (_string_table if args[1] is str else table), None, False
    if origin is tuple and args == (str, ...):
        return _string_array, None, False
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and _is_schema(args[0]):
        return _table_array, args[0], True
    if _is_schema(tp):
        return table, tp, False
    simple: dict[Any, Rule] = {bool: _boolean, int: _integer, float: _number, str: _text}
    if tp in simple:
        return simple[tp], None, False
    raise TypeError(f"no TOML check for the type {tp!r}")


# --- a schema's keys ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Key:
    """One key of a schema table, as its dataclass field declares it."""

    name: str
    type_check: Rule
    rules: tuple[Rule, ...]
    to_float: bool
    """Whether the checked number is stored as a float (``float`` fields accept integers)."""
    schema: type | None
    """The schema class of a nested table (of each table, for an array of tables)."""
    array: bool
    """An array of tables of :attr:`schema`."""
    merged: bool
    replaces: tuple[str, ...]
    """Keys of a base table that a value of this key replaces (see :class:`Replaces`)."""
    hint: str | None
    default: Callable[[], Any] | None
    """Makes the default value; None for a required key."""

    @property
    def required(self) -> bool:
        """True when the key has no default."""
        return self.default is None

    def check(self, key: str, value: object) -> Any:
        """The value checked and converted; :class:`Invalid` names ``key``."""
        checked = self.type_check(key, value)
        for rule in self.rules:
            checked = rule(key, checked)
        return float(checked) if self.to_float else checked


def _default(f: dataclasses.Field[Any]) -> Callable[[], Any] | None:
    if f.default is not dataclasses.MISSING:
        value = f.default
        return lambda: value
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory
    return None


def _unpack(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    """The type inside ``Annotated`` and its metadata (none for other types)."""
    if get_origin(tp) is Annotated:
        return get_args(tp)[0], tuple(tp.__metadata__)
    return tp, ()


def _key(name: str, annotation: Any, default: Callable[[], Any] | None) -> Key:
    tp, metadata = _unpack(annotation)
    type_check, nested, array = _base_check(tp)
    return Key(
        name=name,
        type_check=type_check,
        rules=tuple(m for m in metadata if callable(m)),
        to_float=type_check is _number,
        schema=nested,
        array=array,
        merged=MERGED in metadata,
        replaces=tuple(n for m in metadata if isinstance(m, Replaces) for n in m.keys),
        hint=next((m.text for m in metadata if isinstance(m, Hint)), None),
        default=default,
    )


@functools.cache
def keys_of(schema: type) -> dict[str, Key]:
    """The keys of a schema class, by name, in declaration order."""
    hints = get_type_hints(schema, include_extras=True)
    return {f.name: _key(f.name, hints[f.name], _default(f)) for f in dataclasses.fields(schema)}


def value_check(annotation: Any) -> Rule:
    """The check of one value of type ``annotation`` (which may be ``Annotated``), as a
    schema field of that type would check it."""
    return _key("", annotation, None).check


def required_keys(schema: type) -> list[str]:
    """The names of the schema's keys that have no default."""
    return [k.name for k in keys_of(schema).values() if k.required]


def unknown_key(name: str, known: Iterable[str]) -> str:
    """The message for an unknown key, with the closest known one as a suggestion."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {name!r}{hint}"


# --- checking, merging and building tables --------------------------------------------------


def check_table(
    schema: type, raw: Mapping[str, object], report: Report, at: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The valid keys of ``raw`` (a table of ``schema``), checked and converted.

    Every unknown key, invalid value and (in nested tables) missing required key goes to
    ``report``, with its path below ``at``; a nested table keeps its valid keys. Required keys
    of ``schema`` itself are the caller's to check (``[defaults]`` may provide them).
    """
    keys = keys_of(schema)
    out: dict[str, Any] = {}
    for name, value in raw.items():
        path = (*at, name)
        key = keys.get(name)
        if key is None:
            report(path, unknown_key(name, keys))
            continue
        dotted = ".".join(path)
        try:
            checked = key.check(dotted, value)
        except Invalid as exc:
            report(path, str(exc))
            continue
        if key.schema is not None and key.array:
            checked = tuple(
                _check_nested(key.schema, item, report, (*path, str(n)))
                for n, item in enumerate(checked, 1)
            )
        elif key.schema is not None:
            checked = _check_nested(key.schema, checked, report, path)
        out[name] = checked
    return out


def _check_nested(
    schema: type, raw: Mapping[str, object], report: Report, path: tuple[str, ...]
) -> dict[str, Any]:
    """A nested table's valid keys; a missing required key is reported with its hint."""
    dotted = ".".join(path)
    for sub in required_keys(schema):
        if sub not in raw:
            hint = keys_of(schema)[sub].hint
            report((*path, sub), f"{dotted} needs {sub}" + (f" ({hint})" if hint else ""))
    return check_table(schema, raw, report, path)


def merge(schema: type, base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over``'s values over ``base``'s; the :data:`MERGED` tables are merged key by key, and
    a key ``over`` sets drops the base's keys it :class:`Replaces`."""
    keys = keys_of(schema).values()
    replaced = {name for key in keys if key.name in over for name in key.replaces}
    merged = {**{k: v for k, v in base.items() if k not in replaced or k in over}, **over}
    for key in keys:
        if key.merged and key.name in base and key.name in over:
            merged[key.name] = {**base[key.name], **over[key.name]}
    return merged


def settings(schema: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """Every key's value: from checked ``values`` (nested tables built), else its default.

    A required key without a value is left out, as is a nested table (or an array with a
    table) that cannot be built (its missing key has been reported by :func:`check_table`)
    when its field has a default.
    """
    out: dict[str, Any] = {}
    for key in keys_of(schema).values():
        if key.name in values:
            value = values[key.name]
            if key.schema is not None and key.array:
                items = [build(key.schema, item) for item in value]
                value = None if None in items else tuple(items)
            elif key.schema is not None:
                value = build(key.schema, value)
            if value is not None:
                out[key.name] = value
                continue
        if key.default is not None:
            out[key.name] = key.default()
    return out


def build(schema: type[T], values: Mapping[str, Any]) -> T | None:
    """The schema object of checked ``values``; None when a required key has no value."""
    kwargs = settings(schema, values)
    if any(name not in kwargs for name in required_keys(schema)):
        return None
    return schema(**kwargs)
