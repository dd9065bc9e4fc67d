"""The envelope every parkstream record shares, on every topic.

A record is ``{event_id, type, version, tenant_id, space_id, dev_eui,
occurred_at, recorded_at, source, causation_id, correlation_id, data}``;
``data`` is the payload model of its ``type``. Records are immutable.

Compatibility rules (see docs/compatibility.md): a type's name never changes,
fields are only ever added as optional, and a breaking change is a new
``version`` with an upcaster from the old one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Every timestamp of the contract is timezone-aware and held in UTC, so its written
# form (RFC 3339, +00:00) is exact whatever offset it arrived with.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class Record(BaseModel):
    """Base of every frozen payload and value object of the contract."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)


class Source(Record):
    """Where the input that caused a record came from."""

    kind: Literal["mqtt", "kafka", "api", "timer", "cli"] = Field(
        description="mqtt: a ChirpStack message; kafka: a record of another topic; "
        "api: an HTTP request; timer: a due deadline; cli: an operator command."
    )
    topic: str | None = Field(default=None, description="MQTT or Kafka topic of the input.")
    dedup_id: str | None = Field(
        default=None, description="ChirpStack deduplicationId (or queue item id) of the input."
    )
    partition: int | None = None
    offset: int | None = None


class Envelope(Record):
    """Fields common to every record. Subclasses pin ``type`` and ``data``."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    event_id: str = Field(
        description="Deterministic id derived from the input that caused the record: "
        "processing the same input twice yields the same id, so consumers drop repeats."
    )
    type: str
    version: int = Field(default=1, ge=1, description="Schema version of this type.")
    tenant_id: str | None = None
    space_id: str | None = None
    dev_eui: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    occurred_at: UtcDatetime = Field(description="Event time (when it happened in the field).")
    recorded_at: UtcDatetime = Field(description="Ingest time (when parkstream recorded it).")
    source: Source
    causation_id: str | None = Field(
        default=None, description="event_id of the record that directly caused this one."
    )
    correlation_id: str | None = Field(
        default=None, description="Id shared by every record of one chain (e.g. the uplink)."
    )

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        field = cls.model_fields.get("type")
        if field is not None and isinstance(field.default, str) and field.default:
            cls.TYPE = field.default
        version = cls.model_fields.get("version")
        if version is not None and isinstance(version.default, int):
            cls.VERSION = version.default


def utc_iso(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds, as every parkstream timestamp is written."""
    return value.isoformat(timespec="microseconds")
