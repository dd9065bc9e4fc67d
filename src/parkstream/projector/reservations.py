"""The reservations projection: one row per reservation, one per rejected request.

Pure: :func:`project` turns events into row changes. Every reservation event sets its
own columns once (the first value stays) and the table derives the status from which
of them are set, so neither the order nor repetition of events changes the row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from parkstream.projector.records import Event, integer, optional_text, text, timestamp
from parkstream.projector.tables import Changes, Column, Rows, Spec, project_with

_FIRST = (
    "request_id",
    "starts_at",
    "ends_at",
    "grace_s",
    "kind",
    "external_ref",
    "confirmed_at",
    "started_at",
    "fulfilled_at",
    "arrived_at",
    "no_show_at",
    "grace_ended_at",
    "completed_at",
    "completion_reason",
    "cancelled_at",
    "cancel_reason",
)

RESERVATIONS = Spec(
    "reservations",
    ("tenant_id", "space_id", "reservation_id"),
    tuple(Column(name, "first") for name in _FIRST),
)

REJECTIONS = Spec(
    "reservation_rejections",
    ("tenant_id", "event_id"),
    (
        Column("space_id"),
        Column("reservation_id"),
        Column("request_id"),
        Column("reason"),
        Column("conflicting_reservation_id"),
        Column("rejected_at"),
    ),
    mode="insert",
)

SPECS: tuple[Spec, ...] = (RESERVATIONS, REJECTIONS)


def _reservation(e: Event, **values: Any) -> Rows:
    row: list[Any] = [None] * len(RESERVATIONS.names)
    row[0], row[1] = e.tenant_id, e.space_id
    row[2] = text(e.data.get("reservation_id"), "data.reservation_id")
    for name, value in values.items():
        row[RESERVATIONS.position(name)] = value
    return [(RESERVATIONS, row)]


def _confirmed(e: Event) -> Rows:
    d = e.data
    return _reservation(
        e,
        request_id=text(d.get("request_id"), "data.request_id"),
        starts_at=timestamp(d.get("starts_at"), "data.starts_at"),
        ends_at=timestamp(d.get("ends_at"), "data.ends_at"),
        grace_s=integer(d.get("grace_s"), "data.grace_s"),
        kind=text(d.get("kind", "standard"), "data.kind"),
        external_ref=optional_text(d.get("external_ref"), "data.external_ref"),
        confirmed_at=e.occurred_at,
    )


def _started(e: Event) -> Rows:
    return _reservation(e, started_at=e.occurred_at)


def _fulfilled(e: Event) -> Rows:
    arrived = timestamp(e.data.get("arrived_at"), "data.arrived_at")
    return _reservation(e, fulfilled_at=e.occurred_at, arrived_at=arrived)


def _no_show(e: Event) -> Rows:
    grace_ended = timestamp(e.data.get("grace_ended_at"), "data.grace_ended_at")
    return _reservation(e, no_show_at=e.occurred_at, grace_ended_at=grace_ended)


def _completed(e: Event) -> Rows:
    reason = text(e.data.get("reason"), "data.reason")
    return _reservation(e, completed_at=e.occurred_at, completion_reason=reason)


def _cancelled(e: Event) -> Rows:
    reason = text(e.data.get("reason", ""), "data.reason")
    return _reservation(e, cancelled_at=e.occurred_at, cancel_reason=reason)


def _rejected(e: Event) -> Rows:
    d = e.data
    row = [
        e.tenant_id,
        e.event_id,
        e.space_id,
        text(d.get("reservation_id"), "data.reservation_id"),
        text(d.get("request_id"), "data.request_id"),
        text(d.get("reason"), "data.reason"),
        optional_text(d.get("conflicting_reservation_id"), "data.conflicting_reservation_id"),
        e.occurred_at,
    ]
    return [(REJECTIONS, row)]


HANDLERS: dict[str, Callable[[Event], Rows]] = {
    "reservation.confirmed": _confirmed,
    "reservation.started": _started,
    "reservation.fulfilled": _fulfilled,
    "reservation.no_show": _no_show,
    "reservation.completed": _completed,
    "reservation.cancelled": _cancelled,
    "reservation.rejected": _rejected,
}


def project(events: Iterable[Event]) -> Changes:
    """The reservations' row changes for ``events`` (in stream order)."""
    return project_with(HANDLERS, events)
