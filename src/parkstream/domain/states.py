"""The states a bay can be in, and the layers that decide them."""

from __future__ import annotations

from enum import StrEnum


class SpaceState(StrEnum):
    FREE = "FREE"
    OCCUPIED = "OCCUPIED"
    RESERVED = "RESERVED"
    RESERVED_SOON = "RESERVED_SOON"
    UNKNOWN = "UNKNOWN"
    OUT_OF_ORDER = "OUT_OF_ORDER"
    MAINTENANCE = "MAINTENANCE"
    BLOCKED = "BLOCKED"
    ARCHIVED = "ARCHIVED"


class Layer(StrEnum):
    """Which layer decided the effective state; higher layers win."""

    ARCHIVED = "archived"
    OVERRIDE = "override"
    RESERVATION = "reservation"
    SENSOR = "sensor"
    UNKNOWN = "unknown"


# States an operator can force with an override.
OVERRIDE_STATES = frozenset(
    {
        SpaceState.OUT_OF_ORDER,
        SpaceState.MAINTENANCE,
        SpaceState.BLOCKED,
        SpaceState.FREE,
        SpaceState.OCCUPIED,
        SpaceState.RESERVED,
    }
)
