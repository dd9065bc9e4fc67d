"""The space decider: ``decide(space, input, now) -> events``.

Inputs are space commands and the device events routed to the bay. Before an
input is handled, every deadline due by ``now`` is applied at its own time
(reservation starts, no-shows, override ends, sensor silence, debounce, display
resends), so replays reproduce every time-driven change. After each step the
effective state is recomputed; a change emits ``space.state_changed`` with its
explanation, and a display downlink is requested when the light is expected to
show anything other than the state's colour.

Event ids derive from the input's id and the event's position, so deciding the
same input on the same state yields identical events.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, TypeVar, cast

from parkstream.domain import commands as cmd
from parkstream.domain import device_events as dev
from parkstream.domain import space_events as ev
from parkstream.domain.display import DisplayPolicy
from parkstream.domain.downlinks import DownlinkData, DownlinkRequested
from parkstream.domain.effective import (
    Deadline,
    Verdict,
    any_due,
    deadlines,
    spans,
    state_at,
    verdict,
)
from parkstream.domain.envelope import Envelope, Record, Source
from parkstream.domain.evolve import evolve, resend_after
from parkstream.domain.ids import derive_id, event_id
from parkstream.domain.kuando import KUANDO_FPORT, colour_frame_hex
from parkstream.domain.space import Space, construct
from parkstream.domain.states import SpaceState

MAX_STEPS = 10_000

E = TypeVar("E", bound=Envelope)

_TIMER = Source(kind="timer")

# The input of the look-ahead's probe when only the state it reaches matters: its events
# are never seen, so one tick serves every probe.
_LOOK_AHEAD = cmd.Tick(
    event_id="look-ahead",
    space_id="",
    occurred_at=datetime(2000, 1, 1, tzinfo=UTC),
    recorded_at=datetime(2000, 1, 1, tzinfo=UTC),
    source=_TIMER,
    data=cmd.TickData(due_at=datetime(2000, 1, 1, tzinfo=UTC)),
)

# Deadlines that change a layer of the effective state (all but the display's resends;
# reserved-soon only re-reads the clock).
_LAYER_DEADLINES = frozenset({"override_end", "start", "grace", "end", "silence", "debounce"})

_NEXT_REASON = {
    "override_end": "override_ends",
    "start": "reservation_starts",
    "soon": "reservation_soon",
    "grace": "no_show",
    "end": "reservation_ends",
    "silence": "sensor_silent",
    "debounce": "debounce_settles",
    "resend": "display_resend",
}


@lru_cache(maxsize=1024)
def _light_frame(colour: str, on: int, off: int) -> tuple[int, str]:
    """The (fPort, frame hex) of one display style; a handful per tenant, so memoised."""
    frame = colour_frame_hex(colour, on, off)
    return frame.f_port, frame.hex


# (fPort, frame hex) per state of a policy, by the policy object's id (policies are shared
# by every state of a bay, and the default one by every bay).
_FRAMES: dict[int, tuple[DisplayPolicy, dict[SpaceState, tuple[int, str]]]] = {}


def _frame_for(policy: DisplayPolicy, state: SpaceState) -> tuple[int, str]:
    """``policy.frame_for(state)`` as (fPort, frame hex)."""
    entry = _FRAMES.get(id(policy))
    if entry is None or entry[0] is not policy:
        if len(_FRAMES) >= 4096:
            _FRAMES.clear()
        entry = _FRAMES[id(policy)] = (policy, {})
    frame = entry[1].get(state)
    if frame is None:
        style = policy.style_for(state)
        frame = entry[1][state] = _light_frame(style.colour, style.on, style.off)
    return frame


class DecideError(RuntimeError):
    """The decider could not reach a fixed point (a bug, never an input problem)."""


# The fields an emitted event sets (``__pydantic_fields_set__``), as ``cls(**fields)`` would.
_EMITTED = frozenset(
    (
        "event_id",
        "tenant_id",
        "space_id",
        "occurred_at",
        "recorded_at",
        "source",
        "causation_id",
        "correlation_id",
        "data",
    )
)
_set_attribute = object.__setattr__


def _event(
    cls: type[E],
    event_id: str,
    tenant_id: str | None,
    space_id: str,
    at: datetime,
    recorded_at: datetime,
    source: Source,
    causation_id: str,
    correlation_id: str,
    data: Record,
) -> E:
    """The event ``construct`` would build (every space event has the envelope's fields and
    ``data``, with the same defaults), assembled directly."""
    event = cls.__new__(cls)
    _set_attribute(
        event,
        "__dict__",
        {
            "event_id": event_id,
            "type": cls.TYPE,
            "version": cls.VERSION,
            "tenant_id": tenant_id,
            "space_id": space_id,
            "dev_eui": None,
            "occurred_at": at,
            "recorded_at": recorded_at,
            "source": source,
            "causation_id": causation_id,
            "correlation_id": correlation_id,
            "data": data,
        },
    )
    _set_attribute(event, "__pydantic_fields_set__", set(_EMITTED))
    _set_attribute(event, "__pydantic_extra__", None)
    _set_attribute(event, "__pydantic_private__", None)
    return event


class _Run:
    """One decision in progress: the evolving state and the events emitted so far."""

    def __init__(self, space: Space, inp: Envelope, now: datetime, source: Source) -> None:
        self.space = space
        self.input = inp
        self.now = now
        self.source = source
        self.events: list[Envelope] = []
        self.correlation = inp.correlation_id or inp.event_id

    def event_id(self) -> str:
        return event_id(self.input.event_id, len(self.events))

    def emit(self, cls: type[E], data: Record, at: datetime, tenant_id: str | None = None) -> E:
        """Record an event and apply it. Every value is already valid, so it is not re-checked."""
        space = self.space
        event = _event(
            cls,
            self.event_id(),
            tenant_id if tenant_id is not None else (space.tenant_id or self.input.tenant_id),
            space.space_id,
            at,
            self.now,
            self.source,
            self.input.event_id,
            self.correlation,
            data,
        )
        self.events.append(event)
        self.space = evolve(space, event)
        return event

    def reject(self, reason: str, field: str | None = None) -> None:
        if self.space.tenant_id is None and self.input.tenant_id is None:
            return  # nothing to attach a rejection to (unknown bay, no tenant)
        self.emit(
            ev.CommandRejected,
            ev.CommandRejectedData(command_type=self.input.type, reason=reason, field=field),
            self.now,
        )


class _Probe(_Run):
    """A look-ahead run: only the states it reaches matter, never its events' ids."""

    def event_id(self) -> str:
        return "look-ahead"


# --- public API -------------------------------------------------------------------------


def decide(
    space: Space, inp: Envelope, now: datetime, source: Source | None = None
) -> list[Envelope]:
    """The events that ``inp`` causes on ``space`` at ``now``."""
    return decide_and_evolve(space, inp, now, source)[1]


def decide_and_evolve(
    space: Space, inp: Envelope, now: datetime, source: Source | None = None
) -> tuple[Space, list[Envelope]]:
    """Like :func:`decide`, also returning the state after the events (= folding them)."""
    if inp.event_id in space.recent_inputs:
        return space, []  # a redelivered input: its events were emitted the first time
    if space.clock is not None and now < space.clock:
        now = space.clock  # time never runs backwards for a bay
    if inp.type == _UPLINK and space.registered:
        uplink = cast(dev.UplinkObserved, inp)
        repeated = _repeated_reading(space, uplink, now, source or inp.source)
        if repeated is not None:
            return repeated
    return _decide_and_evolve(space, inp, now, source)


def _decide_and_evolve(
    space: Space, inp: Envelope, now: datetime, source: Source | None = None
) -> tuple[Space, list[Envelope]]:
    """The generic decision, after the redelivery check and with the bay's clock applied."""
    run = _Run(space, inp, now, source or inp.source)
    if space.registered:
        _advance(run, now)
    handler = _HANDLERS.get(inp.type)
    if handler is not None:
        handler(run, inp)
    if run.space.registered:
        _settle(run, now)
    return run.space, run.events


_UPLINK = dev.UplinkObserved.TYPE


def _repeated_reading(
    space: Space, e: dev.UplinkObserved, now: datetime, source: Source
) -> tuple[Space, list[Envelope]] | None:
    """The decision on the commonest input, a sensor's uplink repeating its debounced reading
    with nothing due: one accepted reading, no state change, nothing for the light.

    Exactly what the generic path decides (its only event, built the same way), or ``None``
    when anything else could happen, for the generic path to decide.
    """
    s = space.sensor
    reading = e.data.reading
    if (
        e.dev_eui != s.dev_eui
        or s.silent
        or space.archived
        or reading is None
        or reading.occupied is None
        or reading.occupied != s.occupied
        or (s.last_reading_at is not None and e.occurred_at < s.last_reading_at)
        or any_due(space, now)
    ):
        return None
    data = construct(
        ev.SensorReadingAcceptedData,
        dev_eui=e.dev_eui,
        occupied=reading.occupied,
        f_cnt=e.data.f_cnt,
        observed_at=e.occurred_at,
        settled=False,
        pending_until=None,
    )
    event = _event(
        ev.SensorReadingAccepted,
        event_id(e.event_id, 0),
        space.tenant_id or e.tenant_id,
        space.space_id,
        now,
        now,
        source,
        e.event_id,
        e.correlation_id or e.event_id,
        data,
    )
    after = evolve(space, event)
    state = after.state
    if state_at(after, now) != state:
        return None
    disp = after.display
    if (
        disp.dev_eui is not None
        and state is not None
        and _frame_for(after.policy, state)[1] != disp.expected_hex
    ):
        return None
    return after, [event]


def explain(space: Space, now: datetime) -> ev.Explanation:
    """Why the bay is in its state at ``now``, and the next change it will make by itself."""
    probe = cmd.Tick(
        event_id=derive_id("explain", space.space_id, now.isoformat()),
        space_id=space.space_id,
        occurred_at=now,
        recorded_at=now,
        source=Source(kind="timer"),
        data=cmd.TickData(due_at=now),
    )
    state, _ = decide_and_evolve(space, probe, now)
    v = verdict(state, now)
    since = state.state_since if state.state == v.state else now
    return _explanation(state, v, since, now)


def downlink_for(event: ev.DisplayChangeRequested, space: Space | None = None) -> DownlinkRequested:
    """The ``downlinks`` record that carries a requested display change to the bridge."""
    d = event.data
    timeout = resend_after(space, d.attempt) if space else timedelta(seconds=60)
    return DownlinkRequested(
        event_id=derive_id(event.event_id, "downlink"),
        tenant_id=event.tenant_id,
        space_id=event.space_id,
        dev_eui=d.dev_eui,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        source=event.source,
        causation_id=event.event_id,
        correlation_id=event.correlation_id,
        data=DownlinkData(
            command_id=d.command_id,
            f_port=d.f_port,
            data_b64=base64.b64encode(bytes.fromhex(d.frame_hex)).decode("ascii"),
            confirmed=False,
            expires_at=event.occurred_at + timeout,
        ),
    )


# --- time -------------------------------------------------------------------------------


def _advance(run: _Run, until: datetime, look_ahead: bool = True) -> None:
    """Apply every deadline due by ``until`` at its own time, settling the state after each.

    ``look_ahead=False`` leaves out the explanations' next change (the look-ahead itself
    advances this way).
    """
    floor = run.space.clock
    for _ in range(MAX_STEPS):
        d = _first_due(run.space, until, floor)
        if d is None:
            return
        _DEADLINES[d.kind](run, d)
        _settle(run, d.at, look_ahead)
        floor = d.at if floor is None else max(floor, d.at)
    raise DecideError(f"space {run.space.space_id}: deadlines did not settle")


def _first_due(space: Space, until: datetime, floor: datetime | None) -> Deadline | None:
    """The earliest deadline due by ``until``; a reserved-soon moment only after ``floor``."""
    if not any_due(space, until):
        return None
    for d in deadlines(space):
        if d.at > until:
            return None
        if d.kind != "soon" or floor is None or d.at > floor:
            return d
    return None


def _on_debounce(run: _Run, d: Deadline) -> None:
    s = run.space.sensor
    if s.pending is None or s.pending_since is None or s.dev_eui is None:
        return
    run.emit(
        ev.SensorDebounced,
        construct(
            ev.SensorDebouncedData,
            dev_eui=s.dev_eui,
            occupied=s.pending,
            held_since=s.pending_since,
        ),
        d.at,
    )
    _after_occupancy_change(run, d.at)


def _on_silence(run: _Run, d: Deadline) -> None:
    s = run.space.sensor
    if s.dev_eui is None:
        return
    run.emit(
        ev.SensorWentSilent,
        construct(ev.SensorWentSilentData, dev_eui=s.dev_eui, last_heard_at=s.last_heard_at),
        d.at,
    )


def _on_override_end(run: _Run, d: Deadline) -> None:
    run.emit(ev.OverrideCleared, ev.OverrideClearedData(reason="expired"), d.at)


def _on_start(run: _Run, d: Deadline) -> None:
    r = run.space.reservation(d.key)
    if r is None:
        return
    run.emit(ev.ReservationStarted, ev.ReservationRef(reservation_id=r.reservation_id), d.at)
    s = run.space.sensor
    soon = r.starts_at - timedelta(seconds=run.space.config.reserved_soon_s)
    if s.trusted and s.occupied and s.occupied_since is not None and s.occupied_since >= soon:
        run.emit(
            ev.ReservationFulfilled,
            ev.ReservationFulfilledData(
                reservation_id=r.reservation_id, arrived_at=s.occupied_since
            ),
            d.at,
        )


def _on_grace(run: _Run, d: Deadline) -> None:
    r = run.space.reservation(d.key)
    if r is not None and r.status == "started":
        run.emit(
            ev.ReservationNoShow,
            ev.ReservationNoShowData(reservation_id=r.reservation_id, grace_ended_at=d.at),
            d.at,
        )


def _on_end(run: _Run, d: Deadline) -> None:
    r = run.space.reservation(d.key)
    if r is None:
        return
    if r.status == "fulfilled":
        run.emit(
            ev.ReservationCompleted,
            ev.ReservationCompletedData(reservation_id=r.reservation_id, reason="ended"),
            d.at,
        )
    else:
        run.emit(
            ev.ReservationNoShow,
            ev.ReservationNoShowData(reservation_id=r.reservation_id, grace_ended_at=d.at),
            d.at,
        )


def _on_soon(run: _Run, d: Deadline) -> None:
    """Nothing to record: the effective state is recomputed at this instant."""


def _on_resend(run: _Run, d: Deadline) -> None:
    disp = run.space.display
    if disp.pending_command_id is None or disp.dev_eui is None:
        return
    if disp.awaiting == "txack":
        run.emit(
            ev.DisplayResendScheduled,
            construct(
                ev.DisplayResendScheduledData,
                command_id=disp.pending_command_id,
                dev_eui=disp.dev_eui,
                attempt=disp.attempt + 1,
                due_at=d.at,
                reason="no_txack",
            ),
            d.at,
        )
    _request_display(run, d.at, reason="resend", force=True)


_DEADLINES: dict[str, Callable[[_Run, Deadline], None]] = {
    "debounce": _on_debounce,
    "silence": _on_silence,
    "override_end": _on_override_end,
    "start": _on_start,
    "grace": _on_grace,
    "end": _on_end,
    "soon": _on_soon,
    "resend": _on_resend,
}


# --- state and display ------------------------------------------------------------------


def _explanation(
    space: Space, v: Verdict, since: datetime | None, at: datetime, with_next: bool = True
) -> ev.Explanation:
    return construct(
        ev.Explanation,
        state=v.state,
        layer=v.layer,
        summary=v.summary,
        cause_event_ids=v.causes,
        since=since,
        reservation_id=v.reservation_id,
        next_change=_next_change(space, v.state, at) if with_next else None,
    )


def _next_change(space: Space, current: SpaceState, at: datetime) -> ev.NextChange | None:
    """The first of the (at most 8) coming deadlines after which the state is not ``current``.

    The deadlines' effects are simulated with the decider's own handlers on a probe.
    """
    if (
        not space.reservations
        and space.override is None
        and not space.archived
        and space.sensor.pending is None
    ):
        decided, change = _next_change_of_sensor(space, current, at)
        if decided:
            return change
    upcoming = [d for d in deadlines(space) if d.at > at][:8]
    if not upcoming:
        return None
    if any(r.status == "confirmed" for r in space.reservations):
        return _next_change_replayed(space, current, upcoming)
    return _next_change_of_layers(space, current, upcoming)


def _next_change_of_sensor(
    space: Space, current: SpaceState, at: datetime
) -> tuple[bool, ev.NextChange | None]:
    """The look-ahead's answer for a bay whose only layer is its sensor, with no change held.

    Without reservations, an override or archiving, the state does not move with the clock,
    and the sensor's silence is the only deadline that changes a layer (display resends
    never do): the state turns UNKNOWN when the sensor falls silent, unless it already is.
    Undecided (False) when the silence is not strictly ahead: the general look-ahead decides.
    """
    s = space.sensor
    if s.dev_eui is None or s.silent or s.last_heard_at is None:
        return True, None  # no layer deadline at all
    silent_at = s.last_heard_at + spans(space.config).silence
    if silent_at <= at:
        return False, None
    if current == SpaceState.UNKNOWN:
        return True, None
    change = construct(
        ev.NextChange, at=silent_at, reason="sensor_silent", to_state=SpaceState.UNKNOWN
    )
    return True, change


def _next_change_replayed(
    space: Space, current: SpaceState, upcoming: list[Deadline]
) -> ev.NextChange | None:
    """Replay each coming deadline as a tick, settling and steering the light as a tick would."""
    probe = space
    for d in upcoming:
        tick = _probe_tick(space, d)
        run = _Run(probe, tick, d.at, tick.source)
        _advance(run, d.at, look_ahead=False)
        probe = run.space
        if probe.state != current and probe.state is not None:
            return _change_at(d, probe.state)
    return None


def _next_change_of_layers(
    space: Space, current: SpaceState, upcoming: list[Deadline]
) -> ev.NextChange | None:
    """The replay's answer, simulating only the deadlines that can change the state.

    Without a reservation waiting to start (whose reserved-soon window depends on the
    bay's clock), the effective state at a moment is ``verdict(probe, moment)`` once the
    deadlines due by then are applied: the verdict changes with time only at deadlines.
    Display resends and downlinks never touch a layer, and settling only records the
    verdict, so the probe applies the layers' deadlines alone and reads the verdict --
    no state changes, downlinks or resends are built, and the replay's first settle
    (which reports the state the bay is changing to) is the verdict itself.
    """
    run = _Probe(space, _LOOK_AHEAD, upcoming[0].at, _TIMER)
    for d in upcoming:
        _apply_layer_deadlines(run, d.at)
        state = state_at(run.space, d.at)
        if state != current:
            return _change_at(d, state)
    return None


def _apply_layer_deadlines(run: _Run, until: datetime) -> None:
    """Apply every deadline due by ``until`` except the display's, without settling."""
    for _ in range(MAX_STEPS):
        if not any_due(run.space, until):
            return
        d = next(
            (d for d in deadlines(run.space) if d.at <= until and d.kind in _LAYER_DEADLINES),
            None,
        )
        if d is None:
            return
        _DEADLINES[d.kind](run, d)
    raise DecideError(f"space {run.space.space_id}: deadlines did not settle")


def _probe_tick(space: Space, d: Deadline) -> cmd.Tick:
    """The tick that would be due at ``d`` (the input of a look-ahead probe)."""
    return construct(
        cmd.Tick,
        event_id=derive_id("next", space.space_id, d.at.isoformat(), d.kind, d.key),
        space_id=space.space_id,
        occurred_at=d.at,
        recorded_at=d.at,
        source=_TIMER,
        data=construct(cmd.TickData, due_at=d.at),
    )


def _change_at(d: Deadline, state: SpaceState) -> ev.NextChange:
    return construct(ev.NextChange, at=d.at, reason=_NEXT_REASON[d.kind], to_state=state)


def _settle(run: _Run, at: datetime, look_ahead: bool = True) -> None:
    """Recompute the effective state at ``at``; record a change; steer the light."""
    space = run.space
    if state_at(space, at) != space.state:
        v = verdict(space, at)
        run.emit(
            ev.SpaceStateChanged,
            construct(
                ev.SpaceStateChangedData,
                from_state=space.state,
                to_state=v.state,
                explanation=_explanation(space, v, at, at, with_next=look_ahead),
            ),
            at,
        )
    _request_display(run, at, reason="state_change")


def _request_display(run: _Run, at: datetime, reason: str, force: bool = False) -> None:
    space = run.space
    disp = space.display
    if disp.dev_eui is None or space.state is None:
        return
    f_port, frame_hex = _frame_for(space.policy, space.state)
    if not force and frame_hex == disp.expected_hex:
        return
    same_frame = disp.pending_command_id is not None and disp.pending_hex == frame_hex
    attempt = disp.attempt + 1 if (same_frame and reason == "resend") else 1
    run.emit(
        ev.DisplayChangeRequested,
        construct(
            ev.DisplayChangeRequestedData,
            command_id=derive_id(run.input.event_id, len(run.events), "display"),
            dev_eui=disp.dev_eui,
            f_port=f_port,
            frame_hex=frame_hex,
            for_state=space.state,
            attempt=attempt,
            reason=reason,
        ),
        at,
    )


def _after_occupancy_change(run: _Run, at: datetime) -> None:
    """Check-in and departure of a reservation follow the debounced occupancy."""
    space = run.space
    s = space.sensor
    for r in space.reservations:
        if r.status == "started" and s.occupied and r.starts_at <= at < r.ends_at:
            run.emit(
                ev.ReservationFulfilled,
                ev.ReservationFulfilledData(reservation_id=r.reservation_id, arrived_at=at),
                at,
            )
        elif r.status == "fulfilled" and s.occupied is False:
            run.emit(
                ev.ReservationCompleted,
                ev.ReservationCompletedData(reservation_id=r.reservation_id, reason="departed"),
                at,
            )


# --- commands ---------------------------------------------------------------------------


def _needs_bay(run: _Run, inp: Envelope) -> bool:
    space = run.space
    if not space.registered:
        run.reject("not_registered")
        return False
    if inp.tenant_id is not None and inp.tenant_id != space.tenant_id:
        run.reject("tenant_mismatch", "tenant_id")
        return False
    return True


def _register(run: _Run, c: cmd.RegisterSpace) -> None:
    space = run.space
    d = c.data
    if space.registered:
        same = (space.tenant_id, space.site_id, space.name, space.code, space.config) == (
            c.tenant_id,
            d.site_id,
            d.name,
            d.code,
            d.config,
        )
        if not same:
            run.reject("already_registered")
        return
    run.emit(
        ev.SpaceRegistered,
        ev.SpaceRegisteredData(
            site_id=d.site_id, name=d.name, code=d.code, config=d.config, time_zone=d.time_zone
        ),
        run.now,
        tenant_id=c.tenant_id,
    )


def _update(run: _Run, c: cmd.UpdateSpace) -> None:
    if not _needs_bay(run, c):
        return
    s, d = run.space, c.data
    name, code, config = d.name or s.name or "", d.code or s.code or "", d.config or s.config
    if (name, code, config) != (s.name, s.code, s.config):
        run.emit(ev.SpaceUpdated, ev.SpaceUpdatedData(name=name, code=code, config=config), run.now)


def _archive(run: _Run, c: cmd.ArchiveSpace) -> None:
    if not _needs_bay(run, c) or run.space.archived:
        return
    live = [r.reservation_id for r in run.space.reservations]
    if live and not c.data.force:
        run.reject("live_reservations")
        return
    for rid in live:
        run.emit(
            ev.ReservationCancelled,
            ev.ReservationCancelledData(reservation_id=rid, reason="space_archived"),
            run.now,
        )
    run.emit(
        ev.SpaceArchived,
        ev.SpaceArchivedData(reason=c.data.reason, cancelled_reservation_ids=tuple(live)),
        run.now,
    )


def _restore(run: _Run, c: cmd.RestoreSpace) -> None:
    if _needs_bay(run, c) and run.space.archived:
        run.emit(ev.SpaceRestored, ev.SpaceRestoredData(reason=c.data.reason), run.now)


def _assign(run: _Run, c: cmd.AssignDevice) -> None:
    if not _needs_bay(run, c):
        return
    space, d = run.space, c.data
    if space.archived:
        run.reject("archived")
        return
    current = space.sensor.dev_eui if d.role == "sensor" else space.display.dev_eui
    other = space.display.dev_eui if d.role == "sensor" else space.sensor.dev_eui
    if other == d.dev_eui:
        run.reject("device_has_other_role", "dev_eui")
        return
    if current == d.dev_eui and (d.role == "display" or space.sensor.decoder == d.decoder):
        return
    run.emit(
        ev.DeviceAssigned,
        ev.DeviceAssignedData(
            dev_eui=d.dev_eui, role=d.role, decoder=d.decoder, replaced_dev_eui=current
        ),
        run.now,
    )
    if d.role == "display":
        _request_display(run, run.now, reason="display_assigned")


def _unassign(run: _Run, c: cmd.UnassignDevice) -> None:
    if not _needs_bay(run, c):
        return
    role = c.data.role
    current = run.space.sensor.dev_eui if role == "sensor" else run.space.display.dev_eui
    if current is not None:
        run.emit(ev.DeviceUnassigned, ev.DeviceUnassignedData(dev_eui=current, role=role), run.now)


def _create_reservation(run: _Run, c: cmd.CreateReservation) -> None:
    if not _needs_bay(run, c):
        return
    space, d = run.space, c.data
    if any(req == d.request_id for req, _ in space.recent_requests):
        return  # idempotent: the first request's outcome stands
    conflict: str | None = None
    if space.archived:
        reason = "archived"
    elif space.reservation(d.reservation_id) is not None or any(
        rid == d.reservation_id for _, rid in space.recent_requests
    ):
        reason = "duplicate_id"
    elif d.ends_at <= d.starts_at:
        reason = "ends_before_start"
    elif (d.ends_at - d.starts_at).total_seconds() > space.config.max_reservation_s:
        reason = "too_long"
    elif d.ends_at <= run.now:
        reason = "ends_in_past"
    else:
        clash = next((r for r in space.reservations if r.overlaps(d.starts_at, d.ends_at)), None)
        reason = "overlap" if clash else ""
        conflict = clash.reservation_id if clash else None
    if reason:
        run.emit(
            ev.ReservationRejected,
            ev.ReservationRejectedData(
                reservation_id=d.reservation_id,
                request_id=d.request_id,
                reason=reason,
                conflicting_reservation_id=conflict,
            ),
            run.now,
        )
        return
    grace = d.grace_s if d.grace_s is not None else space.config.default_grace_s
    run.emit(
        ev.ReservationConfirmed,
        ev.ReservationConfirmedData(
            reservation_id=d.reservation_id,
            request_id=d.request_id,
            starts_at=d.starts_at,
            ends_at=d.ends_at,
            grace_s=grace,
            kind=d.kind,
            external_ref=d.external_ref,
        ),
        run.now,
    )
    # A reservation that has already begun starts now, through the deadlines.
    _advance(run, run.now)


def _cancel_reservation(run: _Run, c: cmd.CancelReservation) -> None:
    if not _needs_bay(run, c):
        return
    if run.space.reservation(c.data.reservation_id) is None:
        run.reject("unknown_reservation", "reservation_id")
        return
    run.emit(
        ev.ReservationCancelled,
        ev.ReservationCancelledData(reservation_id=c.data.reservation_id, reason=c.data.reason),
        run.now,
    )


def _set_override(run: _Run, c: cmd.SetOverride) -> None:
    if not _needs_bay(run, c):
        return
    d = c.data
    if d.until is not None and d.until <= run.now:
        run.reject("until_in_past", "until")
        return
    run.emit(
        ev.OverrideSet, ev.OverrideSetData(state=d.state, reason=d.reason, until=d.until), run.now
    )


def _clear_override(run: _Run, c: cmd.ClearOverride) -> None:
    if _needs_bay(run, c) and run.space.override is not None:
        run.emit(ev.OverrideCleared, ev.OverrideClearedData(reason="manual"), run.now)


def _set_policy(run: _Run, c: cmd.SetDisplayPolicy) -> None:
    if _needs_bay(run, c) and c.data.policy != run.space.policy:
        run.emit(ev.DisplayPolicySet, ev.DisplayPolicySetData(policy=c.data.policy), run.now)


def _tick(run: _Run, c: cmd.Tick) -> None:
    """Deadlines were applied before the handler; a tick carries nothing else."""


# --- device events ----------------------------------------------------------------------


def _uplink(run: _Run, e: dev.UplinkObserved) -> None:
    space = run.space
    if not space.registered:
        return
    if e.dev_eui == space.sensor.dev_eui:
        _sensor_uplink(run, e)
    elif e.dev_eui == space.display.dev_eui and e.data.reading and e.data.reading.display:
        _display_status(run, e.dev_eui, e.data.reading.display.frame_hex)


def _sensor_uplink(run: _Run, e: dev.UplinkObserved) -> None:
    s = run.space.sensor
    eui = e.dev_eui
    at = run.now
    if s.silent:
        run.emit(
            ev.SensorRecovered,
            construct(ev.SensorRecoveredData, dev_eui=eui, silent_since=s.silent_since),
            at,
        )
        s = run.space.sensor
    reading = e.data.reading
    ignored: str | None = None
    if run.space.archived:
        ignored = "archived"
    elif reading is None:
        ignored = "decode_error" if e.data.decode_error else "no_reading"
    elif reading.occupied is None:
        ignored = "no_occupancy"
    elif s.last_reading_at is not None and e.occurred_at < s.last_reading_at:
        ignored = "stale"
    if ignored is not None or reading is None or reading.occupied is None:
        run.emit(
            ev.SensorReadingIgnored,
            construct(
                ev.SensorReadingIgnoredData,
                dev_eui=eui,
                reason=ignored or "no_occupancy",
                f_cnt=e.data.f_cnt,
            ),
            at,
        )
        return
    value = reading.occupied
    debounce = run.space.config.debounce_s
    settles = s.occupied is None or (value != s.occupied and (debounce == 0 or s.pending == value))
    held = value != s.occupied and not settles
    pending_until = at + timedelta(seconds=debounce) if held else None
    run.emit(
        ev.SensorReadingAccepted,
        construct(
            ev.SensorReadingAcceptedData,
            dev_eui=eui,
            occupied=value,
            f_cnt=e.data.f_cnt,
            observed_at=e.occurred_at,
            settled=settles,
            pending_until=pending_until,
        ),
        at,
    )
    if settles:
        _after_occupancy_change(run, at)


def _display_status(run: _Run, eui: str, shown_hex: str) -> None:
    disp = run.space.display
    at = run.now
    if disp.pending_command_id is not None:
        if shown_hex == disp.pending_hex:
            run.emit(
                ev.DisplayChangeConfirmed,
                construct(
                    ev.DisplayChangeConfirmedData,
                    command_id=disp.pending_command_id,
                    dev_eui=eui,
                    frame_hex=shown_hex,
                    evidence="status",
                ),
                at,
            )
        return
    state = run.space.state
    if state is None:
        return
    _, desired = _frame_for(run.space.policy, state)
    if shown_hex == desired:
        if disp.confirmed_hex != shown_hex or disp.confirmed_evidence != "status":
            run.emit(
                ev.DisplayChangeConfirmed,
                construct(
                    ev.DisplayChangeConfirmedData,
                    command_id=None,
                    dev_eui=eui,
                    frame_hex=shown_hex,
                    evidence="status",
                ),
                at,
            )
        return
    _request_display(run, at, reason="mismatch", force=True)


def _joined(run: _Run, e: dev.DeviceJoined) -> None:
    if run.space.registered and e.dev_eui == run.space.display.dev_eui:
        _request_display(run, run.now, reason="rejoin", force=True)


def _confirm_pending(run: _Run, eui: str, evidence: Literal["txack", "ack"]) -> None:
    """The pending downlink went out (txack) or was acknowledged by the light (ack)."""
    disp = run.space.display
    assert disp.pending_hex is not None
    run.emit(
        ev.DisplayChangeConfirmed,
        construct(
            ev.DisplayChangeConfirmedData,
            command_id=disp.pending_command_id,
            dev_eui=eui,
            frame_hex=disp.pending_hex,
            evidence=evidence,
        ),
        run.now,
    )


def _txack(run: _Run, e: dev.DownlinkTransmitted) -> None:
    disp = run.space.display
    if e.dev_eui == disp.dev_eui and e.data.queue_item_id == disp.pending_command_id:
        _confirm_pending(run, e.dev_eui, "txack")


def _ack(run: _Run, e: dev.DownlinkAcknowledged) -> None:
    disp = run.space.display
    if e.dev_eui != disp.dev_eui or e.data.queue_item_id != disp.pending_command_id:
        return
    if e.data.acknowledged:
        _confirm_pending(run, e.dev_eui, "ack")
    else:
        _schedule_resend(run, e.dev_eui, "nack")


def _dropped(run: _Run, e: dev.DownlinkDropped) -> None:
    disp = run.space.display
    if e.dev_eui == disp.dev_eui and e.data.queue_item_id == disp.pending_command_id:
        _schedule_resend(run, e.dev_eui, "dropped")


def _schedule_resend(run: _Run, eui: str, reason: str) -> None:
    disp = run.space.display
    assert disp.pending_command_id is not None
    run.emit(
        ev.DisplayResendScheduled,
        construct(
            ev.DisplayResendScheduledData,
            command_id=disp.pending_command_id,
            dev_eui=eui,
            attempt=disp.attempt + 1,
            due_at=run.now + resend_after(run.space, disp.attempt),
            reason=reason,
        ),
        run.now,
    )


_HANDLERS: dict[str, Callable[[_Run, Any], None]] = {
    cmd.RegisterSpace.TYPE: _register,
    cmd.UpdateSpace.TYPE: _update,
    cmd.ArchiveSpace.TYPE: _archive,
    cmd.RestoreSpace.TYPE: _restore,
    cmd.AssignDevice.TYPE: _assign,
    cmd.UnassignDevice.TYPE: _unassign,
    cmd.CreateReservation.TYPE: _create_reservation,
    cmd.CancelReservation.TYPE: _cancel_reservation,
    cmd.SetOverride.TYPE: _set_override,
    cmd.ClearOverride.TYPE: _clear_override,
    cmd.SetDisplayPolicy.TYPE: _set_policy,
    cmd.Tick.TYPE: _tick,
    dev.UplinkObserved.TYPE: _uplink,
    dev.DeviceJoined.TYPE: _joined,
    dev.DownlinkTransmitted.TYPE: _txack,
    dev.DownlinkAcknowledged.TYPE: _ack,
    dev.DownlinkDropped.TYPE: _dropped,
}

__all__ = ["KUANDO_FPORT", "DecideError", "decide", "decide_and_evolve", "downlink_for", "explain"]
