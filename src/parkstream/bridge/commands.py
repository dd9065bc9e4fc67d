"""ChirpStack downlink commands built from ``downlinks`` records (pure).

v4: ``application/{app}/device/{devEui}/command/down`` with
``{"id", "devEui", "confirmed", "fPort", "data"[, "expiresAt"]}``. ChirpStack
casts fPort to u8 before validating it and reports bad commands only in its own
log, so everything is validated here: lower-case devEui identical to the topic's,
fPort 1..223, standard base64 of at most 250 bytes (no region allows more).
v3: the same topic with ``{"confirmed", "fPort", "data"}``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Literal

import orjson

from parkstream.domain.downlinks import DownlinkRequested
from parkstream.domain.ids import InvalidEui, normalize_eui

MAX_DOWNLINK_BYTES = 250
Dialect = Literal["v4", "v3"]


class InvalidCommand(ValueError):
    """A downlink that ChirpStack would refuse (or silently mangle)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class MqttCommand:
    topic: str
    payload: bytes


def build_command(
    record: DownlinkRequested,
    *,
    application_id: str | None,
    dialect: Dialect = "v4",
    topic_prefix: str = "",
    with_expiry: bool = True,
) -> MqttCommand:
    d = record.data
    try:
        eui = normalize_eui(record.dev_eui)
    except InvalidEui as exc:
        raise InvalidCommand("bad_eui", str(exc)) from exc
    if not application_id:
        raise InvalidCommand("unknown_application", f"no ChirpStack application known for {eui}")
    if "/" in application_id or "+" in application_id or "#" in application_id:
        raise InvalidCommand("bad_application", f"application id {application_id!r}")
    if not 1 <= d.f_port <= 223:
        raise InvalidCommand("bad_f_port", f"fPort must be 1..223, got {d.f_port}")
    try:
        raw = base64.b64decode(d.data_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCommand("bad_base64", str(exc)) from exc
    if not raw:
        raise InvalidCommand("empty_payload", "a downlink needs at least one byte")
    if len(raw) > MAX_DOWNLINK_BYTES:
        raise InvalidCommand("payload_too_large", f"{len(raw)} bytes > {MAX_DOWNLINK_BYTES}")
    prefix = f"{topic_prefix.rstrip('/')}/" if topic_prefix else ""
    topic = f"{prefix}application/{application_id}/device/{eui}/command/down"
    data_b64 = base64.b64encode(raw).decode("ascii")
    body: dict[str, object]
    if dialect == "v4":
        body = {
            "id": d.command_id,
            "devEui": eui,
            "confirmed": d.confirmed,
            "fPort": d.f_port,
            "data": data_b64,
        }
        if with_expiry and d.expires_at is not None:
            body["expiresAt"] = d.expires_at.isoformat().replace("+00:00", "Z")
    else:
        body = {"confirmed": d.confirmed, "fPort": d.f_port, "data": data_b64}
    return MqttCommand(topic, orjson.dumps(body))
