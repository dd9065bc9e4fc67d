"""Space events: the source of truth (topic ``space-events``, keyed by space_id).

Every change of a bay is one of these, past tense, immutable. Other systems
build on them: see docs/compatibility.md before changing anything here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from parkstream.domain.commands import DeviceRole, SpaceConfig
from parkstream.domain.display import DisplayPolicy
from parkstream.domain.envelope import Envelope, Record, UtcDatetime
from parkstream.domain.states import Layer, SpaceState


class NextChange(Record):
    """A change the bay will make by itself unless something else happens first."""

    at: UtcDatetime
    reason: str = Field(description="e.g. reservation_starts, no_show, override_ends")
    to_state: SpaceState | None = None


class Explanation(Record):
    """Why a bay is in its state: the winning layer, its causes, and what comes next."""

    state: SpaceState
    layer: Layer
    summary: str = Field(description="One sentence for people.")
    cause_event_ids: tuple[str, ...] = Field(
        default=(), description="event_ids of the records that put the bay in this state."
    )
    since: UtcDatetime | None = None
    reservation_id: str | None = None
    next_change: NextChange | None = None


class _SpaceEvent(Envelope):
    tenant_id: str
    space_id: str


# --- registry ---------------------------------------------------------------------------


class SpaceRegisteredData(Record):
    site_id: str
    name: str
    code: str
    config: SpaceConfig
    time_zone: str = Field(default="UTC", description="IANA time zone of the bay's site.")


class SpaceRegistered(_SpaceEvent):
    type: Literal["space.registered"] = "space.registered"
    data: SpaceRegisteredData


class SpaceUpdatedData(Record):
    name: str
    code: str
    config: SpaceConfig


class SpaceUpdated(_SpaceEvent):
    type: Literal["space.updated"] = "space.updated"
    data: SpaceUpdatedData


class SpaceArchivedData(Record):
    reason: str = ""
    cancelled_reservation_ids: tuple[str, ...] = ()


class SpaceArchived(_SpaceEvent):
    type: Literal["space.archived"] = "space.archived"
    data: SpaceArchivedData


class SpaceRestoredData(Record):
    reason: str = ""


class SpaceRestored(_SpaceEvent):
    type: Literal["space.restored"] = "space.restored"
    data: SpaceRestoredData


class DeviceAssignedData(Record):
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    role: DeviceRole
    decoder: str | None = None
    replaced_dev_eui: str | None = None


class DeviceAssigned(_SpaceEvent):
    type: Literal["space.device_assigned"] = "space.device_assigned"
    data: DeviceAssignedData


class DeviceUnassignedData(Record):
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    role: DeviceRole


class DeviceUnassigned(_SpaceEvent):
    type: Literal["space.device_unassigned"] = "space.device_unassigned"
    data: DeviceUnassignedData


class CommandRejectedData(Record):
    command_type: str
    reason: str
    field: str | None = None


class CommandRejected(_SpaceEvent):
    """A command that the bay's current state does not allow (e.g. assign to an archived bay)."""

    type: Literal["space.command_rejected"] = "space.command_rejected"
    data: CommandRejectedData


# --- sensor -----------------------------------------------------------------------------


class SensorReadingAcceptedData(Record):
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    occupied: bool
    f_cnt: int | None = None
    observed_at: UtcDatetime | None = Field(
        default=None, description="Event time of the uplink that carried the reading."
    )
    settled: bool = Field(description="True when the reading changed the debounced occupancy.")
    pending_until: UtcDatetime | None = Field(
        default=None, description="When a held change settles if nothing contradicts it."
    )


class SensorReadingAccepted(_SpaceEvent):
    type: Literal["space.sensor_reading_accepted"] = "space.sensor_reading_accepted"
    data: SensorReadingAcceptedData


class SensorReadingIgnoredData(Record):
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    reason: str = Field(description="e.g. no_occupancy, stale, duplicate_f_cnt, archived")
    f_cnt: int | None = None


class SensorReadingIgnored(_SpaceEvent):
    type: Literal["space.sensor_reading_ignored"] = "space.sensor_reading_ignored"
    data: SensorReadingIgnoredData


class SensorDebouncedData(Record):
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    occupied: bool
    held_since: UtcDatetime = Field(description="When the first reading of the change came.")


class SensorDebounced(_SpaceEvent):
    """A held change of occupancy settled: nothing contradicted it for ``debounce_s``."""

    type: Literal["space.sensor_debounced"] = "space.sensor_debounced"
    data: SensorDebouncedData


class SensorWentSilentData(Record):
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    last_heard_at: UtcDatetime | None


class SensorWentSilent(_SpaceEvent):
    type: Literal["space.sensor_went_silent"] = "space.sensor_went_silent"
    data: SensorWentSilentData


class SensorRecoveredData(Record):
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    silent_since: UtcDatetime | None


class SensorRecovered(_SpaceEvent):
    type: Literal["space.sensor_recovered"] = "space.sensor_recovered"
    data: SensorRecoveredData


# --- state ------------------------------------------------------------------------------


class SpaceStateChangedData(Record):
    from_state: SpaceState | None
    to_state: SpaceState
    explanation: Explanation


class SpaceStateChanged(_SpaceEvent):
    type: Literal["space.state_changed"] = "space.state_changed"
    data: SpaceStateChangedData


# --- reservations -----------------------------------------------------------------------


class ReservationConfirmedData(Record):
    reservation_id: str
    request_id: str
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    grace_s: int
    kind: str = "standard"
    external_ref: str | None = None


class ReservationConfirmed(_SpaceEvent):
    type: Literal["reservation.confirmed"] = "reservation.confirmed"
    data: ReservationConfirmedData


class ReservationRejectedData(Record):
    reservation_id: str
    request_id: str
    reason: str = Field(
        description="overlap, too_long, ends_before_start, ends_in_past, archived, duplicate_id"
    )
    conflicting_reservation_id: str | None = None


class ReservationRejected(_SpaceEvent):
    type: Literal["reservation.rejected"] = "reservation.rejected"
    data: ReservationRejectedData


class ReservationRef(Record):
    reservation_id: str


class ReservationStarted(_SpaceEvent):
    type: Literal["reservation.started"] = "reservation.started"
    data: ReservationRef


class ReservationFulfilledData(Record):
    reservation_id: str
    arrived_at: UtcDatetime


class ReservationFulfilled(_SpaceEvent):
    """The reserving car arrived (the bay turned occupied during the reservation window)."""

    type: Literal["reservation.fulfilled"] = "reservation.fulfilled"
    data: ReservationFulfilledData


class ReservationNoShowData(Record):
    reservation_id: str
    grace_ended_at: UtcDatetime


class ReservationNoShow(_SpaceEvent):
    type: Literal["reservation.no_show"] = "reservation.no_show"
    data: ReservationNoShowData


class ReservationCompletedData(Record):
    reservation_id: str
    reason: Literal["ended", "departed"]


class ReservationCompleted(_SpaceEvent):
    type: Literal["reservation.completed"] = "reservation.completed"
    data: ReservationCompletedData


class ReservationCancelledData(Record):
    reservation_id: str
    reason: str = ""


class ReservationCancelled(_SpaceEvent):
    type: Literal["reservation.cancelled"] = "reservation.cancelled"
    data: ReservationCancelledData


# --- overrides --------------------------------------------------------------------------


class OverrideSetData(Record):
    state: SpaceState
    reason: str = ""
    until: UtcDatetime | None = None


class OverrideSet(_SpaceEvent):
    type: Literal["override.set"] = "override.set"
    data: OverrideSetData


class OverrideClearedData(Record):
    reason: str = Field(description="manual or expired")


class OverrideCleared(_SpaceEvent):
    type: Literal["override.cleared"] = "override.cleared"
    data: OverrideClearedData


# --- display ----------------------------------------------------------------------------


class DisplayPolicySetData(Record):
    policy: DisplayPolicy


class DisplayPolicySet(_SpaceEvent):
    type: Literal["display.policy_set"] = "display.policy_set"
    data: DisplayPolicySetData


class DisplayChangeRequestedData(Record):
    command_id: str = Field(description="Sent as the ChirpStack queue item id.")
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    f_port: int = Field(ge=1, le=223)
    frame_hex: str
    for_state: SpaceState
    attempt: int = Field(ge=1)
    reason: str = Field(description="state_change, resend, rejoin, mismatch, display_assigned")


class DisplayChangeRequested(_SpaceEvent):
    type: Literal["display.change_requested"] = "display.change_requested"
    data: DisplayChangeRequestedData


class DisplayChangeConfirmedData(Record):
    command_id: str | None
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    frame_hex: str
    evidence: Literal["txack", "ack", "status"] = Field(
        description="txack: a gateway sent it; ack: the light acknowledged it; "
        "status: the light reported showing it."
    )


class DisplayChangeConfirmed(_SpaceEvent):
    type: Literal["display.change_confirmed"] = "display.change_confirmed"
    data: DisplayChangeConfirmedData


class DisplayResendScheduledData(Record):
    command_id: str
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    attempt: int = Field(ge=1, description="The attempt that will be made at due_at.")
    due_at: UtcDatetime
    reason: str = Field(description="no_txack, nack, dropped")


class DisplayResendScheduled(_SpaceEvent):
    type: Literal["display.resend_scheduled"] = "display.resend_scheduled"
    data: DisplayResendScheduledData


# --- devices without a bay --------------------------------------------------------------


class OrphanDeviceSeenData(Record):
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    device_profile_name: str | None = None
    application_id: str | None = None
    device_name: str | None = None
    event_type: str


class OrphanDeviceSeen(Envelope):
    """A device sent events but is assigned to no bay (keyed by dev_eui, no space)."""

    type: Literal["device.orphan_seen"] = "device.orphan_seen"
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    data: OrphanDeviceSeenData


SpaceEvent = (
    SpaceRegistered
    | SpaceUpdated
    | SpaceArchived
    | SpaceRestored
    | DeviceAssigned
    | DeviceUnassigned
    | CommandRejected
    | SensorReadingAccepted
    | SensorReadingIgnored
    | SensorDebounced
    | SensorWentSilent
    | SensorRecovered
    | SpaceStateChanged
    | ReservationConfirmed
    | ReservationRejected
    | ReservationStarted
    | ReservationFulfilled
    | ReservationNoShow
    | ReservationCompleted
    | ReservationCancelled
    | OverrideSet
    | OverrideCleared
    | DisplayPolicySet
    | DisplayChangeRequested
    | DisplayChangeConfirmed
    | DisplayResendScheduled
    | OrphanDeviceSeen
)

SPACE_EVENT_TYPES: tuple[type[Envelope], ...] = (
    SpaceRegistered,
    SpaceUpdated,
    SpaceArchived,
    SpaceRestored,
    DeviceAssigned,
    DeviceUnassigned,
    CommandRejected,
    SensorReadingAccepted,
    SensorReadingIgnored,
    SensorDebounced,
    SensorWentSilent,
    SensorRecovered,
    SpaceStateChanged,
    ReservationConfirmed,
    ReservationRejected,
    ReservationStarted,
    ReservationFulfilled,
    ReservationNoShow,
    ReservationCompleted,
    ReservationCancelled,
    OverrideSet,
    OverrideCleared,
    DisplayPolicySet,
    DisplayChangeRequested,
    DisplayChangeConfirmed,
    DisplayResendScheduled,
    OrphanDeviceSeen,
)
