"""The effective state of a bay at a time, and the deadlines at which it changes by itself.

Layers, highest first: archived > override > reservation > sensor > unknown.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from parkstream.domain.commands import SpaceConfig
from parkstream.domain.space import Reservation, Space
from parkstream.domain.space_events import Explanation
from parkstream.domain.states import Layer, SpaceState


class Verdict(NamedTuple):
    state: SpaceState
    layer: Layer
    summary: str
    causes: tuple[str, ...]
    reservation_id: str | None = None


def override_active(space: Space, at: datetime) -> bool:
    o = space.override
    return o is not None and (o.until is None or at < o.until)


class Spans(NamedTuple):
    """A bay configuration's durations as timedeltas."""

    config: SpaceConfig
    debounce: timedelta
    silence: timedelta
    reserved_soon: timedelta


_SPANS: dict[int, Spans] = {}


def spans(config: SpaceConfig) -> Spans:
    """The durations of ``config``, computed once per configuration object (a bay's states
    share theirs until the bay is updated)."""
    s = _SPANS.get(id(config))
    if s is None or s.config is not config:
        if len(_SPANS) >= 4096:
            _SPANS.clear()
        s = _SPANS[id(config)] = Spans(
            config,
            timedelta(seconds=config.debounce_s),
            timedelta(seconds=config.heartbeat_s * config.silence_factor),
            timedelta(seconds=config.reserved_soon_s),
        )
    return s


def _soon_starts_at(space: Space, r: Reservation) -> datetime:
    return r.starts_at - spans(space.config).reserved_soon


def reservation_in_force(space: Space, at: datetime) -> Reservation | None:
    """The reservation that governs the bay now: started, or confirmed within reserved-soon."""
    soon: Reservation | None = None
    for r in space.reservations:
        if r.status in ("started", "fulfilled") and at < r.ends_at:
            return r
        if r.status == "confirmed" and _soon_starts_at(space, r) <= at < r.ends_at:
            soon = r if soon is None or r.starts_at < soon.starts_at else soon
    return soon


def state_at(space: Space, at: datetime) -> SpaceState:
    """``verdict(space, at).state``, without building the verdict's summary and causes."""
    if space.archived:
        return SpaceState.ARCHIVED
    o = space.override
    if o is not None and (o.until is None or at < o.until):
        return o.state
    sensor = space.sensor
    trusted = sensor.dev_eui is not None and sensor.occupied is not None and not sensor.silent
    if space.reservations:
        r = reservation_in_force(space, at)
        if r is not None:
            occupied_now = trusted and sensor.occupied is True
            if r.status == "fulfilled":
                return SpaceState.OCCUPIED
            if r.status == "started":
                return SpaceState.OCCUPIED if occupied_now else SpaceState.RESERVED
            if not occupied_now:
                return SpaceState.RESERVED_SOON
    if trusted:
        return SpaceState.OCCUPIED if sensor.occupied else SpaceState.FREE
    return SpaceState.UNKNOWN


def verdict(space: Space, at: datetime) -> Verdict:
    """Which layer wins at ``at`` and what it says."""
    if space.archived:
        archived = (space.archived_cause,) if space.archived_cause else ()
        return Verdict(SpaceState.ARCHIVED, Layer.ARCHIVED, "The bay is archived.", archived)
    o = space.override
    if o is not None and override_active(space, at):
        until = f" until {o.until.isoformat()}" if o.until else ""
        why = f": {o.reason}" if o.reason else ""
        return Verdict(
            o.state, Layer.OVERRIDE, f"Operator override to {o.state}{until}{why}.", (o.cause,)
        )
    sensor = space.sensor
    r = reservation_in_force(space, at)
    if r is not None:
        occupied_now = sensor.trusted and sensor.occupied is True
        if r.status == "fulfilled":
            return Verdict(
                SpaceState.OCCUPIED,
                Layer.RESERVATION,
                f"Reservation {r.reservation_id} checked in: its car arrived.",
                r.cause + sensor.occupied_cause,
                r.reservation_id,
            )
        if r.status == "started":
            if occupied_now:
                return Verdict(
                    SpaceState.OCCUPIED,
                    Layer.RESERVATION,
                    f"Reservation {r.reservation_id} has started but the bay is still "
                    "occupied by an earlier vehicle.",
                    r.cause + sensor.occupied_cause,
                    r.reservation_id,
                )
            return Verdict(
                SpaceState.RESERVED,
                Layer.RESERVATION,
                f"Reservation {r.reservation_id} is in force and the bay is empty.",
                r.cause,
                r.reservation_id,
            )
        if not occupied_now:
            return Verdict(
                SpaceState.RESERVED_SOON,
                Layer.RESERVATION,
                f"Reservation {r.reservation_id} starts at {r.starts_at.isoformat()}.",
                r.cause,
                r.reservation_id,
            )
    if sensor.trusted:
        state = SpaceState.OCCUPIED if sensor.occupied else SpaceState.FREE
        return Verdict(
            state,
            Layer.SENSOR,
            f"The sensor reports the bay {state.lower()}.",
            sensor.occupied_cause,
        )
    if sensor.dev_eui is None:
        summary = "No sensor is assigned to the bay."
        causes: tuple[str, ...] = ()
    elif sensor.silent:
        summary = "The sensor has gone silent; its last reading is no longer trusted."
        causes = (sensor.silent_cause,) if sensor.silent_cause else ()
    else:
        summary = "The sensor has not reported occupancy yet."
        causes = ()
    return Verdict(SpaceState.UNKNOWN, Layer.UNKNOWN, summary, causes)


DeadlineKind = Literal[
    "debounce", "silence", "override_end", "start", "grace", "end", "resend", "soon"
]

# Deadlines falling at the same instant are handled in this order.
_KIND_ORDER: dict[str, int] = {
    "override_end": 0,
    "end": 1,
    "grace": 2,
    "start": 3,
    "soon": 4,
    "debounce": 5,
    "silence": 6,
    "resend": 7,
}


class Deadline(NamedTuple):
    at: datetime
    kind: DeadlineKind
    key: str = ""

    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.at, _KIND_ORDER[self.kind], self.key)


def deadlines(space: Space) -> list[Deadline]:
    """Every future moment at which the bay may change without new input, sorted."""
    out: list[Deadline] = []
    s = space.sensor
    if s.pending is not None and s.pending_since is not None and not space.archived:
        out.append(Deadline(s.pending_since + spans(space.config).debounce, "debounce"))
    if s.dev_eui is not None and not s.silent and s.last_heard_at is not None:
        out.append(Deadline(s.last_heard_at + spans(space.config).silence, "silence"))
    if space.override is not None and space.override.until is not None:
        out.append(Deadline(space.override.until, "override_end"))
    for r in space.reservations:
        if r.status == "confirmed":
            out.append(Deadline(_soon_starts_at(space, r), "soon", r.reservation_id))
            out.append(Deadline(r.starts_at, "start", r.reservation_id))
        if r.status == "started" and r.grace_ends_at < r.ends_at:
            out.append(Deadline(r.grace_ends_at, "grace", r.reservation_id))
        if r.status in ("started", "fulfilled"):
            out.append(Deadline(r.ends_at, "end", r.reservation_id))
    d = space.display
    if d.pending_command_id is not None and d.resend_due_at is not None:
        out.append(Deadline(d.resend_due_at, "resend", d.pending_command_id))
    if len(out) > 1:
        out.sort(key=Deadline.sort_key)
    return out


def any_due(space: Space, until: datetime) -> bool:
    """Whether ``deadlines(space)`` holds one at or before ``until`` (without building them)."""
    s = space.sensor
    heard = s.last_heard_at
    if (
        heard is not None
        and s.dev_eui is not None
        and not s.silent
        and heard + spans(space.config).silence <= until
    ):
        return True
    pending = s.pending_since
    if (
        pending is not None
        and s.pending is not None
        and not space.archived
        and pending + spans(space.config).debounce <= until
    ):
        return True
    o = space.override
    if o is not None and o.until is not None and o.until <= until:
        return True
    d = space.display
    if (
        d.pending_command_id is not None
        and d.resend_due_at is not None
        and d.resend_due_at <= until
    ):
        return True
    return bool(space.reservations) and any(d.at <= until for d in deadlines(space))


def next_deadline(space: Space) -> datetime | None:
    """When the bay next needs a tick (the timers schedule one for this time)."""
    every = deadlines(space)
    clock = space.clock
    candidates = [d.at for d in every if clock is None or d.at > clock or d.kind != "soon"]
    return min(candidates) if candidates else None


def explanation_of(space: Space, v: Verdict, since: datetime | None) -> Explanation:
    return Explanation(
        state=v.state,
        layer=v.layer,
        summary=v.summary,
        cause_event_ids=v.causes,
        since=since,
        reservation_id=v.reservation_id,
    )
