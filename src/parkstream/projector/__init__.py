"""The projector: the PostgreSQL read model kept in step with ``space-events`` and
``device-events``.

The read model is four projections, each rebuildable on its own (``parkstream replay``):

- ``registry``: sites, spaces, devices, orphan devices (:mod:`.registry`);
- ``reservations``: reservations and rejected requests (:mod:`.reservations`);
- ``activity``: actuations (state changes and display downlinks, partitioned by month),
  the current state of each bay, and the utilisation rollups (:mod:`.activity`,
  :mod:`.utilization`);
- ``device_health``: radio and battery of each device, from ``device-events``
  (:mod:`.health`).

Each projection is a pure function from a batch of events to row changes; the shell
(:mod:`.store`) applies a batch's row changes and the consumed offsets in one
transaction, and announces it on commit with ``NOTIFY parkstream_projection`` (payload:
the projection's name; see :mod:`.store`). :mod:`.app` is the Kafka loop. The schema is
the ordered SQL migrations in ``projections/`` (:mod:`.migrate`).
"""

from __future__ import annotations

SPACE_EVENTS = "space-events.v1"
DEVICE_EVENTS = "device-events.v1"

PROJECTIONS: tuple[str, ...] = ("registry", "reservations", "activity", "device_health")
"""Every projection, in the order a batch applies them."""

PROJECTION_TOPICS: dict[str, str] = {
    "registry": SPACE_EVENTS,
    "reservations": SPACE_EVENTS,
    "activity": SPACE_EVENTS,
    "device_health": DEVICE_EVENTS,
}
"""The topic (catalogue name) each projection reads."""

PROJECTION_TABLES: dict[str, tuple[str, ...]] = {
    "registry": ("sites", "spaces", "devices", "orphan_devices"),
    "reservations": ("reservations", "reservation_rejections"),
    "activity": ("actuations", "space_states", "utilization_hourly", "utilization_daily"),
    "device_health": ("device_health",),
}
"""The tables each projection owns (and a rebuild swaps)."""

NOTIFY_CHANNEL = "parkstream_projection"
"""Where each committed batch is announced (payload: the projection's name)."""


def projections_of(topic: str, among: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The projections (of ``among``, default all) that read the catalogue topic ``topic``."""
    return tuple(p for p in (among or PROJECTIONS) if PROJECTION_TOPICS[p] == topic)


def topics_of(projections: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The catalogue topics ``projections`` read, in the order of :data:`PROJECTIONS`."""
    found: list[str] = []
    for p in PROJECTIONS:
        if p in projections and PROJECTION_TOPICS[p] not in found:
            found.append(PROJECTION_TOPICS[p])
    return tuple(found)
