"""The state of one bay, folded from its space events. Immutable; see decider.py."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field

from parkstream.domain.commands import SpaceConfig
from parkstream.domain.display import DEFAULT_POLICY, DisplayPolicy
from parkstream.domain.envelope import Record
from parkstream.domain.states import SpaceState

# How many recent input ids and reservation request ids a bay remembers for idempotency.
RECENT_INPUTS = 64
RECENT_REQUESTS = 512


class Sensor(Record):
    dev_eui: str | None = None
    decoder: str | None = None
    last_heard_at: datetime | None = None
    last_reading_at: datetime | None = None
    last_f_cnt: int | None = None
    occupied: bool | None = Field(default=None, description="Debounced occupancy.")
    occupied_since: datetime | None = None
    occupied_cause: tuple[str, ...] = ()
    pending: bool | None = Field(default=None, description="A change held for debouncing.")
    pending_since: datetime | None = None
    pending_cause: tuple[str, ...] = ()
    silent: bool = False
    silent_since: datetime | None = None
    silent_cause: str | None = None

    @property
    def trusted(self) -> bool:
        """A reading we may show: assigned, heard, and not silent."""
        return self.dev_eui is not None and self.occupied is not None and not self.silent


class Reservation(Record):
    reservation_id: str
    request_id: str
    starts_at: datetime
    ends_at: datetime
    grace_s: int
    kind: str = "standard"
    external_ref: str | None = None
    status: Literal["confirmed", "started", "fulfilled"] = "confirmed"
    cause: tuple[str, ...] = ()
    arrived_at: datetime | None = None

    @property
    def grace_ends_at(self) -> datetime:
        return self.starts_at + timedelta(seconds=self.grace_s)

    def overlaps(self, starts_at: datetime, ends_at: datetime) -> bool:
        return self.starts_at < ends_at and starts_at < self.ends_at


class Override(Record):
    state: SpaceState
    reason: str = ""
    until: datetime | None = None
    since: datetime
    cause: str


class Display(Record):
    dev_eui: str | None = None
    confirmed_hex: str | None = Field(default=None, description="Last frame the light confirmed.")
    confirmed_evidence: str | None = None
    awaiting: Literal["txack", "resend"] | None = Field(
        default=None, description="txack: waiting for the gateway; resend: a resend is due."
    )
    pending_command_id: str | None = None
    pending_hex: str | None = None
    pending_for: SpaceState | None = None
    attempt: int = 0
    resend_due_at: datetime | None = None

    @property
    def expected_hex(self) -> str | None:
        """What the light will show once the pending command (if any) lands."""
        return self.pending_hex if self.pending_command_id else self.confirmed_hex


class Space(Record):
    """Everything the decider knows about one bay."""

    space_id: str
    tenant_id: str | None = None
    registered: bool = False
    site_id: str | None = None
    name: str | None = None
    code: str | None = None
    config: SpaceConfig = Field(default_factory=SpaceConfig)
    archived: bool = False
    archived_cause: str | None = None
    sensor: Sensor = Field(default_factory=Sensor)
    display: Display = Field(default_factory=Display)
    reservations: tuple[Reservation, ...] = ()
    override: Override | None = None
    policy: DisplayPolicy = DEFAULT_POLICY
    state: SpaceState | None = None
    state_since: datetime | None = None
    clock: datetime | None = Field(default=None, description="Latest time the bay processed.")
    recent_inputs: tuple[str, ...] = ()
    recent_requests: tuple[tuple[str, str], ...] = Field(
        default=(), description="(request_id, reservation_id) of recent reservation requests."
    )

    def reservation(self, reservation_id: str) -> Reservation | None:
        for r in self.reservations:
            if r.reservation_id == reservation_id:
                return r
        return None


def initial_state(space_id: str) -> Space:
    return Space(space_id=space_id)
