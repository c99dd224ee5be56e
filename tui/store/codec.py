"""Serialization: events to compact JSON and back, and secret-free config snapshots."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from tui.config import SessionConfig
from tui.stream.events import EVENT_TYPES, RunEvent

from .errors import StoreError

encode_event = msgspec.json.Encoder().encode
"""Event dataclass -> compact JSON bytes (the class name is stored next to it as ``kind``)."""

encode_rows = encode_event
"""Rows (lists of tuples holding events) -> one JSON array, the events encoded as above."""

_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    name: msgspec.json.Decoder(cls) for name, cls in EVENT_TYPES.items()
}


def decode_event(kind: str, payload: bytes | str) -> RunEvent:
    """The identical frozen event back from its class name and stored payload."""
    decoder = _decoders.get(kind)
    if decoder is None:
        raise StoreError(f"unknown event kind {kind!r} in the database (from a newer tokentop?)")
    try:
        event: RunEvent = decoder.decode(payload)
    except msgspec.ValidationError:
        return _decode_lenient(EVENT_TYPES[kind], payload)
    return event


def _decode_lenient(cls: type[RunEvent], payload: bytes | str) -> RunEvent:
    """An event whose float fields were not finite when written (JSON null): 0.0."""
    fields: dict[str, Any] = msgspec.json.decode(payload)
    for f in dataclasses.fields(cls):
        if f.type == "float" and fields.get(f.name) is None:
            fields[f.name] = 0.0
        elif isinstance(fields.get(f.name), dict):  # a nested RunError
            continue
    event: RunEvent = msgspec.convert(fields, cls)
    return event


def event_fields(event: RunEvent) -> dict[str, Any]:
    """The event's fields as plain JSON values (for exports)."""
    fields: dict[str, Any] = msgspec.to_builtins(event)
    return fields


SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie", "set-cookie"}
)
"""Header names never stored (compared case-insensitively)."""

_SECRET_NAME = re.compile(
    r"auth|api[-_]?key|secret|passw|cookie|credential|^key$|(^|[-_])[a-z]*[-_]?token$"
)
"""Header and parameter names that smell of a credential are dropped too (defence in depth):
``X-Auth-Token``, ``hf_token``, ``client_secret``... but not ``max_tokens``."""

REDACTED = "[redacted]"


def _looks_secret(name: str) -> bool:
    lowered = name.strip().lower()
    return lowered in SECRET_HEADERS or _SECRET_NAME.search(lowered) is not None


def _plain(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` as JSON-able builtins, with any known secret value blanked out."""
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name), secrets) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v, secrets) for k, v in value.items() if not _looks_secret(str(k))}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, secrets) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _plain(str(value), secrets)


def config_snapshot(session: SessionConfig) -> dict[str, Any]:
    """The session's settings as used, safe to store.

    ``api_key_env`` stays (it is a variable *name*); headers and params whose names look like
    credentials (``Authorization``, ``api-key``, ``x-api-key``, ``proxy-authorization``,
    ``cookie``, anything with ``token``/``secret``/``auth``...) are removed, their names kept
    in ``redacted``; and the key itself, should it appear anywhere, is blanked out.
    """
    key = secret_of(session)
    secrets = (key,) if key else ()
    snapshot: dict[str, Any] = _plain(session, secrets)
    removed = sorted(
        [f"headers.{k}" for k in session.headers if _looks_secret(k)]
        + [f"params.{k}" for k in session.params if _looks_secret(str(k))]
    )
    if removed:
        snapshot["redacted"] = removed
    return snapshot


def snapshot_json(snapshot: Mapping[str, Any]) -> tuple[str, str]:
    """Canonical JSON text of a snapshot and its sha256 (to store each distinct one once)."""
    text = json.dumps(snapshot, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text, hashlib.sha256(text.encode()).hexdigest()


def secret_of(session: SessionConfig) -> str | None:
    """The session's API key as it is now (None without one, or when too short to search)."""
    key = session.api_key()
    return key if key and len(key) >= 4 else None


def scrub(text: str, session: SessionConfig | str | None) -> str:
    """``text`` with the API key (of ``session``, or given as is) blanked out."""
    key = secret_of(session) if isinstance(session, SessionConfig) else session
    if key and key in text:
        return text.replace(key, REDACTED)
    return text
