"""The activity projection: actuations, the current state of each bay, utilisation rollups.

Pure, in two steps around one database round trip:

1. :func:`plan` turns the batch into actuation rows (keyed by event_id) and the steps
   each bay goes through (registration, state changes, display requests/confirmations).
2. The store inserts the actuations; only the ones actually inserted are new. With the
   bays' stored states (:class:`BayState`, locked), :func:`advance` applies the new steps
   in stream order: each new state change closes the open interval ``[since, at)`` and
   adds it to the rollups (:class:`~parkstream.projector.utilization.Tally`).

An event seen before (a redelivery, a repeated batch) inserts no actuation, so it moves
neither the state nor the rollups: applying events twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from parkstream.projector.records import (
    BadRecord,
    Event,
    integer,
    optional_text,
    optional_timestamp,
    text,
)
from parkstream.projector.tables import Changes, Column, Spec
from parkstream.projector.utilization import BUCKETS, COUNTS, Tally, zone

ACTUATION_COLUMNS: tuple[str, ...] = (
    "type",
    "recorded_at",
    "from_state",
    "to_state",
    "layer",
    "summary",
    "explanation",
    "dev_eui",
    "command_id",
    "f_port",
    "frame_hex",
    "for_state",
    "attempt",
    "reason",
    "evidence",
    "due_at",
    "confirmed_at",
    "confirmed_evidence",
    "causation_id",
    "correlation_id",
    "src_partition",
    "src_offset",
)

ACTUATIONS = Spec(
    "actuations",
    ("tenant_id", "space_id", "occurred_at", "event_id"),
    tuple(Column(name) for name in ACTUATION_COLUMNS),
    mode="insert",
    returning=("event_id",),
)

# The seconds go as integer microseconds (exact), scaled to numeric seconds in SQL.
HOURLY = Spec(
    "utilization_hourly",
    ("tenant_id", "space_id", "hour"),
    tuple(Column(name, "add", scale=6) for name in BUCKETS)
    + tuple(Column(name, "add") for name in COUNTS),
)

DAILY = Spec(
    "utilization_daily",
    ("tenant_id", "site_id", "day"),
    tuple(Column(name, "add", scale=6) for name in BUCKETS)
    + tuple(Column(name, "add") for name in COUNTS),
)

# Evidence of a confirmation, strongest first: the earliest confirmation of a downlink
# is kept on its request, ties going to the stronger evidence.
EVIDENCE_RANK: dict[str, int] = {"status": 0, "ack": 1, "txack": 2}


@dataclass
class BayState:
    """A row of ``space_states``: the bay's current state (its open interval) and display."""

    tenant_id: str
    space_id: str
    site_id: str | None = None
    time_zone: str = "UTC"
    state: str | None = None
    since: datetime | None = None
    event_id: str | None = None
    layer: str | None = None
    summary: str | None = None
    explanation: dict[str, Any] | None = None
    reservation_id: str | None = None
    next_change_at: datetime | None = None
    next_change_reason: str | None = None
    next_state: str | None = None
    display_dev_eui: str | None = None
    desired_frame: str | None = None
    desired_for_state: str | None = None
    desired_command_id: str | None = None
    desired_attempt: int | None = None
    desired_at: datetime | None = None
    confirmed_frame: str | None = None
    confirmed_command_id: str | None = None
    confirmed_evidence: str | None = None
    confirmed_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> BayState:
        return cls(**{f.name: row[f.name] for f in fields(cls)})

    def as_row(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in BAY_STATE_COLUMNS)


BAY_STATE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(BayState))

SPACE_STATES = Spec(
    "space_states",
    ("tenant_id", "space_id"),
    tuple(
        Column(name, default="'UTC'" if name == "time_zone" else None)
        for name in BAY_STATE_COLUMNS[2:]
    ),
)

SPECS: tuple[Spec, ...] = (ACTUATIONS, SPACE_STATES, HOURLY, DAILY)


# --- step 1: plan ---------------------------------------------------------------------------


@dataclass(slots=True)
class Registered:
    site_id: str
    time_zone: str


@dataclass(slots=True)
class StateChanged:
    at: datetime
    from_state: str | None
    to_state: str
    layer: str | None
    summary: str | None
    explanation: dict[str, Any]
    reservation_id: str | None
    next_change_at: datetime | None
    next_change_reason: str | None
    next_state: str | None


@dataclass(slots=True)
class DisplayRequested:
    at: datetime
    dev_eui: str
    frame_hex: str
    for_state: str
    command_id: str
    attempt: int | None


@dataclass(slots=True)
class DisplayConfirmed:
    at: datetime
    dev_eui: str
    frame_hex: str
    command_id: str | None
    evidence: str


Step = Registered | StateChanged | DisplayRequested | DisplayConfirmed


@dataclass(frozen=True, slots=True)
class BayStep:
    tenant_id: str
    space_id: str
    event_id: str | None  # None: not an actuation (applies whether new or not)
    step: Step


@dataclass
class Plan:
    """What a batch brings to the activity projection before the database is asked."""

    actuations: Changes = field(default_factory=Changes)
    steps: list[BayStep] = field(default_factory=list)
    # (tenant, command_id) -> (confirmed_at, rank, evidence): the earliest confirmation
    confirmations: dict[tuple[str, str], tuple[datetime, int, str]] = field(default_factory=dict)
    # (tenant, command_id) -> (event_id, row) of the downlink requests in this batch: their
    # confirmations in the same batch are written with the row, no UPDATE needed
    requests: dict[tuple[str, str], tuple[str, list[Any]]] = field(default_factory=dict)

    @property
    def rejected(self) -> dict[tuple[int, int], BadRecord]:
        return self.actuations.rejected

    def bays(self) -> set[tuple[str, str]]:
        return {(s.tenant_id, s.space_id) for s in self.steps}

    def confirmation_rows(self, inserted: set[str]) -> list[tuple[str, str, datetime, str]]:
        """Confirmations still to write onto their request rows: all but those whose
        request was inserted by this batch with the confirmation already in it."""
        rows = []
        for (tenant, command), (at, _, evidence) in self.confirmations.items():
            request = self.requests.get((tenant, command))
            if request is None or request[0] not in inserted:
                rows.append((tenant, command, at, evidence))
        return rows


_AT = ACTUATIONS.index
_WIDTH = len(_AT)
_CONFIRMED_AT, _CONFIRMED_EVIDENCE = _AT["confirmed_at"], _AT["confirmed_evidence"]
_TAIL = (
    _AT["recorded_at"],
    _AT["causation_id"],
    _AT["correlation_id"],
    _AT["src_partition"],
    _AT["src_offset"],
)


def _actuation(e: Event, **values: Any) -> list[Any]:
    row: list[Any] = [None] * _WIDTH
    row[0], row[1], row[2], row[3] = e.tenant_id, e.space_id, e.occurred_at, e.event_id
    for name, value in values.items():
        row[_AT[name]] = value
    recorded, causation, correlation, partition, offset = _TAIL
    row[recorded] = e.recorded_at
    row[causation] = e.causation_id
    row[correlation] = e.correlation_id
    row[partition] = e.partition
    row[offset] = e.offset
    return row


# The hot rows are written out in column order (checked against the spec at import).
# _actuation fills the key columns by position; the rest go by name through _AT.
if ACTUATIONS.names[:4] != ("tenant_id", "space_id", "occurred_at", "event_id"):
    raise RuntimeError("activity: the actuations key columns are not the first four")


def _state_changed(e: Event) -> tuple[list[Any], Step]:
    d = e.data
    explanation = d.get("explanation")
    if not isinstance(explanation, dict):
        raise BadRecord("invalid_record", "data.explanation must be an object")
    next_change = explanation.get("next_change")
    if next_change is not None and not isinstance(next_change, dict):
        raise BadRecord("invalid_record", "data.explanation.next_change must be an object")
    step = StateChanged(
        at=e.occurred_at,
        from_state=optional_text(d.get("from_state"), "data.from_state"),
        to_state=text(d.get("to_state"), "data.to_state"),
        layer=optional_text(explanation.get("layer"), "data.explanation.layer"),
        summary=optional_text(explanation.get("summary"), "data.explanation.summary"),
        explanation=explanation,
        reservation_id=optional_text(explanation.get("reservation_id"), "reservation_id"),
        next_change_at=optional_timestamp(
            next_change.get("at") if next_change else None, "next_change.at"
        ),
        next_change_reason=optional_text(
            next_change.get("reason") if next_change else None, "next_change.reason"
        ),
        next_state=optional_text(
            next_change.get("to_state") if next_change else None, "next_change.to_state"
        ),
    )
    row = [
        e.tenant_id, e.space_id, e.occurred_at, e.event_id, e.type, e.recorded_at,
        step.from_state, step.to_state, step.layer, step.summary, explanation,
        None, None, None, None, None, None, None, None, None, None, None,
        e.causation_id, e.correlation_id, e.partition, e.offset,
    ]  # fmt: skip
    return row, step


def _display_requested(e: Event) -> tuple[list[Any], Step]:
    d = e.data
    step = DisplayRequested(
        at=e.occurred_at,
        dev_eui=text(d.get("dev_eui"), "data.dev_eui"),
        frame_hex=text(d.get("frame_hex"), "data.frame_hex"),
        for_state=text(d.get("for_state"), "data.for_state"),
        command_id=text(d.get("command_id"), "data.command_id"),
        attempt=integer(d.get("attempt"), "data.attempt"),
    )
    row = [
        e.tenant_id, e.space_id, e.occurred_at, e.event_id, e.type, e.recorded_at,
        None, None, None, None, None,
        step.dev_eui, step.command_id, integer(d.get("f_port"), "data.f_port"),
        step.frame_hex, step.for_state, step.attempt,
        optional_text(d.get("reason"), "data.reason"), None, None, None, None,
        e.causation_id, e.correlation_id, e.partition, e.offset,
    ]  # fmt: skip
    return row, step


def _display_confirmed(e: Event) -> tuple[list[Any], Step]:
    d = e.data
    evidence = text(d.get("evidence"), "data.evidence")
    if evidence not in EVIDENCE_RANK:
        raise BadRecord("invalid_record", f"data.evidence {evidence!r} is not known")
    step = DisplayConfirmed(
        at=e.occurred_at,
        dev_eui=text(d.get("dev_eui"), "data.dev_eui"),
        frame_hex=text(d.get("frame_hex"), "data.frame_hex"),
        command_id=optional_text(d.get("command_id"), "data.command_id"),
        evidence=evidence,
    )
    row = [
        e.tenant_id, e.space_id, e.occurred_at, e.event_id, e.type, e.recorded_at,
        None, None, None, None, None,
        step.dev_eui, step.command_id, None, step.frame_hex, None, None, None,
        evidence, None, None, None,
        e.causation_id, e.correlation_id, e.partition, e.offset,
    ]  # fmt: skip
    return row, step


def _resend_scheduled(e: Event) -> tuple[list[Any], None]:
    d = e.data
    row = _actuation(
        e,
        type=e.type,
        dev_eui=text(d.get("dev_eui"), "data.dev_eui"),
        command_id=text(d.get("command_id"), "data.command_id"),
        attempt=integer(d.get("attempt"), "data.attempt"),
        due_at=optional_timestamp(d.get("due_at"), "data.due_at"),
        reason=optional_text(d.get("reason"), "data.reason"),
    )
    return row, None


_ACTUATIONS: dict[str, Callable[[Event], tuple[list[Any], Step | None]]] = {
    "space.state_changed": _state_changed,
    "display.change_requested": _display_requested,
    "display.change_confirmed": _display_confirmed,
    "display.resend_scheduled": _resend_scheduled,
}

ACTUATION_TYPES = frozenset(_ACTUATIONS)


def plan(events: Iterable[Event]) -> Plan:
    """Actuation rows and bay steps of ``events`` (in stream order)."""
    out = Plan()
    seen: set[str] = set()
    for e in events:
        if e.type == "space.registered":
            try:
                registered = Registered(
                    site_id=text(e.data.get("site_id"), "data.site_id"),
                    time_zone=text(e.data.get("time_zone", "UTC"), "data.time_zone"),
                )
            except BadRecord as exc:
                out.rejected[(e.partition, e.offset)] = exc
                continue
            out.steps.append(BayStep(e.tenant_id or "", e.space_id or "", None, registered))
            continue
        handler = _ACTUATIONS.get(e.type)
        if handler is None:
            continue
        try:
            row, step = handler(e)
        except BadRecord as exc:
            out.rejected[(e.partition, e.offset)] = exc
            continue
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            out.rejected[(e.partition, e.offset)] = BadRecord("invalid_record", repr(exc))
            continue
        if e.event_id in seen:
            continue  # a repeat inside the batch: the first one is the one inserted
        seen.add(e.event_id)
        out.actuations.add(ACTUATIONS, row)
        tenant = e.tenant_id or ""
        if step is not None:
            out.steps.append(BayStep(tenant, e.space_id or "", e.event_id, step))
        if isinstance(step, DisplayRequested):
            out.requests[(tenant, step.command_id)] = (e.event_id, row)
        elif isinstance(step, DisplayConfirmed) and step.command_id is not None:
            key = (tenant, step.command_id)
            candidate = (step.at, EVIDENCE_RANK[step.evidence], step.evidence)
            best = out.confirmations.get(key)
            if best is None or candidate[:2] < best[:2]:
                out.confirmations[key] = candidate
                request = out.requests.get(key)
                if request is not None:
                    request[1][_CONFIRMED_AT] = step.at
                    request[1][_CONFIRMED_EVIDENCE] = step.evidence
    return out


# --- step 2: advance ------------------------------------------------------------------------


@dataclass
class Advance:
    """The bays' new states and the rollup increments of a batch."""

    states: dict[tuple[str, str], BayState]
    tally: Tally

    def hourly_rows(self) -> list[tuple[object, ...]]:
        """Rows of :data:`HOURLY`: the key, microseconds per bucket, the counts."""
        return [(*k, *v) for k, v in self.tally.hourly.items()]

    def daily_rows(self) -> list[tuple[object, ...]]:
        """Rows of :data:`DAILY`: the key, microseconds per bucket, the counts."""
        return [(*k, *v) for k, v in self.tally.daily.items()]


def advance(
    stored: Mapping[tuple[str, str], BayState],
    steps: Iterable[BayStep],
    new_event_ids: set[str] | frozenset[str],
) -> Advance:
    """Apply the steps whose actuation is new (and every registration) to the bays."""
    states: dict[tuple[str, str], BayState] = {}
    tally = Tally()
    for s in steps:
        if s.event_id is not None and s.event_id not in new_event_ids:
            continue
        key = (s.tenant_id, s.space_id)
        bay = states.get(key)
        if bay is None:
            bay = states[key] = stored.get(key) or BayState(s.tenant_id, s.space_id)
        step = s.step
        if isinstance(step, StateChanged):
            _close_interval(bay, step, tally)
            bay.event_id = s.event_id
        elif isinstance(step, Registered):
            bay.site_id, bay.time_zone = step.site_id, step.time_zone
        elif isinstance(step, DisplayRequested):
            bay.display_dev_eui = step.dev_eui
            bay.desired_frame = step.frame_hex
            bay.desired_for_state = step.for_state
            bay.desired_command_id = step.command_id
            bay.desired_attempt = step.attempt
            bay.desired_at = step.at
        else:
            bay.display_dev_eui = step.dev_eui
            bay.confirmed_frame = step.frame_hex
            bay.confirmed_command_id = step.command_id
            bay.confirmed_evidence = step.evidence
            bay.confirmed_at = step.at
    return Advance(states, tally)


def _close_interval(bay: BayState, change: StateChanged, tally: Tally) -> None:
    tz = zone(bay.time_zone)
    since = change.at
    if bay.state is not None and bay.since is not None:
        # A change never moves time backwards for a bay: a late one closes nothing.
        since = max(change.at, bay.since)
        tally.interval(bay.tenant_id, bay.space_id, bay.site_id, tz, bay.state, bay.since, since)
    tally.change(
        bay.tenant_id,
        bay.space_id,
        bay.site_id,
        tz,
        change.at,
        change.from_state,
        change.to_state,
    )
    bay.state = change.to_state
    bay.since = since
    bay.layer = change.layer
    bay.summary = change.summary
    bay.explanation = change.explanation
    bay.reservation_id = change.reservation_id
    bay.next_change_at = change.next_change_at
    bay.next_change_reason = change.next_change_reason
    bay.next_state = change.next_state
