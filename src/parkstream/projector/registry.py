"""The registry projection: sites, spaces, devices and orphan devices, from their events.

Pure: :func:`project` turns a batch of events into row changes (:class:`Changes`). Each
group of columns is last-writer-wins by the time of the event that set it, so a
repeated event, or one that arrives late, never overwrites a newer value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from parkstream.projector.records import (
    BadRecord,
    Event,
    integer,
    optional_text,
    optional_timestamp,
    text,
)
from parkstream.projector.tables import Changes, Column, Rows, Spec, project_with


def _lww(name: str, guard: str, default: str | None = None) -> Column:
    return Column(name, "lww", guard=guard, default=default)


SITES = Spec(
    "sites",
    ("tenant_id", "site_id"),
    (
        _lww("time_zone", "tz_at", default="'UTC'"),
        Column("tz_at", "max"),
        Column("first_registered_at", "min"),
    ),
)

SPACES = Spec(
    "spaces",
    ("tenant_id", "space_id"),
    (
        # space.registered (site and time zone) and space.registered/updated (the rest)
        _lww("site_id", "registered_at"),
        _lww("time_zone", "registered_at"),
        Column("registered_at", "max"),
        _lww("name", "meta_at"),
        _lww("code", "meta_at"),
        _lww("config", "meta_at"),
        Column("meta_at", "max"),
        _lww("archived", "archive_at", default="false"),
        _lww("archive_reason", "archive_at"),
        Column("archive_at", "max"),
        _lww("override_state", "override_at"),
        _lww("override_reason", "override_at"),
        _lww("override_until", "override_at"),
        Column("override_at", "max"),
        _lww("display_policy", "policy_at"),
        Column("policy_at", "max"),
        _lww("sensor_dev_eui", "sensor_at"),
        _lww("sensor_decoder", "sensor_at"),
        Column("sensor_at", "max"),
        _lww("display_dev_eui", "display_at"),
        Column("display_at", "max"),
    ),
)

DEVICES = Spec(
    "devices",
    ("tenant_id", "dev_eui"),
    (
        _lww("role", "assignment_at"),
        _lww("space_id", "assignment_at"),
        _lww("decoder", "assignment_at"),
        _lww("assigned", "assignment_at", default="false"),
        Column("assignment_at", "max"),
        _lww("last_f_cnt", "last_seen_at"),
        _lww("last_occupied", "last_seen_at"),
        _lww("last_reading", "last_seen_at"),
        Column("last_seen_at", "max"),
        _lww("liveness", "liveness_at", default="'unknown'"),
        _lww("silent_since", "liveness_at"),
        _lww("last_heard_at", "liveness_at"),
        Column("liveness_at", "max"),
    ),
)

ORPHAN_DEVICES = Spec(
    "orphan_devices",
    ("dev_eui",),
    (
        Column("first_seen_at", "min"),
        _lww("device_profile_name", "last_seen_at"),
        _lww("application_id", "last_seen_at"),
        _lww("device_name", "last_seen_at"),
        _lww("last_event_type", "last_seen_at"),
        Column("last_seen_at", "max"),
    ),
)

SPECS: tuple[Spec, ...] = (SITES, SPACES, DEVICES, ORPHAN_DEVICES)


def _row(spec: Spec, **values: Any) -> list[Any]:
    index = spec.index
    row: list[Any] = [None] * len(index)
    for name, value in values.items():
        row[index[name]] = value
    return row


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRecord("invalid_record", f"{what} must be an object")
    return value


def _eui(value: Any, what: str = "dev_eui") -> str:
    eui = text(value, what)
    if len(eui) != 16:
        raise BadRecord("invalid_record", f"{what} must be 16 hex digits, got {eui!r}")
    return eui


# --- one function per event type: the rows it changes ------------------------------------


def _registered(e: Event) -> Rows:
    d, at = e.data, e.occurred_at
    site_id = text(d.get("site_id"), "data.site_id")
    tz = text(d.get("time_zone", "UTC"), "data.time_zone")
    site = _row(
        SITES,
        tenant_id=e.tenant_id,
        site_id=site_id,
        time_zone=tz,
        tz_at=at,
        first_registered_at=at,
    )
    space = _row(
        SPACES,
        tenant_id=e.tenant_id,
        space_id=e.space_id,
        site_id=site_id,
        time_zone=tz,
        registered_at=at,
        name=text(d.get("name"), "data.name"),
        code=text(d.get("code"), "data.code"),
        config=_object(d.get("config"), "data.config"),
        meta_at=at,
    )
    return [(SITES, site), (SPACES, space)]


def _updated(e: Event) -> Rows:
    d = e.data
    space = _row(
        SPACES,
        tenant_id=e.tenant_id,
        space_id=e.space_id,
        name=text(d.get("name"), "data.name"),
        code=text(d.get("code"), "data.code"),
        config=_object(d.get("config"), "data.config"),
        meta_at=e.occurred_at,
    )
    return [(SPACES, space)]


def _archived(e: Event) -> Rows:
    space = _row(
        SPACES,
        tenant_id=e.tenant_id,
        space_id=e.space_id,
        archived=True,
        archive_reason=text(e.data.get("reason", ""), "data.reason"),
        archive_at=e.occurred_at,
    )
    return [(SPACES, space)]


def _restored(e: Event) -> Rows:
    space = _row(
        SPACES,
        tenant_id=e.tenant_id,
        space_id=e.space_id,
        archived=False,
        archive_at=e.occurred_at,
    )
    return [(SPACES, space)]


def _space_device(e: Event, role: str, dev_eui: str | None, decoder: str | None) -> list[Any]:
    if role == "sensor":
        return _row(
            SPACES,
            tenant_id=e.tenant_id,
            space_id=e.space_id,
            sensor_dev_eui=dev_eui,
            sensor_decoder=decoder,
            sensor_at=e.occurred_at,
        )
    if role == "display":
        return _row(
            SPACES,
            tenant_id=e.tenant_id,
            space_id=e.space_id,
            display_dev_eui=dev_eui,
            display_at=e.occurred_at,
        )
    raise BadRecord("invalid_record", f"data.role must be sensor or display, got {role!r}")


def _assignment(
    e: Event, dev_eui: str, role: str, decoder: str | None, assigned: bool
) -> list[Any]:
    return _row(
        DEVICES,
        tenant_id=e.tenant_id,
        dev_eui=dev_eui,
        role=role,
        space_id=e.space_id,
        decoder=decoder,
        assigned=assigned,
        assignment_at=e.occurred_at,
    )


def _device_assigned(e: Event) -> Rows:
    d = e.data
    eui = _eui(d.get("dev_eui"), "data.dev_eui")
    role = text(d.get("role"), "data.role")
    decoder = optional_text(d.get("decoder"), "data.decoder")
    rows: Rows = [(SPACES, _space_device(e, role, eui, decoder if role == "sensor" else None))]
    replaced = optional_text(d.get("replaced_dev_eui"), "data.replaced_dev_eui")
    if replaced is not None and replaced != eui:
        rows.append((DEVICES, _assignment(e, _eui(replaced), role, None, False)))
    rows.append((DEVICES, _assignment(e, eui, role, decoder, True)))
    return rows


def _device_unassigned(e: Event) -> Rows:
    d = e.data
    eui = _eui(d.get("dev_eui"), "data.dev_eui")
    role = text(d.get("role"), "data.role")
    return [
        (SPACES, _space_device(e, role, None, None)),
        (DEVICES, _assignment(e, eui, role, None, False)),
    ]


def _alive(e: Event, eui: str) -> list[Any]:
    return _row(
        DEVICES,
        tenant_id=e.tenant_id,
        dev_eui=eui,
        liveness="alive",
        last_heard_at=e.occurred_at,
        liveness_at=e.occurred_at,
    )


def _reading_accepted(e: Event) -> Rows:
    # The most frequent event: its row is written out in column order (checked below).
    d = e.data
    eui = d.get("dev_eui")
    if eui.__class__ is not str or len(eui) != 16:
        eui = _eui(eui, "data.dev_eui")
    occupied = d.get("occupied")
    if occupied.__class__ is not bool:
        raise BadRecord("invalid_record", "data.occupied must be a boolean")
    seen = optional_timestamp(d.get("observed_at"), "data.observed_at") or e.occurred_at
    at = e.occurred_at
    reading = [
        e.tenant_id, eui, None, None, None, None, None,
        integer(d.get("f_cnt"), "data.f_cnt"), occupied, "accepted", seen,
        "alive", None, at, at,
    ]  # fmt: skip
    return [(DEVICES, reading)]


if DEVICES.names != (
    "tenant_id", "dev_eui", "role", "space_id", "decoder", "assigned", "assignment_at",
    "last_f_cnt", "last_occupied", "last_reading", "last_seen_at",
    "liveness", "silent_since", "last_heard_at", "liveness_at",
):  # fmt: skip
    raise RuntimeError("registry: _reading_accepted writes the devices columns out of order")


def _reading_ignored(e: Event) -> Rows:
    d = e.data
    eui = _eui(d.get("dev_eui"), "data.dev_eui")
    reading = _row(
        DEVICES,
        tenant_id=e.tenant_id,
        dev_eui=eui,
        last_f_cnt=integer(d.get("f_cnt"), "data.f_cnt"),
        last_reading=f"ignored: {text(d.get('reason'), 'data.reason')}",
        last_seen_at=e.occurred_at,
        liveness="alive",
        last_heard_at=e.occurred_at,
        liveness_at=e.occurred_at,
    )
    return [(DEVICES, reading)]


def _went_silent(e: Event) -> Rows:
    d = e.data
    silent = _row(
        DEVICES,
        tenant_id=e.tenant_id,
        dev_eui=_eui(d.get("dev_eui"), "data.dev_eui"),
        liveness="silent",
        silent_since=e.occurred_at,
        last_heard_at=optional_timestamp(d.get("last_heard_at"), "data.last_heard_at"),
        liveness_at=e.occurred_at,
    )
    return [(DEVICES, silent)]


def _recovered(e: Event) -> Rows:
    return [(DEVICES, _alive(e, _eui(e.data.get("dev_eui"), "data.dev_eui")))]


def _display_confirmed(e: Event) -> Rows:
    """A light that acknowledged or reported its colour was heard (a txack is the gateway)."""
    d = e.data
    evidence = text(d.get("evidence"), "data.evidence")
    eui = _eui(d.get("dev_eui"), "data.dev_eui")
    if evidence not in ("ack", "status"):
        return []
    heard = _row(
        DEVICES,
        tenant_id=e.tenant_id,
        dev_eui=eui,
        last_reading=f"display_{evidence}",
        last_seen_at=e.occurred_at,
    )
    return [(DEVICES, heard)]


def _override_set(e: Event) -> Rows:
    d = e.data
    space = _row(
        SPACES,
        tenant_id=e.tenant_id,
        space_id=e.space_id,
        override_state=text(d.get("state"), "data.state"),
        override_reason=text(d.get("reason", ""), "data.reason"),
        override_until=optional_timestamp(d.get("until"), "data.until"),
        override_at=e.occurred_at,
    )
    return [(SPACES, space)]


def _override_cleared(e: Event) -> Rows:
    space = _row(SPACES, tenant_id=e.tenant_id, space_id=e.space_id, override_at=e.occurred_at)
    return [(SPACES, space)]


def _policy_set(e: Event) -> Rows:
    space = _row(
        SPACES,
        tenant_id=e.tenant_id,
        space_id=e.space_id,
        display_policy=_object(e.data.get("policy"), "data.policy"),
        policy_at=e.occurred_at,
    )
    return [(SPACES, space)]


def _orphan_seen(e: Event) -> Rows:
    d = e.data
    orphan = _row(
        ORPHAN_DEVICES,
        dev_eui=_eui(e.dev_eui),
        first_seen_at=e.occurred_at,
        device_profile_name=optional_text(d.get("device_profile_name"), "data.device_profile_name"),
        application_id=optional_text(d.get("application_id"), "data.application_id"),
        device_name=optional_text(d.get("device_name"), "data.device_name"),
        last_event_type=text(d.get("event_type"), "data.event_type"),
        last_seen_at=e.occurred_at,
    )
    return [(ORPHAN_DEVICES, orphan)]


HANDLERS: dict[str, Callable[[Event], Rows]] = {
    "space.registered": _registered,
    "space.updated": _updated,
    "space.archived": _archived,
    "space.restored": _restored,
    "space.device_assigned": _device_assigned,
    "space.device_unassigned": _device_unassigned,
    "space.sensor_reading_accepted": _reading_accepted,
    "space.sensor_reading_ignored": _reading_ignored,
    "space.sensor_went_silent": _went_silent,
    "space.sensor_recovered": _recovered,
    "display.change_confirmed": _display_confirmed,
    "override.set": _override_set,
    "override.cleared": _override_cleared,
    "display.policy_set": _policy_set,
    "device.orphan_seen": _orphan_seen,
}


def project(events: Iterable[Event]) -> Changes:
    """The registry's row changes for ``events`` (in stream order); unusable events are
    listed in ``rejected`` and change nothing."""
    return project_with(HANDLERS, events)
