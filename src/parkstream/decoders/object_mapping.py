"""Reading a ChirpStack-decoded ``object`` (the device profile's codec output).

When no binary decoder is chosen for a device but ChirpStack ran a codec, its
``object`` (a protobuf Struct as a dict: numbers are doubles, booleans stay
booleans) is mapped here. Field names are tried in order, case-insensitively,
at the top level of the object; the first field whose value is recognised gives
``occupied``. Values: booleans, the numbers 0/1 (``1.0`` too), and strings such
as ``"occupied"``/``"free"`` (case-insensitive). Battery and temperature fields
are picked up when present and plausible.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeGuard

from parkstream.decoders.base import BAD_VALUE, DecodeFailure
from parkstream.domain.device_events import Reading, Scalar

NAME = "object"

OCCUPANCY_FIELDS: tuple[str, ...] = (
    "occupied",
    "status",
    "state",
    "occupancy",
    "parking_status",
    "parkingStatus",
    "parking_state",
    "carStatus",
    "car_status",
    "presence",
    "vehicle_present",
    "car_present",
)
TRUE_WORDS = frozenset(
    {"occupied", "busy", "taken", "in_use", "present", "car", "true", "yes", "on", "1", "1.0"}
)
FALSE_WORDS = frozenset(
    {
        "free",
        "vacant",
        "empty",
        "available",
        "unoccupied",
        "absent",
        "false",
        "no",
        "off",
        "0",
        "0.0",
    }
)
BATTERY_V_FIELDS: tuple[str, ...] = (
    "battery_v",
    "battery_voltage",
    "batteryVoltage",
    "batV",
    "vbat",
    "battery",
)
BATTERY_PCT_FIELDS: tuple[str, ...] = (
    "battery_pct",
    "battery_percent",
    "batteryPercent",
    "battery_level",
    "batteryLevel",
)
TEMPERATURE_FIELDS: tuple[str, ...] = (
    "temperature_c",
    "temperature",
    "temp",
    "temperatureBoard",
)
MAX_VOLTS = 10.0
MAX_TEXT = 256


class ObjectMappingError(ValueError):
    """A mapping configuration that cannot be used."""


@dataclass(frozen=True, slots=True)
class ObjectMapping:
    """Which ``object`` fields mean what; immutable, built from defaults or plain config."""

    occupancy_fields: tuple[str, ...] = OCCUPANCY_FIELDS
    true_words: frozenset[str] = TRUE_WORDS
    false_words: frozenset[str] = FALSE_WORDS
    battery_v_fields: tuple[str, ...] = BATTERY_V_FIELDS
    battery_pct_fields: tuple[str, ...] = BATTERY_PCT_FIELDS
    temperature_fields: tuple[str, ...] = TEMPERATURE_FIELDS
    max_fields: int = 32

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> ObjectMapping:
        """Build from e.g. ``{"occupancy_fields": [...], "true_words": [...]}``; others default."""
        known = {
            "occupancy_fields",
            "true_words",
            "false_words",
            "battery_v_fields",
            "battery_pct_fields",
            "temperature_fields",
        }
        unknown = set(config) - known
        if unknown:
            raise ObjectMappingError(f"unknown object mapping keys: {sorted(unknown)}")
        default = cls()
        return cls(
            occupancy_fields=_names(config, "occupancy_fields", default.occupancy_fields),
            true_words=_words(config, "true_words", default.true_words),
            false_words=_words(config, "false_words", default.false_words),
            battery_v_fields=_names(config, "battery_v_fields", default.battery_v_fields),
            battery_pct_fields=_names(config, "battery_pct_fields", default.battery_pct_fields),
            temperature_fields=_names(config, "temperature_fields", default.temperature_fields),
        )

    def occupancy(self, value: object) -> bool | None:
        """True/False for a recognised occupancy value, None for anything else."""
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return True if value == 1 else False if value == 0 else None
        if isinstance(value, str):
            word = value.strip().lower()
            if word in self.true_words:
                return True
            if word in self.false_words:
                return False
        return None

    def decode(self, obj: Mapping[str, object]) -> Reading | DecodeFailure | None:
        """The reading the object gives, a failure for an unrecognised occupancy value,
        or None when the object says nothing this mapping knows."""
        by_name = _lower_keys(obj)
        occupied: bool | None = None
        source: str | None = None
        unrecognised: list[str] = []
        for name in self.occupancy_fields:
            key = by_name.get(name.lower())
            if key is None:
                continue
            occupied = self.occupancy(obj[key])
            if occupied is not None:
                source = key
                break
            unrecognised.append(f"{key}={_short(obj[key])}")
        battery_v = _number(obj, by_name, self.battery_v_fields, 0.0, MAX_VOLTS)
        battery_pct = _number(obj, by_name, self.battery_pct_fields, 0.0, 100.0)
        temperature = _number(obj, by_name, self.temperature_fields, -100.0, 200.0)
        if occupied is None and unrecognised:
            detail = "no recognised occupancy value: " + ", ".join(unrecognised)
            return DecodeFailure(NAME, BAD_VALUE, detail)
        if occupied is None and battery_v is None and battery_pct is None and temperature is None:
            return None
        fields = self._scalars(obj)
        if source is not None:
            fields["occupancy_field"] = source
        return Reading(
            decoder=NAME,
            kind="object",
            occupied=occupied,
            battery_v=battery_v,
            battery_pct=battery_pct,
            temperature_c=temperature,
            fields=fields,
        )

    def _scalars(self, obj: Mapping[str, object]) -> dict[str, Scalar]:
        fields: dict[str, Scalar] = {}
        for key, value in obj.items():
            if len(fields) >= self.max_fields:
                break
            if not isinstance(key, str) or len(key) > MAX_TEXT:
                continue
            if isinstance(value, str):
                fields[key] = value[:MAX_TEXT]
            elif _is_plain_scalar(value):
                fields[key] = value
        return fields


def _is_plain_scalar(value: object) -> TypeGuard[bool | int | float | None]:
    """None, a boolean, an integer or a finite float (NaN/inf have no JSON form)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, bool | int)


def _lower_keys(obj: Mapping[str, object]) -> dict[str, str]:
    by_name: dict[str, str] = {}
    for key in obj:
        if isinstance(key, str):
            by_name.setdefault(key.lower(), key)
    return by_name


def _number(
    obj: Mapping[str, object],
    by_name: Mapping[str, str],
    names: Iterable[str],
    low: float,
    high: float,
) -> float | None:
    """The first named field holding a finite number within ``[low, high]``."""
    for name in names:
        key = by_name.get(name.lower())
        if key is None:
            continue
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if low <= value <= high:  # compares big ints exactly and is False for NaN
            return float(value)
    return None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _names(config: Mapping[str, object], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = config.get(key)
    if value is None:
        return default
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ObjectMappingError(f"{key} must be a list of non-empty strings")
    return tuple(value)


def _words(config: Mapping[str, object], key: str, default: frozenset[str]) -> frozenset[str]:
    return frozenset(word.strip().lower() for word in _names(config, key, tuple(default)))
