"""The state of one bay, folded from its space events. Immutable; see decider.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

from parkstream.domain.commands import SpaceConfig
from parkstream.domain.display import DEFAULT_POLICY, DisplayPolicy
from parkstream.domain.envelope import Record
from parkstream.domain.states import SpaceState

M = TypeVar("M", bound=BaseModel)

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


# --- cheap construction of trusted records ----------------------------------------------
#
# The decider builds thousands of records a second from values that are already valid
# (read from validated inputs and state). Validating them again is most of its cost, and
# pydantic's ``model_construct`` / ``model_copy`` are generic (aliases, extras, private
# attributes) and slower still. The two functions below produce the very objects those
# would: the same ``__dict__`` (every field, in declaration order), the same fields-set,
# no extras and no private attributes -- so equality, ``repr`` and serialisation agree.

_REQUIRED = object()
_Template = tuple[dict[str, Any], tuple[tuple[str, Callable[[], Any]], ...]]
_TEMPLATES: dict[type[BaseModel], _Template] = {}
_set_attribute = object.__setattr__


def _template(cls: type[BaseModel]) -> _Template:
    """Every field of ``cls`` in declaration order with its plain default, and its factories."""
    template = _TEMPLATES.get(cls)
    if template is None:
        if cls.model_config.get("extra") == "allow" or cls.__private_attributes__:
            raise TypeError(f"{cls.__name__}: extras or private attributes need model_construct")
        defaults: dict[str, Any] = {}
        factories: list[tuple[str, Callable[[], Any]]] = []
        for name, field in cls.model_fields.items():
            defaults[name] = _REQUIRED if field.is_required() else field.default
            if field.default_factory is not None:
                factories.append((name, field.default_factory))  # type: ignore[arg-type]
        template = _TEMPLATES[cls] = (defaults, tuple(factories))
    return template


def construct(cls: type[M], **values: Any) -> M:
    """``cls(**values)`` for values known to be valid: no validation, nothing coerced.

    Pass values of the field's own type (enums as enums, tuples as tuples, aware
    datetimes) and every required field; unlike ``cls(**values)`` nothing checks that.
    """
    defaults, factories = _TEMPLATES.get(cls) or _template(cls)
    fields = {**defaults, **values}
    for name, factory in factories:
        if name not in values:
            fields[name] = factory()
    model = cls.__new__(cls)
    _set_attribute(model, "__dict__", fields)
    _set_attribute(model, "__pydantic_fields_set__", set(values))
    _set_attribute(model, "__pydantic_extra__", None)
    _set_attribute(model, "__pydantic_private__", None)
    return model


def replace(model: M, changes: Mapping[str, Any]) -> M:
    """``model.model_copy(update=changes)``, without pydantic's generic copy machinery.

    For records without extras or private attributes (every state and event record).
    """
    fields = model.__dict__.copy()
    fields.update(changes)
    copy = type(model).__new__(type(model))
    _set_attribute(copy, "__dict__", fields)
    _set_attribute(copy, "__pydantic_fields_set__", model.__pydantic_fields_set__.union(changes))
    _set_attribute(copy, "__pydantic_extra__", None)
    _set_attribute(copy, "__pydantic_private__", None)
    return copy
