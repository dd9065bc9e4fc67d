"""Records of the ``downlinks`` and ``deadletter`` topics."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from parkstream.domain.envelope import Envelope, Record, UtcDatetime


class DownlinkData(Record):
    command_id: str = Field(description="ChirpStack queue item id; txack/ack carry it back.")
    f_port: int = Field(ge=1, le=223)
    data_b64: str
    confirmed: bool = False
    expires_at: UtcDatetime | None = None
    application_id: str | None = Field(
        default=None,
        description="ChirpStack application of the device, when the sender knows it; "
        "otherwise the bridge uses the one it saw in the device's uplinks.",
    )


class DownlinkRequested(Envelope):
    """Send ``data_b64`` to the device (topic ``downlinks``, keyed by the device's EUI)."""

    type: Literal["downlink.requested"] = "downlink.requested"
    dev_eui: str = Field(pattern=r"^[0-9a-f]{16}$")
    data: DownlinkData


class DeadLetterData(Record):
    stage: Literal["bridge", "bridge-downlink", "worker", "projector", "api", "import"]
    reason: str = Field(description="Machine-readable reason, e.g. invalid_json, bad_base64.")
    detail: str = Field(default="", description="Human-readable detail of the reason.")
    raw_b64: str = Field(description="The input exactly as received, standard base64.")
    origin_topic: str | None = None
    origin_partition: int | None = None
    origin_offset: int | None = None
    received_at: UtcDatetime


class DeadLettered(Envelope):
    """An input a stage could not accept; nothing is dropped silently."""

    type: Literal["deadletter.recorded"] = "deadletter.recorded"
    data: DeadLetterData


DOWNLINK_TYPES: tuple[type[Envelope], ...] = (DownlinkRequested,)
DEADLETTER_TYPES: tuple[type[Envelope], ...] = (DeadLettered,)
