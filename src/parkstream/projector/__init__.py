"""The projector: the PostgreSQL read model kept in step with ``space-events``.

The read model is three projections, each rebuildable on its own (``parkstream replay``):

- ``registry``: sites, spaces, devices, orphan devices (:mod:`.registry`);
- ``reservations``: reservations and rejected requests (:mod:`.reservations`);
- ``activity``: actuations (state changes and display downlinks, partitioned by month),
  the current state of each bay, and the utilisation rollups (:mod:`.activity`,
  :mod:`.utilization`).

Each projection is a pure function from a batch of events to row changes; the shell
(:mod:`.store`) applies a batch's row changes and the consumed offsets in one
transaction (:mod:`.app` is the Kafka loop). The schema is the ordered SQL migrations in
``projections/`` (:mod:`.migrate`).
"""

from __future__ import annotations

PROJECTIONS: tuple[str, ...] = ("registry", "reservations", "activity")
"""Every projection, in the order a batch applies them."""

PROJECTION_TABLES: dict[str, tuple[str, ...]] = {
    "registry": ("sites", "spaces", "devices", "orphan_devices"),
    "reservations": ("reservations", "reservation_rejections"),
    "activity": ("actuations", "space_states", "utilization_hourly", "utilization_daily"),
}
"""The tables each projection owns (and a rebuild swaps)."""
