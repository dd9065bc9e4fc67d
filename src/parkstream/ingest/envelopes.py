"""Turning parsed ChirpStack fields into device events, the same way for every dialect.

Identity rules (the same MQTT message redelivered yields the same ``event_id``):
``event_id = derive_id("mqtt", dev_eui, event, id_part)`` where ``id_part`` is the
``deduplicationId`` (up, join, acknowledged ack, status, location), the
``queueItemId`` (txack, timed-out ack), ``code:queue_item_id`` (dropped downlink
logs) or, for messages that carry no id, ``sha256:<hex>`` of the raw payload.
The result's ``dedup_key`` is ``event:dev_eui:id_part``: the event name keeps an
``up`` and the ``ack``/``status`` that share its deduplicationId apart.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from parkstream.decoders.base import DecodeFailure
from parkstream.decoders.registry import DecoderRegistry, UplinkFrame
from parkstream.domain.device_events import (
    DeviceInfo,
    RadioInfo,
    Reading,
    UplinkData,
    UplinkObserved,
)
from parkstream.domain.envelope import Envelope, Source
from parkstream.domain.ids import derive_id
from parkstream.ingest.fields import Obj, strict_b64
from parkstream.ingest.limits import Limits
from parkstream.ingest.result import ParseResult, Rejected
from parkstream.ingest.rfc3339 import Instant, parse_rfc3339

E = TypeVar("E", bound=Envelope)

DeviceClass = Literal["CLASS_A", "CLASS_B", "CLASS_C"]
_DEVICE_CLASSES: dict[str, DeviceClass] = {
    "CLASS_A": "CLASS_A",
    "CLASS_B": "CLASS_B",
    "CLASS_C": "CLASS_C",
}


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message being parsed, with what every dialect parser needs."""

    topic: str
    dev_eui: str  # normalised, from the topic
    event: str  # canonical event name
    payload: bytes
    recorded_at: datetime
    decoders: DecoderRegistry
    limits: Limits

    def digest(self) -> str:
        """``sha256:<hex>`` of the raw payload: the id of messages that carry none."""
        return "sha256:" + hashlib.sha256(self.payload).hexdigest()

    def dedup_key(self, id_part: str) -> str:
        return f"{self.event}:{self.dev_eui}:{id_part}"

    def event_id(self, id_part: str) -> str:
        return derive_id("mqtt", self.dev_eui, self.event, id_part)


def build(cls: type[E], **fields: Any) -> E:
    """Construct an event; a value its model refuses becomes ``bad_field:<location>``."""
    try:
        return cls(**fields)
    except ValidationError as exc:
        raise refused(exc, cls.__name__) from exc


def refused(exc: ValidationError, default: str) -> Rejected:
    """The first validation error as a ``bad_field:<location>`` rejection."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or default
    return Rejected(f"bad_field:{where}", f"{where}: {error['msg']}")


def accept(
    msg: Message,
    cls: type[E],
    data: Any,
    *,
    id_part: str,
    dedup_id: str | None,
    time: Instant | None,
    correlate: bool = False,
) -> ParseResult:
    """One accepted event with the envelope fields every device event shares."""
    event_id = msg.event_id(id_part)
    event = build(
        cls,
        event_id=event_id,
        dev_eui=msg.dev_eui,
        occurred_at=time.at if time is not None else msg.recorded_at,
        recorded_at=msg.recorded_at,
        source=Source(kind="mqtt", topic=msg.topic, dedup_id=dedup_id),
        correlation_id=event_id if correlate else None,
        data=data,
    )
    return ParseResult.accepted((event,), msg.dedup_key(id_part))


def opt_time(obj: Obj, key: str) -> Instant | None:
    """The RFC 3339 field ``key`` as an :class:`Instant`; None when absent or empty."""
    text = obj.opt_text(key)
    if text is None:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise Rejected("bad_time", f"{obj.at(key)}: {exc}") from exc


def frame_bytes(text: str, path: str, limits: Limits) -> bytes:
    frame = strict_b64(text, path)
    if len(frame) > limits.max_frame_bytes:
        raise Rejected("frame_too_large", f"{path} holds {len(frame)} bytes")
    return frame


def device_class(value: str | None) -> DeviceClass | None:
    """``deviceClassEnabled`` when it is a LoRaWAN class name, else None."""
    return _DEVICE_CLASSES.get(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class Heard:
    """One gateway's reception of an uplink."""

    gateway_id: str | None
    rssi: int | None
    snr: float | None


def radio_summary(
    heard: Iterable[Heard], frequency: int | None, spreading_factor: int | None
) -> RadioInfo:
    """The best reception (highest RSSI, then SNR) and every gateway that heard the frame."""
    entries = list(heard)
    best = max(
        entries,
        key=lambda h: (h.rssi is not None, h.rssi or 0, h.snr if h.snr is not None else -999.0),
        default=None,
    )
    gateways = tuple(dict.fromkeys(h.gateway_id for h in entries if h.gateway_id))
    return RadioInfo(
        rssi=best.rssi if best else None,
        snr=best.snr if best else None,
        gateway_ids=gateways,
        frequency=frequency,
        spreading_factor=spreading_factor,
    )


@dataclass(frozen=True, slots=True)
class Uplink:
    """A dialect-neutral uplink, ready to decode and wrap."""

    id_part: str
    dedup_id: str | None
    time: Instant | None
    device: DeviceInfo
    f_port: int
    f_cnt: int | None
    frame: bytes
    radio: RadioInfo
    dev_addr: str | None = None
    confirmed: bool = False
    adr: bool | None = None
    dr: int | None = None
    obj: Mapping[str, object] | None = None


def uplink_result(msg: Message, up: Uplink) -> ParseResult:
    """``mac_only`` for fPort 0 or an empty frame; otherwise the decoded UplinkObserved.

    A decoder failure keeps the uplink (``reading=None``, ``decode_error`` set) and
    the result stays ``accepted`` with reason ``decode_error:<reason>``.
    """
    if up.f_port == 0 or not up.frame:
        detail = "fPort 0 or an empty frame: MAC commands only, no application data"
        return ParseResult.ignored("mac_only", detail, msg.dedup_key(up.id_part))
    decoded = msg.decoders.decode(
        UplinkFrame(
            dev_eui=msg.dev_eui,
            f_port=up.f_port,
            payload=up.frame,
            device_profile_name=up.device.device_profile_name,
            tags=up.device.tags,
            obj=up.obj,
        )
    )
    reading = decoded if isinstance(decoded, Reading) else None
    failure = decoded if isinstance(decoded, DecodeFailure) else None
    data = build_data(up, reading, failure)
    result = accept(
        msg,
        UplinkObserved,
        data,
        id_part=up.id_part,
        dedup_id=up.dedup_id,
        time=up.time,
        correlate=True,
    )
    if failure is None:
        return result
    return ParseResult.accepted(
        result.events,
        msg.dedup_key(up.id_part),
        f"decode_error:{failure.reason}",
        failure.describe(),
    )


def build_data(up: Uplink, reading: Reading | None, failure: DecodeFailure | None) -> UplinkData:
    try:
        return UplinkData(
            device=up.device,
            f_port=up.f_port,
            f_cnt=up.f_cnt,
            dev_addr=up.dev_addr,
            confirmed=up.confirmed,
            adr=up.adr,
            dr=up.dr,
            data_b64=base64.b64encode(up.frame).decode("ascii"),
            time_ns=up.time.ns if up.time is not None else None,
            radio=up.radio,
            reading=reading,
            decode_error=failure.describe() if failure is not None else None,
        )
    except ValidationError as exc:
        raise refused(exc, "data") from exc
