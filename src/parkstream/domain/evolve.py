"""``evolve(space, event) -> space``: one small mutator per space event type.

Folding a bay's events from :func:`initial_state` rebuilds its state exactly.

A mutator returns the fields of the bay that its event changes; :func:`evolve` adds
the clock and the recent inputs and makes one copy of the state with all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from parkstream.domain import space_events as ev
from parkstream.domain.envelope import Envelope
from parkstream.domain.space import (
    RECENT_INPUTS,
    RECENT_REQUESTS,
    Display,
    Override,
    Reservation,
    Sensor,
    Space,
    initial_state,
    replace,
)

Changes = dict[str, Any]  # fields of Space -> their new values


def _without(space: Space, reservation_id: str) -> tuple[Reservation, ...]:
    return tuple(r for r in space.reservations if r.reservation_id != reservation_id)


def _replace_reservation(space: Space, reservation_id: str, **changes: Any) -> Changes:
    return {
        "reservations": tuple(
            replace(r, changes) if r.reservation_id == reservation_id else r
            for r in space.reservations
        )
    }


def _registered(s: Space, e: ev.SpaceRegistered) -> Changes:
    d = e.data
    return {
        "registered": True,
        "tenant_id": e.tenant_id,
        "site_id": d.site_id,
        "name": d.name,
        "code": d.code,
        "config": d.config,
    }


def _updated(s: Space, e: ev.SpaceUpdated) -> Changes:
    d = e.data
    return {"name": d.name, "code": d.code, "config": d.config}


def _archived(s: Space, e: ev.SpaceArchived) -> Changes:
    return {"archived": True, "archived_cause": e.event_id}


def _restored(s: Space, e: ev.SpaceRestored) -> Changes:
    return {"archived": False, "archived_cause": None}


def _assigned(s: Space, e: ev.DeviceAssigned) -> Changes:
    d = e.data
    if d.role == "sensor":
        return {"sensor": Sensor(dev_eui=d.dev_eui, decoder=d.decoder)}
    return {"display": Display(dev_eui=d.dev_eui)}


def _unassigned(s: Space, e: ev.DeviceUnassigned) -> Changes:
    if e.data.role == "sensor":
        return {"sensor": Sensor()}
    return {"display": Display()}


def _heard(sensor: Sensor, at: datetime) -> dict[str, Any]:
    return {"last_heard_at": at if sensor.last_heard_at is None else max(at, sensor.last_heard_at)}


def _reading_accepted(s: Space, e: ev.SensorReadingAccepted) -> Changes:
    d = e.data
    sensor = s.sensor
    update = _heard(sensor, e.occurred_at)
    update["last_reading_at"] = d.observed_at or e.occurred_at
    update["last_f_cnt"] = d.f_cnt
    cause = (e.causation_id,) if e.causation_id else (e.event_id,)
    if d.settled:
        if sensor.occupied != d.occupied or sensor.occupied is None:
            update["occupied_since"] = e.occurred_at
            update["occupied_cause"] = sensor.pending_cause + cause
        update.update(occupied=d.occupied, pending=None, pending_since=None, pending_cause=())
    elif d.pending_until is not None:
        update.update(pending=d.occupied, pending_since=e.occurred_at, pending_cause=cause)
    else:  # agrees with the debounced value: any held change is contradicted
        update.update(pending=None, pending_since=None, pending_cause=())
    return {"sensor": replace(sensor, update)}


def _reading_ignored(s: Space, e: ev.SensorReadingIgnored) -> Changes:
    if e.data.dev_eui != s.sensor.dev_eui:
        return {}
    return {"sensor": replace(s.sensor, _heard(s.sensor, e.occurred_at))}


def _debounced(s: Space, e: ev.SensorDebounced) -> Changes:
    sensor = s.sensor
    return {
        "sensor": replace(
            sensor,
            {
                "occupied": e.data.occupied,
                "occupied_since": e.occurred_at,
                "occupied_cause": (*sensor.pending_cause, e.event_id),
                "pending": None,
                "pending_since": None,
                "pending_cause": (),
            },
        )
    }


def _went_silent(s: Space, e: ev.SensorWentSilent) -> Changes:
    return {
        "sensor": replace(
            s.sensor,
            {
                "silent": True,
                "silent_since": e.occurred_at,
                "silent_cause": e.event_id,
                "pending": None,
                "pending_since": None,
                "pending_cause": (),
            },
        )
    }


def _recovered(s: Space, e: ev.SensorRecovered) -> Changes:
    sensor = replace(
        s.sensor,
        {
            "silent": False,
            "silent_since": None,
            "silent_cause": None,
            # A silent sensor's old reading is not trusted again until a new one arrives.
            "occupied": None,
            "occupied_since": None,
            "occupied_cause": (),
            **_heard(s.sensor, e.occurred_at),
        },
    )
    return {"sensor": sensor}


def _state_changed(s: Space, e: ev.SpaceStateChanged) -> Changes:
    return {"state": e.data.to_state, "state_since": e.occurred_at}


def _confirmed(s: Space, e: ev.ReservationConfirmed) -> Changes:
    d = e.data
    r = Reservation(
        reservation_id=d.reservation_id,
        request_id=d.request_id,
        starts_at=d.starts_at,
        ends_at=d.ends_at,
        grace_s=d.grace_s,
        kind=d.kind,
        external_ref=d.external_ref,
        cause=(e.event_id,),
    )
    return {
        "reservations": (*s.reservations, r),
        "recent_requests": _remember_request(s, d.request_id, d.reservation_id),
    }


def _remember_request(
    s: Space, request_id: str, reservation_id: str
) -> tuple[tuple[str, str], ...]:
    return ((*s.recent_requests, (request_id, reservation_id)))[-RECENT_REQUESTS:]


def _rejected(s: Space, e: ev.ReservationRejected) -> Changes:
    d = e.data
    return {"recent_requests": _remember_request(s, d.request_id, d.reservation_id)}


def _started(s: Space, e: ev.ReservationStarted) -> Changes:
    r = s.reservation(e.data.reservation_id)
    cause = (r.cause if r else ()) + (e.event_id,)
    return _replace_reservation(s, e.data.reservation_id, status="started", cause=cause)


def _fulfilled(s: Space, e: ev.ReservationFulfilled) -> Changes:
    r = s.reservation(e.data.reservation_id)
    cause = (r.cause if r else ()) + (e.event_id,)
    return _replace_reservation(
        s, e.data.reservation_id, status="fulfilled", arrived_at=e.data.arrived_at, cause=cause
    )


def _finished(
    s: Space,
    e: ev.ReservationNoShow | ev.ReservationCompleted | ev.ReservationCancelled,
) -> Changes:
    return {"reservations": _without(s, e.data.reservation_id)}


def _override_set(s: Space, e: ev.OverrideSet) -> Changes:
    d = e.data
    o = Override(
        state=d.state, reason=d.reason, until=d.until, since=e.occurred_at, cause=e.event_id
    )
    return {"override": o}


def _override_cleared(s: Space, e: ev.OverrideCleared) -> Changes:
    return {"override": None}


def _policy_set(s: Space, e: ev.DisplayPolicySet) -> Changes:
    return {"policy": e.data.policy}


def resend_after(space: Space, attempt: int) -> timedelta:
    """Bounded exponential backoff: display_resend_s x 2^(attempt-1), capped."""
    cfg = space.config
    return timedelta(
        seconds=min(cfg.display_resend_s * 2 ** min(attempt - 1, 20), cfg.display_resend_max_s)
    )


def _change_requested(s: Space, e: ev.DisplayChangeRequested) -> Changes:
    d = e.data
    update: dict[str, Any] = {
        "pending_command_id": d.command_id,
        "pending_hex": d.frame_hex,
        "pending_for": d.for_state,
        "attempt": d.attempt,
        "awaiting": "txack",
        "resend_due_at": e.occurred_at + resend_after(s, d.attempt),
    }
    if d.reason == "rejoin":
        update.update(confirmed_hex=None, confirmed_evidence=None)
    return {"display": replace(s.display, update)}


def _change_confirmed(s: Space, e: ev.DisplayChangeConfirmed) -> Changes:
    d = e.data
    update: dict[str, Any] = {"confirmed_hex": d.frame_hex, "confirmed_evidence": d.evidence}
    if d.command_id is not None and d.command_id == s.display.pending_command_id:
        update.update(
            pending_command_id=None,
            pending_hex=None,
            pending_for=None,
            awaiting=None,
            resend_due_at=None,
        )
    return {"display": replace(s.display, update)}


def _resend_scheduled(s: Space, e: ev.DisplayResendScheduled) -> Changes:
    update = {"awaiting": "resend", "resend_due_at": e.data.due_at}
    return {"display": replace(s.display, update)}


def _unchanged(s: Space, e: Envelope) -> Changes:
    return {}


_MUTATORS: dict[str, Callable[[Space, Any], Changes]] = {
    ev.SpaceRegistered.TYPE: _registered,
    ev.SpaceUpdated.TYPE: _updated,
    ev.SpaceArchived.TYPE: _archived,
    ev.SpaceRestored.TYPE: _restored,
    ev.DeviceAssigned.TYPE: _assigned,
    ev.DeviceUnassigned.TYPE: _unassigned,
    ev.CommandRejected.TYPE: _unchanged,
    ev.SensorReadingAccepted.TYPE: _reading_accepted,
    ev.SensorReadingIgnored.TYPE: _reading_ignored,
    ev.SensorDebounced.TYPE: _debounced,
    ev.SensorWentSilent.TYPE: _went_silent,
    ev.SensorRecovered.TYPE: _recovered,
    ev.SpaceStateChanged.TYPE: _state_changed,
    ev.ReservationConfirmed.TYPE: _confirmed,
    ev.ReservationRejected.TYPE: _rejected,
    ev.ReservationStarted.TYPE: _started,
    ev.ReservationFulfilled.TYPE: _fulfilled,
    ev.ReservationNoShow.TYPE: _finished,
    ev.ReservationCompleted.TYPE: _finished,
    ev.ReservationCancelled.TYPE: _finished,
    ev.OverrideSet.TYPE: _override_set,
    ev.OverrideCleared.TYPE: _override_cleared,
    ev.DisplayPolicySet.TYPE: _policy_set,
    ev.DisplayChangeRequested.TYPE: _change_requested,
    ev.DisplayChangeConfirmed.TYPE: _change_confirmed,
    ev.DisplayResendScheduled.TYPE: _resend_scheduled,
    ev.OrphanDeviceSeen.TYPE: _unchanged,
}


def evolve(space: Space, event: Envelope) -> Space:
    """Apply one space event. Unknown types leave the state unchanged (forward compatible)."""
    mutate = _MUTATORS.get(event.type, _unchanged)
    changes = mutate(space, event)
    clock = event.occurred_at if space.clock is None else max(space.clock, event.occurred_at)
    cause = event.causation_id
    recent = space.recent_inputs
    if cause is not None and (not recent or recent[-1] != cause):
        recent = (*recent, cause)[-RECENT_INPUTS:]
    changes["clock"] = clock
    changes["recent_inputs"] = recent
    return replace(space, changes)


def fold(events: Iterable[Envelope], space: Space | None = None, space_id: str = "") -> Space:
    """Fold events into a bay's state, from ``space`` or from the initial state."""
    state = space if space is not None else initial_state(space_id)
    for event in events:
        if not state.space_id and event.space_id:
            state = state.model_copy(update={"space_id": event.space_id})
        state = evolve(state, event)
    return state
