"""Space commands: requests to change a bay (topic ``space-commands``, keyed by space_id).

Commands are imperative; the decider turns each into events or a rejection.
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from parkstream.domain.display import DisplayPolicy
from parkstream.domain.envelope import Envelope, Record, UtcDatetime
from parkstream.domain.ids import normalize_eui
from parkstream.domain.states import SpaceState

DeviceRole = Literal["sensor", "display"]


class SpaceConfig(Record):
    """Per-bay tuning of the decider."""

    heartbeat_s: int = Field(
        default=3600, ge=10, description="Longest expected gap between two sensor uplinks."
    )
    silence_factor: float = Field(
        default=3.0, ge=1.0, le=100.0, description="Silent after silence_factor x heartbeat_s."
    )
    debounce_s: float = Field(
        default=0.0,
        ge=0.0,
        le=3600.0,
        description="A changed reading takes effect after holding this long, or at once "
        "when a second reading agrees; 0 takes every change at once.",
    )
    default_grace_s: int = Field(default=900, ge=0, le=3600)
    reserved_soon_s: int = Field(
        default=900, ge=0, le=86400, description="Show RESERVED_SOON this long before a start."
    )
    max_reservation_s: int = Field(default=86400, ge=60, le=31 * 86400)
    display_resend_s: int = Field(
        default=60, ge=5, le=3600, description="Resend a downlink with no txack after this."
    )
    display_resend_max_s: int = Field(default=1800, ge=5, le=86400)


def check_time_zone(value: str) -> str:
    """An IANA time zone name (``Europe/Amsterdam``) known to this system's tz database."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class RegisterSpaceData(Record):
    site_id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=100)
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Z0-9]+$")
    config: SpaceConfig = Field(default_factory=SpaceConfig)
    time_zone: str = Field(
        default="UTC", description="IANA time zone of the bay's site (daily utilisation)."
    )

    _tz = field_validator("time_zone")(check_time_zone)


class RegisterSpace(Envelope):
    type: Literal["space.register"] = "space.register"
    tenant_id: str
    space_id: str
    data: RegisterSpaceData


class UpdateSpaceData(Record):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    code: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^[A-Z0-9]+$")
    config: SpaceConfig | None = None


class UpdateSpace(Envelope):
    type: Literal["space.update"] = "space.update"
    tenant_id: str
    space_id: str
    data: UpdateSpaceData


class ArchiveSpaceData(Record):
    reason: str = ""
    force: bool = Field(
        default=False, description="Cancel live reservations; without it they block archiving."
    )


class ArchiveSpace(Envelope):
    type: Literal["space.archive"] = "space.archive"
    tenant_id: str
    space_id: str
    data: ArchiveSpaceData


class RestoreSpaceData(Record):
    reason: str = ""


class RestoreSpace(Envelope):
    type: Literal["space.restore"] = "space.restore"
    tenant_id: str
    space_id: str
    data: RestoreSpaceData = Field(default_factory=RestoreSpaceData)


class AssignDeviceData(Record):
    dev_eui: str
    role: DeviceRole
    decoder: str | None = Field(
        default=None, description="Force a sensor decoder instead of choosing by profile."
    )

    @field_validator("dev_eui")
    @classmethod
    def _eui(cls, value: str) -> str:
        return normalize_eui(value)


class AssignDevice(Envelope):
    type: Literal["space.assign_device"] = "space.assign_device"
    tenant_id: str
    space_id: str
    data: AssignDeviceData


class UnassignDeviceData(Record):
    role: DeviceRole


class UnassignDevice(Envelope):
    type: Literal["space.unassign_device"] = "space.unassign_device"
    tenant_id: str
    space_id: str
    data: UnassignDeviceData


class CreateReservationData(Record):
    reservation_id: str = Field(min_length=1, max_length=100)
    request_id: str = Field(
        min_length=1, max_length=200, description="Idempotency key: a repeat changes nothing."
    )
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    grace_s: int | None = Field(default=None, ge=0, le=3600)
    kind: Literal["standard", "vip", "maintenance", "event"] = "standard"
    external_ref: str | None = Field(default=None, max_length=200)


class CreateReservation(Envelope):
    type: Literal["reservation.create"] = "reservation.create"
    tenant_id: str
    space_id: str
    data: CreateReservationData


class CancelReservationData(Record):
    reservation_id: str
    reason: str = ""


class CancelReservation(Envelope):
    type: Literal["reservation.cancel"] = "reservation.cancel"
    tenant_id: str
    space_id: str
    data: CancelReservationData


class SetOverrideData(Record):
    state: SpaceState
    reason: str = ""
    until: UtcDatetime | None = None

    @field_validator("state")
    @classmethod
    def _overridable(cls, value: SpaceState) -> SpaceState:
        if value in (SpaceState.UNKNOWN, SpaceState.ARCHIVED, SpaceState.RESERVED_SOON):
            raise ValueError(f"{value} cannot be forced by an override")
        return value


class SetOverride(Envelope):
    type: Literal["space.set_override"] = "space.set_override"
    tenant_id: str
    space_id: str
    data: SetOverrideData


class ClearOverrideData(Record):
    reason: str = ""


class ClearOverride(Envelope):
    type: Literal["space.clear_override"] = "space.clear_override"
    tenant_id: str
    space_id: str
    data: ClearOverrideData = Field(default_factory=ClearOverrideData)


class SetDisplayPolicyData(Record):
    policy: DisplayPolicy


class SetDisplayPolicy(Envelope):
    """The tenant's display policy, delivered to each of its spaces."""

    type: Literal["display.set_policy"] = "display.set_policy"
    tenant_id: str
    space_id: str
    data: SetDisplayPolicyData


class TickData(Record):
    due_at: UtcDatetime = Field(description="The deadline this tick was scheduled for.")


class Tick(Envelope):
    """Time passed: apply every deadline due by ``recorded_at``."""

    type: Literal["space.tick"] = "space.tick"
    space_id: str
    data: TickData


SpaceCommand = (
    RegisterSpace
    | UpdateSpace
    | ArchiveSpace
    | RestoreSpace
    | AssignDevice
    | UnassignDevice
    | CreateReservation
    | CancelReservation
    | SetOverride
    | ClearOverride
    | SetDisplayPolicy
    | Tick
)

COMMAND_TYPES: tuple[type[Envelope], ...] = (
    RegisterSpace,
    UpdateSpace,
    ArchiveSpace,
    RestoreSpace,
    AssignDevice,
    UnassignDevice,
    CreateReservation,
    CancelReservation,
    SetOverride,
    ClearOverride,
    SetDisplayPolicy,
    Tick,
)
