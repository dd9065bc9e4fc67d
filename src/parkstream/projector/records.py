"""Reading ``space-events`` records fast: JSON to :class:`Event`, no model validation.

The worker writes these records from validated models, and validating them again with
pydantic costs ~50 µs each, more than everything else the projector does. So the
projector reads the JSON with orjson, upcasts older versions, and checks only what it
uses; the projections convert every value they store. Whatever fails here (or in a
projection) is re-read with the contract's strict decoder to name the reason, and goes
to the dead-letter topic (:func:`explain_rejection`).

Timestamps must lie in a sane window: not before 2000, and not more than a year after
the record was written (``recorded_at``). Anything else would need a partition for a
month that never had traffic, so it is dead-lettered instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from parkstream.domain.contract import ContractError, decode, upcast
from parkstream.domain.space_events import SPACE_EVENT_TYPES

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
AHEAD = timedelta(days=366)

_VERSIONS: dict[str, int] = {cls.TYPE: cls.VERSION for cls in SPACE_EVENT_TYPES}
ORPHAN = "device.orphan_seen"


class BadRecord(ValueError):
    """A record the projector cannot use; ``reason`` is machine-readable."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Incoming:
    """One Kafka record as read: where it was, and its bytes."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(slots=True)  # not frozen: a frozen dataclass costs ~1 µs more per event
class Event:
    type: str
    event_id: str
    tenant_id: str | None
    space_id: str | None
    dev_eui: str | None
    occurred_at: datetime
    recorded_at: datetime
    causation_id: str | None
    correlation_id: str | None
    data: Mapping[str, Any]
    partition: int
    offset: int


_PARSED: dict[str, datetime] = {}  # events of one input share their timestamps
_PARSED_MAX = 4096


def timestamp(value: Any, what: str = "timestamp") -> datetime:
    """An RFC 3339 timestamp with an offset, in UTC."""
    parsed = _PARSED.get(value) if value.__class__ is str else None
    if parsed is not None:
        return parsed
    parsed = _timestamp(value, what)
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[value] = parsed
    return parsed


def _timestamp(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise BadRecord("invalid_record", f"{what} must be a string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadRecord("invalid_record", f"{what}: {exc}") from exc
    if value.endswith("+00:00"):
        return parsed  # how parkstream writes every timestamp: already UTC
    if parsed.utcoffset() is None:
        raise BadRecord("invalid_record", f"{what} has no UTC offset: {value!r}")
    return parsed.astimezone(UTC)


def optional_timestamp(value: Any, what: str) -> datetime | None:
    return None if value is None else timestamp(value, what)


def text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadRecord("invalid_record", f"{what} must be a string, got {value!r}")
    return value


def optional_text(value: Any, what: str) -> str | None:
    return None if value is None else text(value, what)


def integer(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRecord("invalid_record", f"{what} must be an integer, got {value!r}")
    return value


def in_window(occurred_at: datetime, recorded_at: datetime) -> bool:
    return EARLIEST <= occurred_at <= recorded_at + AHEAD


def record_times(raw: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """A record's ``occurred_at`` and ``recorded_at``, checked to be in the sane window."""
    occurred_at = timestamp(raw.get("occurred_at"), "occurred_at")
    recorded_at = timestamp(raw.get("recorded_at"), "recorded_at")
    if not in_window(occurred_at, recorded_at):
        raise BadRecord(
            "timestamp_out_of_range",
            f"occurred_at {occurred_at.isoformat()} is outside [{EARLIEST.date()}, "
            f"recorded_at {recorded_at.isoformat()} + {AHEAD.days} days]",
        )
    return occurred_at, recorded_at


def read_event(record: Incoming) -> Event:
    """The event of a ``space-events`` record; raises :class:`BadRecord`.

    The usual record (current version, every id a string, UTC timestamps seen before)
    goes through without a function call per field; anything else takes the checked
    path (:func:`_read_checked`), which names what is wrong.
    """
    value = record.value
    if value is None:
        raise BadRecord("invalid_record", "a record without a value")
    try:
        raw = _loads(value)
    except orjson.JSONDecodeError as exc:
        raise BadRecord("invalid_json", str(exc)) from exc
    if raw.__class__ is not dict:
        raise BadRecord("invalid_record", "a record must be a JSON object")
    get = raw.get
    type_name = get("type")
    data = get("data")
    tenant_id, space_id, dev_eui = get("tenant_id"), get("space_id"), get("dev_eui")
    event_id, causation, correlation = get("event_id"), get("causation_id"), get("correlation_id")
    if (
        type_name.__class__ is str
        and get("version", 1) == _VERSIONS.get(type_name)
        and data.__class__ is dict
        and tenant_id.__class__ is str
        and space_id.__class__ is str
        and event_id.__class__ is str
        and (dev_eui is None or dev_eui.__class__ is str)
        and (causation is None or causation.__class__ is str)
        and (correlation is None or correlation.__class__ is str)
        and tenant_id
        and space_id
    ):
        occurred, recorded = get("occurred_at"), get("recorded_at")
        occurred_at = _PARSED.get(occurred) if occurred.__class__ is str else None
        if occurred_at is None:
            occurred_at = timestamp(occurred, "occurred_at")
        recorded_at = _PARSED.get(recorded) if recorded.__class__ is str else None
        if recorded_at is None:
            recorded_at = timestamp(recorded, "recorded_at")
        if EARLIEST <= occurred_at <= recorded_at + AHEAD:
            return Event(
                type_name,
                event_id,
                tenant_id,
                space_id,
                dev_eui,
                occurred_at,
                recorded_at,
                causation,
                correlation,
                data,
                record.partition,
                record.offset,
            )
    return _read_checked(record, raw)


_loads = orjson.loads


def checked_type(
    raw: dict[str, Any], versions: Mapping[str, int], kind: str
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(type, record at its current version, data)`` of a record of one topic's types,
    or the :class:`BadRecord` that says why not (shared by every projection's reader)."""
    type_name = raw.get("type")
    current = versions.get(type_name) if isinstance(type_name, str) else None
    if current is None or not isinstance(type_name, str):
        raise BadRecord("unknown_type", f"not a {kind} type: {type_name!r}")
    version = raw.get("version", 1)
    if version != current:
        try:
            if isinstance(version, int) and not isinstance(version, bool) and version > current:
                raise ContractError(f"{type_name} v{version} is newer than this reader")
            raw = upcast(raw)
        except ContractError as exc:
            raise BadRecord("unsupported_version", str(exc)) from exc
    data = raw.get("data")
    if not isinstance(data, dict):
        raise BadRecord("invalid_record", "data must be an object")
    return type_name, raw, data


def _read_checked(record: Incoming, raw: dict[str, Any]) -> Event:
    type_name, raw, data = checked_type(raw, _VERSIONS, "space event")
    tenant_id = optional_text(raw.get("tenant_id"), "tenant_id")
    space_id = optional_text(raw.get("space_id"), "space_id")
    dev_eui = optional_text(raw.get("dev_eui"), "dev_eui")
    if type_name == ORPHAN:
        if not dev_eui:
            raise BadRecord("invalid_record", f"{type_name} without dev_eui")
    elif not tenant_id or not space_id:
        raise BadRecord("invalid_record", f"{type_name} without tenant_id and space_id")
    occurred_at, recorded_at = record_times(raw)
    return Event(
        type=type_name,
        event_id=text(raw.get("event_id"), "event_id"),
        tenant_id=tenant_id,
        space_id=space_id,
        dev_eui=dev_eui,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        causation_id=optional_text(raw.get("causation_id"), "causation_id"),
        correlation_id=optional_text(raw.get("correlation_id"), "correlation_id"),
        data=data,
        partition=record.partition,
        offset=record.offset,
    )


def explain_rejection(record: Incoming, error: Exception) -> BadRecord:
    """Why a record failed: the strict decoder's reason when it refuses the record too.

    When the strict decoder accepts a record that the projector could not use, the fault
    is the projector's: ``error`` is raised again rather than dead-lettering good data.
    """
    if isinstance(error, BadRecord) and error.reason != "invalid_record":
        return error
    try:
        decode(record.value or b"")
    except ContractError as exc:
        return BadRecord("invalid_record", str(exc))
    raise error
