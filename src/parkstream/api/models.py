"""Request and response bodies of the API (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from parkstream.domain.commands import SpaceConfig, check_time_zone
from parkstream.domain.display import DisplayStyle
from parkstream.domain.ids import normalize_eui
from parkstream.domain.states import SpaceState

T = TypeVar("T")

Identifier = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"),
]
ReservationStatus = Literal[
    "confirmed", "started", "fulfilled", "completed", "no_show", "cancelled"
]


def _trimmed(value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= 100:
        raise ValueError("a name has 1 to 100 characters after trimming")
    return value


def _code(value: str) -> str:
    value = value.strip().upper()
    if not value.isascii() or not value.isalnum():
        raise ValueError("a code has only letters and digits")
    if not 1 <= len(value) <= 32:
        raise ValueError("a code has 1 to 32 characters")
    return value


TrimmedName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_trimmed)]
Code = Annotated[str, Field(min_length=1, max_length=32), AfterValidator(_code)]


ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$"
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,400}$"
TEXT_PATTERN = r"^[^\x00]*$"
MAX_INT = 2**53  # what every JSON reader (and PostgreSQL bigint) holds exactly


def _check_values(value: Any, where: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where or 'value'}: a NUL character is not allowed")
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if abs(value) > MAX_INT:
            raise ValueError(f"{where or 'value'}: out of range")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_values(k, where)
            _check_values(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_values(v, f"{where}[{i}]")


class Body(BaseModel):
    """A request body: unknown fields, NUL characters and integers JSON cannot hold
    exactly are refused."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _safe(self) -> Body:
        _check_values(self.model_dump(mode="python"), "")
        return self


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; absent on the last."
    )


# --- sites ------------------------------------------------------------------------------


class SiteIn(Body):
    site_id: Identifier = Field(examples=["north-garage"])
    name: TrimmedName = Field(examples=["North garage"])
    time_zone: str = Field(examples=["Europe/Amsterdam"], description="IANA time zone name.")

    _tz = field_validator("time_zone")(check_time_zone)


class SiteOut(BaseModel):
    site_id: str
    name: str
    time_zone: str
    spaces: int = Field(description="Registered bays at the site.")
    created_at: datetime | None = None


# --- spaces -----------------------------------------------------------------------------


class SpaceIn(Body):
    name: TrimmedName = Field(examples=["Bay 12"])
    code: Code = Field(examples=["B012"], description="Letters and digits, unique per site.")
    config: SpaceConfig = Field(default_factory=SpaceConfig)


class SpacePatch(Body):
    name: TrimmedName | None = None
    code: Code | None = None
    config: SpaceConfig | None = None


class ArchiveIn(Body):
    reason: str = Field(default="", max_length=500)
    force: bool = Field(
        default=False, description="Cancel live reservations; without it they block archiving."
    )


class RestoreIn(Body):
    reason: str = Field(default="", max_length=500)


class DeviceIn(Body):
    dev_eui: str = Field(examples=["70B3D57ED0001234"], description="16 hex digits, any case.")
    decoder: str | None = Field(
        default=None, max_length=64, description="Force a sensor decoder (sensors only)."
    )

    @field_validator("dev_eui")
    @classmethod
    def _eui(cls, value: str) -> str:
        return normalize_eui(value)


class Accepted(BaseModel):
    """A command was accepted by the broker; the fold decides it moments later."""

    status: Literal["accepted"] = "accepted"
    command_id: str
    space_id: str | None = None
    location: str | None = Field(default=None, description="Where to see the effect.")


class AcceptedMany(BaseModel):
    status: Literal["accepted"] = "accepted"
    commands: int


class NextChangeOut(BaseModel):
    at: datetime
    reason: str | None = None
    to_state: str | None = None


class OverrideOut(BaseModel):
    state: str
    reason: str | None = None
    until: datetime | None = None


class DeviceRef(BaseModel):
    dev_eui: str
    decoder: str | None = None


class FrameOut(BaseModel):
    frame_hex: str | None
    command_id: str | None = None
    for_state: str | None = None
    attempt: int | None = None
    evidence: str | None = None
    at: datetime | None = None


class DisplayOut(BaseModel):
    dev_eui: str | None
    desired: FrameOut | None = Field(description="The frame last sent to the light.")
    confirmed: FrameOut | None = Field(description="The frame the light confirmed showing.")
    in_sync: bool = Field(description="The light confirmed the frame it should show.")


class SpaceOut(BaseModel):
    space_id: str = Field(examples=["spc_3f2a9c1e7b5d4a60"])
    site_id: str | None
    name: str | None
    code: str | None
    time_zone: str | None
    archived: bool
    archive_reason: str | None = None
    state: str | None = Field(examples=["OCCUPIED"], description="The effective state.")
    since: datetime | None
    layer: str | None = Field(
        examples=["sensor"], description="Which layer won: archived, override, reservation, sensor."
    )
    summary: str | None = Field(examples=["The sensor reports a vehicle since 08:12."])
    explanation: dict[str, Any] | None = Field(
        description="Why: the winning layer, the events that caused it, what changes next."
    )
    reservation_id: str | None = None
    next_change: NextChangeOut | None = None
    override: OverrideOut | None = None
    sensor: DeviceRef | None = None
    display: DisplayOut | None = None
    config: dict[str, Any] | None = None


class SpaceAsOf(BaseModel):
    space_id: str
    as_of: datetime
    state: str
    layer: str
    summary: str
    explanation: dict[str, Any]
    events_folded: int = Field(description="Space events of the bay up to as_of.")


class OverrideIn(Body):
    state: SpaceState = Field(examples=["MAINTENANCE"])
    reason: str = Field(default="", max_length=500)
    until: AwareDatetime | None = Field(default=None, description="When the override ends.")

    @field_validator("state")
    @classmethod
    def _overridable(cls, value: SpaceState) -> SpaceState:
        if value in (SpaceState.UNKNOWN, SpaceState.ARCHIVED, SpaceState.RESERVED_SOON):
            raise ValueError(f"{value} cannot be forced by an override")
        return value


# --- reservations -----------------------------------------------------------------------


class ReservationIn(Body):
    starts_at: AwareDatetime = Field(examples=["2026-12-01T08:00:00Z"])
    ends_at: AwareDatetime = Field(examples=["2026-12-01T10:00:00Z"])
    grace_s: int | None = Field(
        default=None, ge=0, le=3600, description="No-show after this; default: the bay's."
    )
    kind: Literal["standard", "vip", "maintenance", "event"] = "standard"
    external_ref: str | None = Field(default=None, max_length=200)


class ReservationOut(BaseModel):
    reservation_id: str
    space_id: str
    status: str = Field(
        examples=["confirmed"],
        description="confirmed, started, fulfilled, completed, no_show, cancelled",
    )
    starts_at: datetime | None
    ends_at: datetime | None
    grace_s: int | None = None
    kind: str | None = None
    external_ref: str | None = None
    confirmed_at: datetime | None = None
    arrived_at: datetime | None = None
    no_show_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None


class ReservationPending(BaseModel):
    status: Literal["pending"] = "pending"
    request_id: str
    reservation_id: str
    status_url: str


class ReservationRequestOut(BaseModel):
    request_id: str
    status: Literal["pending", "confirmed", "rejected"]
    reservation: ReservationOut | None = None
    reason: str | None = None
    conflicting_reservation_id: str | None = None


class CancelIn(Body):
    reason: str = Field(default="", max_length=500)


class AvailabilityOut(BaseModel):
    site_id: str
    starts_at: datetime
    ends_at: datetime
    total: int
    available: list[SpaceBrief]


class SpaceBrief(BaseModel):
    space_id: str
    code: str | None
    name: str | None
    state: str | None


# --- history and utilisation ------------------------------------------------------------


class ActuationOut(BaseModel):
    event_id: str
    type: str
    occurred_at: datetime
    recorded_at: datetime
    from_state: str | None = None
    to_state: str | None = None
    layer: str | None = None
    summary: str | None = None
    dev_eui: str | None = None
    command_id: str | None = None
    frame_hex: str | None = None
    for_state: str | None = None
    attempt: int | None = None
    reason: str | None = None
    evidence: str | None = None
    confirmed_at: datetime | None = None
    confirmed_evidence: str | None = None
    causation_id: str | None = None


class UsageOut(BaseModel):
    free_s: float
    occupied_s: float
    reserved_s: float
    unknown_s: float
    unavailable_s: float
    arrivals: int
    departures: int
    occupancy: float | None = Field(
        description="occupied / (free + occupied + reserved) seconds; null without data."
    )


class HourUsage(UsageOut):
    hour: datetime


class DayUsage(UsageOut):
    day: date


class SpaceUtilization(BaseModel):
    space_id: str
    hours: list[HourUsage]


class SiteUtilization(BaseModel):
    site_id: str
    time_zone: str
    days: list[DayUsage]


# --- devices ----------------------------------------------------------------------------


class DeviceHealth(BaseModel):
    dev_eui: str
    role: str | None
    space_id: str | None
    assigned: bool
    decoder: str | None = None
    liveness: str = Field(examples=["alive"], description="unknown, alive or silent.")
    last_seen_at: datetime | None = None
    silent_since: datetime | None = None
    last_reading: str | None = None
    last_f_cnt: int | None = None
    health: dict[str, Any] | None = Field(
        default=None, description="Radio and battery figures, where the device reports them."
    )


class OrphanOut(BaseModel):
    dev_eui: str
    first_seen_at: datetime
    last_seen_at: datetime
    device_profile_name: str | None = None
    application_id: str | None = None
    device_name: str | None = None


class OrphanAssignIn(Body):
    space_id: Identifier
    role: Literal["sensor", "display"]
    decoder: str | None = Field(default=None, max_length=64)


class PolicyIn(Body):
    """The light style per bay state; states left out keep the default style."""

    version: int = Field(default=1, ge=1, le=2**31 - 1, description="Bump on every change.")
    styles: dict[SpaceState, DisplayStyle] = Field(
        default_factory=dict,
        examples=[
            {"FREE": {"colour": "00FF00"}, "RESERVED": {"colour": "FF3200", "on": 5, "off": 5}}
        ],
    )


class PolicyOut(BaseModel):
    policy: dict[str, Any]
    source: Literal["tenant", "default"]


AvailabilityOut.model_rebuild()
