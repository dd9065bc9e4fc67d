"""The common case of ingest, read in one pass: a well-formed ChirpStack v4 JSON uplink.

Almost every message is an ``up`` event that ChirpStack wrote the way it always does.
:func:`common_uplink` reads such a document straight from the parsed dict and builds
the UplinkObserved with one validation of the whole record, skipping the general
reader's per-field objects (``Obj``, ``Heard``, ``Uplink``) and its five separate model
validations. It gives up (returns None) on anything else: a missing or oddly typed
field, a value out of range, a frame no decoder could read, an fPort 0 or empty
frame. ``parse_v4`` then reads the document and gives the precise outcome.

Equivalence is the contract: whenever it returns a result, that result equals what
``parse_v4`` returns for the same document (property-tested against it).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from parkstream.decoders.registry import UplinkFrame
from parkstream.domain.device_events import Reading, UplinkObserved
from parkstream.ingest.envelopes import Message
from parkstream.ingest.result import ParseResult
from parkstream.ingest.rfc3339 import parse_rfc3339

U32 = 2**32 - 1
I32 = 2**31
_HEX_EUI = re.compile(r"[0-9a-fA-F]{16}")
_DEV_ADDR = re.compile(r"[0-9a-fA-F]{8}")
_DEVICE_CLASSES = frozenset({"CLASS_A", "CLASS_B", "CLASS_C"})
_DEVICE_TEXT = (
    ("chirpstack_tenant_id", "tenantId"),
    ("application_id", "applicationId"),
    ("application_name", "applicationName"),
    ("device_profile_id", "deviceProfileId"),
    ("device_profile_name", "deviceProfileName"),
    ("device_name", "deviceName"),
)


class _Uncommon(Exception):
    """The document is not in the common shape: the general reader takes over."""


def common_uplink(doc: Mapping[str, object], msg: Message) -> ParseResult | None:
    """The result of a plain v4 ``up`` document, or None to leave it to ``parse_v4``."""
    try:
        return _read(doc, msg)
    except (_Uncommon, ValidationError, ValueError):
        return None


def _read(doc: Mapping[str, object], msg: Message) -> ParseResult:
    limits = msg.limits
    info = _dict(doc.get("deviceInfo"))
    eui = info.get("devEui")
    if type(eui) is not str or _HEX_EUI.fullmatch(eui) is None or eui.lower() != msg.dev_eui:
        raise _Uncommon
    device: dict[str, Any] = {name: _opt_text(info.get(key)) for name, key in _DEVICE_TEXT}
    device_class = _opt_text(info.get("deviceClassEnabled"))
    device["device_class"] = device_class if device_class in _DEVICE_CLASSES else None
    tags = info.get("tags")
    if tags is None:
        tags = {}
    if type(tags) is not dict or len(tags) > limits.max_tags:
        raise _Uncommon
    if not all(type(v) is str for v in tags.values()):
        raise _Uncommon
    device["tags"] = tags

    dedup = doc.get("deduplicationId")
    if type(dedup) is not str or not dedup:
        raise _Uncommon
    f_port = _int(doc.get("fPort"), 0, 255)
    data = doc.get("data")
    if type(data) is not str:
        raise _Uncommon
    try:
        frame = base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise _Uncommon from exc
    if not f_port or not frame or len(frame) > limits.max_frame_bytes:
        raise _Uncommon  # mac_only or frame_too_large: the general reader says which
    text_time = _opt_text(doc.get("time"))
    time = parse_rfc3339(text_time) if text_time is not None else None  # ValueError: bad_time
    dev_addr = _opt_text(doc.get("devAddr"))
    if dev_addr is not None:
        if _DEV_ADDR.fullmatch(dev_addr) is None:
            raise _Uncommon
        dev_addr = dev_addr.lower()
    obj = doc.get("object")
    if obj is not None and type(obj) is not dict:
        raise _Uncommon

    reading = msg.decoders.decode(
        UplinkFrame(
            dev_eui=msg.dev_eui,
            f_port=f_port,
            payload=frame,
            device_profile_name=device["device_profile_name"],
            tags=tags,
            obj=obj,
        )
    )
    if not isinstance(reading, Reading):
        raise _Uncommon  # a decode failure: accepted with a reason, by the general reader

    event_id = msg.event_id(dedup)
    record = UplinkObserved.model_validate(
        {
            "event_id": event_id,
            "dev_eui": msg.dev_eui,
            "occurred_at": time.at if time is not None else msg.recorded_at,
            "recorded_at": msg.recorded_at,
            "source": {"kind": "mqtt", "topic": msg.topic, "dedup_id": dedup},
            "correlation_id": event_id,
            "data": {
                "device": device,
                "f_port": f_port,
                "f_cnt": _int(doc.get("fCnt"), 0, U32),
                "dev_addr": dev_addr,
                "confirmed": _flag(doc.get("confirmed")),
                "adr": _flag(doc.get("adr")),
                "dr": _int(doc.get("dr"), 0, 15),
                "data_b64": base64.b64encode(frame).decode("ascii"),
                "time_ns": time.ns if time is not None else None,
                "radio": _radio(doc, limits.max_rx_info),
                "reading": reading,
                "decode_error": None,
            },
        }
    )
    return ParseResult.accepted((record,), msg.dedup_key(dedup))


def _radio(doc: Mapping[str, object], max_rx_info: int) -> dict[str, Any]:
    """The best reception (highest RSSI, then SNR) and every gateway, as ``radio_summary``."""
    rx_info = doc.get("rxInfo")
    if rx_info is None:
        rx_info = []
    elif type(rx_info) is not list or len(rx_info) > max_rx_info:
        raise _Uncommon
    best: tuple[bool, int, float] | None = None
    rssi: int | None = None
    snr: float | None = None
    gateways: dict[str, None] = {}
    for item in rx_info:
        rx = _dict(item)
        gateway = (_opt_text(rx.get("gatewayId")) or "").lower()
        if gateway:
            gateways[gateway] = None
        this_rssi = rx.get("rssi")
        if this_rssi is not None and (type(this_rssi) is not int or not -I32 <= this_rssi < I32):
            raise _Uncommon
        this_snr = _opt_float(rx.get("snr"))
        rank = (
            this_rssi is not None,
            this_rssi or 0,
            this_snr if this_snr is not None else -999.0,
        )
        if best is None or rank > best:  # the first of equals wins, as with max()
            best, rssi, snr = rank, this_rssi, this_snr
    tx_info = doc.get("txInfo")
    frequency = spreading_factor = None
    if tx_info is not None:
        tx = _dict(tx_info)
        frequency = _opt_int(tx.get("frequency"), 0, U32)
        modulation = tx.get("modulation")
        lora = _dict(modulation).get("lora") if modulation is not None else None
        if lora is not None:
            spreading_factor = _opt_int(_dict(lora).get("spreadingFactor"), 0, 12)
    return {
        "rssi": rssi,
        "snr": snr,
        "gateway_ids": tuple(gateways),
        "frequency": frequency,
        "spreading_factor": spreading_factor,
    }


def _dict(value: object) -> dict[str, object]:
    if type(value) is not dict:
        raise _Uncommon
    return value


def _opt_text(value: object) -> str | None:
    """A string, or None for absent, null or empty (as ``Obj.opt_text``)."""
    if value is None:
        return None
    if type(value) is not str:
        raise _Uncommon
    return value or None


def _opt_int(value: object, low: int, high: int) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not low <= value <= high:
        raise _Uncommon
    return value


def _int(value: object, low: int, high: int) -> int:
    found = _opt_int(value, low, high)
    return 0 if found is None else found


def _opt_float(value: object) -> float | None:
    if value is None:
        return None
    if type(value) is float:
        if not math.isfinite(value):
            raise _Uncommon
        return value
    if type(value) is not int or abs(value) > 2**53:
        raise _Uncommon
    return float(value)


def _flag(value: object) -> bool:
    if value is None:
        return False
    if type(value) is not bool:
        raise _Uncommon
    return value
