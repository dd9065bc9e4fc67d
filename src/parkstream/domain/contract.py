"""The public contract: every record type, by topic, with (de)serialisation.

``encode`` writes a record as compact JSON with orjson; ``decode`` reads any
version of any known type, upcasting older versions first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from parkstream.domain.commands import COMMAND_TYPES
from parkstream.domain.device_events import DEVICE_EVENT_TYPES
from parkstream.domain.downlinks import DEADLETTER_TYPES, DOWNLINK_TYPES
from parkstream.domain.envelope import Envelope
from parkstream.domain.space_events import SPACE_EVENT_TYPES

# Catalogue name of each public topic -> the record types it carries.
TOPIC_TYPES: Mapping[str, tuple[type[Envelope], ...]] = {
    "device-events.v1": DEVICE_EVENT_TYPES,
    "space-commands.v1": COMMAND_TYPES,
    "space-events.v1": SPACE_EVENT_TYPES,
    "downlinks.v1": DOWNLINK_TYPES,
    "deadletter.v1": DEADLETTER_TYPES,
}

RECORD_TYPES: dict[str, type[Envelope]] = {
    cls.TYPE: cls for types in TOPIC_TYPES.values() for cls in types
}

if len(RECORD_TYPES) != sum(len(types) for types in TOPIC_TYPES.values()):
    raise RuntimeError("two record types share a type name")

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
# (type, version) -> function that turns that version's dict into version + 1.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class ContractError(ValueError):
    """A record that is not valid JSON, of an unknown type, or does not match its schema."""


def encode(record: Envelope) -> bytes:
    # OPT_NON_STR_KEYS: maps keyed by an enum (display styles by state) are written by value.
    return orjson.dumps(record.model_dump(mode="python"), option=orjson.OPT_NON_STR_KEYS)


def to_dict(record: Envelope) -> dict[str, Any]:
    """The record as plain JSON types (what ``encode`` writes, before serialisation)."""
    result: dict[str, Any] = orjson.loads(encode(record))
    return result


def upcast(raw: dict[str, Any]) -> dict[str, Any]:
    """Apply upcasters until the record is at its type's current version."""
    cls = RECORD_TYPES.get(raw.get("type", ""))
    if cls is None:
        return raw
    version = raw.get("version", 1)
    while isinstance(version, int) and version < cls.VERSION:
        step = UPCASTERS.get((cls.TYPE, version))
        if step is None:
            raise ContractError(f"no upcaster for {cls.TYPE} v{version}")
        raw = step(raw)
        version = raw.get("version", version + 1)
    return raw


def decode(payload: bytes | str | dict[str, Any]) -> Envelope:
    """Parse a record of any known type; raises :class:`ContractError` with the reason."""
    if isinstance(payload, dict):
        raw = payload
    else:
        try:
            raw = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise ContractError(f"invalid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ContractError("a record must be a JSON object")
    type_name = raw.get("type")
    cls = RECORD_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise ContractError(f"unknown record type {type_name!r}")
    version = raw.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ContractError(f"{cls.TYPE}: version must be an integer, got {version!r}")
    if version > cls.VERSION:
        raise ContractError(f"{cls.TYPE} v{version} is newer than this reader (v{cls.VERSION})")
    try:
        return cls.model_validate(upcast(raw))
    except ValidationError as exc:
        raise ContractError(f"{cls.TYPE}: {_first_error(exc)}") from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "record"
    return f"{where}: {err['msg']}"
