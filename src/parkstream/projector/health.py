"""The device_health projection: radio and battery of each device, from ``device-events``.

Space events say whether a bay's sensor is heard, not how well: the signal, the battery
and the frame counter stay in the device events. This projection keeps the latest of
each per device, keyed by ``dev_eui`` alone (device events carry no tenant); a tenant
reads it joined with its ``devices`` rows (see ``projections/0005_device_health.sql``).

- ``device.uplink_observed``: the uplink group (f_cnt, port, data rate, the best
  gateway's RSSI and SNR, how many gateways heard it), and the battery when the payload
  decoder found one (percentage and/or voltage);
- ``device.status_reported``: link margin, power source, and the battery percentage
  ChirpStack got from DevStatusReq (unless the device cannot tell);
- ``device.joined``: the last join.

Every group is last-writer-wins by the time of the event that set it, so repeats and
late events change nothing. Pure: :func:`read_device_event` and :func:`project`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from parkstream.domain.device_events import DEVICE_EVENT_TYPES
from parkstream.projector.records import (
    BadRecord,
    Event,
    Incoming,
    checked_type,
    integer,
    optional_text,
    record_times,
    text,
)
from parkstream.projector.tables import Changes, Column, Rows, Spec, project_with

_VERSIONS: dict[str, int] = {cls.TYPE: cls.VERSION for cls in DEVICE_EVENT_TYPES}
_HEX = frozenset("0123456789abcdef")


def _lww(name: str, guard: str) -> Column:
    return Column(name, "lww", guard=guard)


_UPLINK = (
    "f_cnt",
    "f_port",
    "dr",
    "rssi",
    "snr",
    "gateway_count",
    "gateway_ids",
    "frequency",
    "spreading_factor",
    "decode_error",
)
_STATUS = ("margin", "external_power_source", "battery_level_unavailable")

HEALTH = Spec(
    "device_health",
    ("dev_eui",),
    (
        Column("first_seen_at", "min"),
        Column("last_seen_at", "max"),
        *(_lww(name, "last_uplink_at") for name in _UPLINK),
        Column("last_uplink_at", "max"),
        _lww("battery_pct", "battery_at"),
        _lww("battery_source", "battery_at"),
        Column("battery_at", "max"),
        _lww("battery_v", "battery_v_at"),
        Column("battery_v_at", "max"),
        *(_lww(name, "status_at") for name in _STATUS),
        Column("status_at", "max"),
        Column("last_joined_at", "max"),
    ),
)

SPECS: tuple[Spec, ...] = (HEALTH,)


# --- reading device-events records ----------------------------------------------------------


def read_device_event(record: Incoming) -> Event:
    """The event of a ``device-events`` record (no tenant, no bay); raises :class:`BadRecord`."""
    if record.value is None:
        raise BadRecord("invalid_record", "a record without a value")
    try:
        raw = orjson.loads(record.value)
    except orjson.JSONDecodeError as exc:
        raise BadRecord("invalid_json", str(exc)) from exc
    if not isinstance(raw, dict):
        raise BadRecord("invalid_record", "a record must be a JSON object")
    type_name, raw, data = checked_type(raw, _VERSIONS, "device event")
    occurred_at, recorded_at = record_times(raw)
    return Event(
        type=type_name,
        event_id=text(raw.get("event_id"), "event_id"),
        tenant_id=None,
        space_id=None,
        dev_eui=_eui(raw.get("dev_eui")),
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        causation_id=optional_text(raw.get("causation_id"), "causation_id"),
        correlation_id=optional_text(raw.get("correlation_id"), "correlation_id"),
        data=data,
        partition=record.partition,
        offset=record.offset,
    )


def _eui(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 16 or not _HEX.issuperset(value):
        raise BadRecord("invalid_record", f"dev_eui must be 16 lower-case hex digits: {value!r}")
    return value


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRecord("invalid_record", f"{what} must be a number, got {value!r}")
    return float(value)


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise BadRecord("invalid_record", f"{what} must be a boolean, got {value!r}")
    return value


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRecord("invalid_record", f"{what} must be an object")
    return value


# --- one function per event type: the row it changes ------------------------------------


def _row(e: Event, **values: Any) -> list[Any]:
    index = HEALTH.index
    row: list[Any] = [None] * len(index)
    row[0] = e.dev_eui
    row[index["first_seen_at"]] = e.occurred_at
    row[index["last_seen_at"]] = e.occurred_at
    for name, value in values.items():
        row[index[name]] = value
    return row


def _uplink(e: Event) -> Rows:
    d, at = e.data, e.occurred_at
    radio = _object(d.get("radio"), "data.radio")
    gateways = radio.get("gateway_ids", [])
    if not isinstance(gateways, list) or not all(isinstance(g, str) for g in gateways):
        raise BadRecord("invalid_record", "data.radio.gateway_ids must be a list of strings")
    values: dict[str, Any] = {
        "f_cnt": integer(d.get("f_cnt"), "data.f_cnt"),
        "f_port": integer(d.get("f_port"), "data.f_port"),
        "dr": integer(d.get("dr"), "data.dr"),
        "rssi": integer(radio.get("rssi"), "data.radio.rssi"),
        "snr": _number(radio.get("snr"), "data.radio.snr"),
        "gateway_count": len(gateways),
        "gateway_ids": gateways,
        "frequency": integer(radio.get("frequency"), "data.radio.frequency"),
        "spreading_factor": integer(radio.get("spreading_factor"), "data.radio.spreading_factor"),
        "decode_error": optional_text(d.get("decode_error"), "data.decode_error"),
        "last_uplink_at": at,
    }
    reading = _object(d.get("reading"), "data.reading")
    pct = _number(reading.get("battery_pct"), "data.reading.battery_pct")
    if pct is not None:
        values.update(battery_pct=pct, battery_source="uplink", battery_at=at)
    volts = _number(reading.get("battery_v"), "data.reading.battery_v")
    if volts is not None:
        values.update(battery_v=volts, battery_v_at=at)
    return [(HEALTH, _row(e, **values))]


def _status(e: Event) -> Rows:
    d, at = e.data, e.occurred_at
    external = _flag(d.get("external_power_source", False), "data.external_power_source")
    unavailable = _flag(d.get("battery_level_unavailable", False), "data.battery_level_unavailable")
    values: dict[str, Any] = {
        "margin": integer(d.get("margin"), "data.margin"),
        "external_power_source": external,
        "battery_level_unavailable": unavailable,
        "status_at": at,
    }
    level = _number(d.get("battery_level"), "data.battery_level")
    if level is not None and not external and not unavailable:
        values.update(battery_pct=level, battery_source="status", battery_at=at)
    return [(HEALTH, _row(e, **values))]


def _joined(e: Event) -> Rows:
    return [(HEALTH, _row(e, last_joined_at=e.occurred_at))]


HANDLERS: dict[str, Callable[[Event], Rows]] = {
    "device.uplink_observed": _uplink,
    "device.status_reported": _status,
    "device.joined": _joined,
}


def project(events: Iterable[Event]) -> Changes:
    """The device_health row changes of ``events`` (in stream order)."""
    return project_with(HANDLERS, events)
