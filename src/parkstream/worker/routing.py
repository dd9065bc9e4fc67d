"""Routing device events to bays (pure): the device registry and orphan discovery.

The registry is folded from ``space.device_assigned`` / ``space.device_unassigned``
events, repartitioned by device. An event of a device no bay claims becomes a
``device.orphan_seen`` event (at most once per ``orphan_every``) that the API lists
so an operator can assign the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from parkstream.domain import space_events as ev
from parkstream.domain.device_events import DeviceInfo
from parkstream.domain.envelope import Envelope, Source
from parkstream.domain.ids import derive_id

ORPHAN_EVERY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where a device belongs: its bay, the bay's tenant and its role there."""

    dev_eui: str
    space_id: str
    tenant_id: str
    role: str

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "dev_eui": self.dev_eui,
                "space_id": self.space_id,
                "tenant_id": self.tenant_id,
                "role": self.role,
            }
        )

    @classmethod
    def from_json(cls, raw: Any) -> Assignment:
        data = orjson.loads(raw) if isinstance(raw, bytes | str) else raw
        return cls(data["dev_eui"], data["space_id"], data["tenant_id"], data["role"])


@dataclass(frozen=True, slots=True)
class RegistryChange:
    """Set (``assignment``) or clear (``None``) the registry entry of ``dev_eui``.

    ``space_id`` names the bay that caused the change: a clear only removes the entry
    if it still points at that bay (a device moved to another bay stays there).
    """

    dev_eui: str
    space_id: str
    assignment: Assignment | None

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "dev_eui": self.dev_eui,
                "space_id": self.space_id,
                "assignment": orjson.loads(self.assignment.to_json()) if self.assignment else None,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes) -> RegistryChange:
        data = orjson.loads(raw)
        assignment = Assignment.from_json(data["assignment"]) if data.get("assignment") else None
        return cls(data["dev_eui"], data["space_id"], assignment)


def registry_changes(events: list[Envelope]) -> list[RegistryChange]:
    """The registry changes that a bay's new events imply, in order."""
    out: list[RegistryChange] = []
    for e in events:
        if isinstance(e, ev.DeviceAssigned):
            d = e.data
            if d.replaced_dev_eui and d.replaced_dev_eui != d.dev_eui:
                out.append(RegistryChange(d.replaced_dev_eui, e.space_id, None))
            out.append(
                RegistryChange(
                    d.dev_eui, e.space_id, Assignment(d.dev_eui, e.space_id, e.tenant_id, d.role)
                )
            )
        elif isinstance(e, ev.DeviceUnassigned):
            out.append(RegistryChange(e.data.dev_eui, e.space_id, None))
    return out


def apply_change(current: Assignment | None, change: RegistryChange) -> Assignment | None:
    if change.assignment is not None:
        return change.assignment
    if current is not None and current.space_id != change.space_id:
        return current  # the device has moved on to another bay meanwhile
    return None


def routed(event: Envelope, assignment: Assignment) -> Envelope:
    """The device event addressed to its bay (tenant and space filled in)."""
    return event.model_copy(
        update={"space_id": assignment.space_id, "tenant_id": assignment.tenant_id}
    )


def orphan_due(
    last_reported: datetime | None, at: datetime, every: timedelta = ORPHAN_EVERY
) -> bool:
    return last_reported is None or at - last_reported >= every


def orphan_seen(event: Envelope, source: Source) -> ev.OrphanDeviceSeen:
    """A ``device.orphan_seen`` record for an event of a device no bay claims."""
    device = getattr(event, "data", None)
    info: DeviceInfo | None = getattr(device, "device", None)
    assert event.dev_eui is not None
    return ev.OrphanDeviceSeen(
        event_id=derive_id(event.event_id, "orphan"),
        dev_eui=event.dev_eui,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        source=source,
        causation_id=event.event_id,
        correlation_id=event.correlation_id or event.event_id,
        data=ev.OrphanDeviceSeenData(
            dev_eui=event.dev_eui,
            device_profile_name=info.device_profile_name if info else None,
            application_id=info.application_id if info else None,
            device_name=info.device_name if info else None,
            event_type=event.type,
        ),
    )
