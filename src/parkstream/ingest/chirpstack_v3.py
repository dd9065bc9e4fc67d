"""ChirpStack v3 Application Server events (``json_v3`` and ``protobuf_json`` marshalers).

v3 differs from v4: the fields sit at the top level (``applicationID``,
``deviceName``, ``deviceProfileName``, ``devEUI``, ``tags``), there is no
deduplicationId, the log event is ``error``, and ack/txack carry no queue item
id. The ``protobuf_json`` marshaler writes bytes (``devEUI``, ``gatewayID``,
``devAddr``) as base64 and the codec output as the string ``objectJSON``; an
8-byte base64 EUI is recognised and converted (it cannot be mistaken for 16 hex
digits: it is 12 characters long).

Identity: an uplink's ``id_part`` is ``v3:<fCnt>:<time>`` where ``time`` is the
earliest ``rxInfo[].time`` in ns, else ``publishedAt``, else
``data-sha256:<hex>`` of the frame. The same message redelivered gives the same
id; two uplinks only collide if they share device, fCnt and reception time (or,
without any time, fCnt and frame), which only a duplicate does. Other events use
the raw payload digest.

ack/txack are ignored (``no_queue_item``): without a queue item id they cannot
be correlated with the downlinks parkstream sent.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Callable, Mapping

import orjson

from parkstream.domain.device_events import (
    DeviceInfo,
    DeviceJoined,
    DeviceLogged,
    DeviceStatusReported,
    JoinedData,
    LocationData,
    LocationReported,
    LogData,
    StatusData,
)
from parkstream.ingest.envelopes import (
    Heard,
    Message,
    Uplink,
    accept,
    frame_bytes,
    opt_time,
    radio_summary,
    uplink_result,
)
from parkstream.ingest.fields import Obj, bad, strict_b64
from parkstream.ingest.limits import check_tree
from parkstream.ingest.result import ParseResult, Rejected
from parkstream.ingest.rfc3339 import Instant

U8 = 255
U32 = 2**32 - 1
_HEX = re.compile(r"[0-9a-fA-F]+")

Handler = Callable[[Obj, DeviceInfo, Message], ParseResult]


def parse_v3(doc: Mapping[str, object], msg: Message) -> ParseResult:
    """Parse a v3 event object for ``msg.event``; raises :class:`Rejected` on bad input."""
    handler = HANDLERS.get(msg.event)
    if handler is None:
        raise Rejected("unknown_event", f"{msg.event!r} is not a ChirpStack v3 event")
    root = Obj(doc)
    eui = hex_or_b64(root, "devEUI", 8)
    if eui is None:
        raise Rejected("missing_field:devEUI", "devEUI is required")
    if eui != msg.dev_eui:
        raise Rejected("eui_mismatch", f"devEUI {eui} differs from the topic's {msg.dev_eui}")
    return handler(root, device_info(root, msg), msg)


def hex_or_b64(obj: Obj, key: str, size: int) -> str | None:
    """A ``size``-byte id written as hex (json_v3) or base64 (protobuf_json), as lower hex."""
    text = obj.opt_text(key)
    if text is None:
        return None
    if len(text) == 2 * size and _HEX.fullmatch(text):
        return text.lower()
    try:
        raw = strict_b64(text, obj.at(key))
    except Rejected:
        raw = b""
    if len(raw) != size:
        reason = "bad_eui" if key == "devEUI" else f"bad_field:{obj.at(key)}"
        raise Rejected(reason, f"{obj.at(key)} is neither {size}-byte hex nor base64")
    return binascii.hexlify(raw).decode("ascii")


def device_info(root: Obj, msg: Message) -> DeviceInfo:
    app = root.raw("applicationID")
    if isinstance(app, int) and not isinstance(app, bool):
        app = str(app)
    elif app is not None and not isinstance(app, str):
        raise bad("applicationID", "must be a string or a number")
    return DeviceInfo(
        application_id=app or None,
        application_name=root.opt_text("applicationName"),
        device_profile_id=root.opt_text("deviceProfileID"),
        device_profile_name=root.opt_text("deviceProfileName"),
        device_name=root.opt_text("deviceName"),
        tags=root.text_map("tags", msg.limits.max_tags),
    )


def _published(root: Obj) -> Instant | None:
    return opt_time(root, "publishedAt")


def _up(root: Obj, device: DeviceInfo, msg: Message) -> ParseResult:
    rx_infos = root.objects("rxInfo", msg.limits.max_rx_info)
    heard = [
        Heard(
            gateway_id=hex_or_b64(rx, "gatewayID", 8),
            rssi=rx.opt_integer("rssi", -(2**31), 2**31 - 1),
            snr=rx.opt_number("loRaSNR"),
        )
        for rx in rx_infos
    ]
    rx_times = [t for t in (opt_time(rx, "time") for rx in rx_infos) if t is not None]
    time = min(rx_times, key=lambda t: t.ns, default=None) or _published(root)
    tx = root.child("txInfo")
    lora = tx.child("loRaModulationInfo") if tx is not None else None
    f_cnt = root.integer("fCnt", 0, U32)
    frame = frame_bytes(root.text("data"), "data", msg.limits)
    dr = root.opt_integer("dr", 0, 15)
    if dr is None and tx is not None:
        dr = tx.opt_integer("dr", 0, 15)
    stamp = str(time.ns) if time else "data-sha256:" + hashlib.sha256(frame).hexdigest()
    uplink = Uplink(
        id_part=f"v3:{f_cnt}:{stamp}",
        dedup_id=None,
        time=time,
        device=device,
        f_port=root.integer("fPort", 0, U8),
        f_cnt=f_cnt,
        frame=frame,
        radio=radio_summary(
            heard,
            tx.opt_integer("frequency", 0, U32) if tx is not None else None,
            lora.opt_integer("spreadingFactor", 0, 12) if lora is not None else None,
        ),
        dev_addr=hex_or_b64(root, "devAddr", 4),
        confirmed=root.flag("confirmedUplink"),
        adr=root.flag("adr"),
        dr=dr,
        obj=_object(root, msg),
    )
    return uplink_result(msg, uplink)


def _object(root: Obj, msg: Message) -> Mapping[str, object] | None:
    """``object`` (json_v3), or ``objectJSON`` parsed (protobuf_json); a bad one is dropped."""
    found = root.child("object")
    if found is not None:
        return found.data
    text = root.opt_text("objectJSON")
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or check_tree(value, msg.limits) is not None:
        return None
    return value


def _join(root: Obj, device: DeviceInfo, msg: Message) -> ParseResult:
    rx_infos = root.objects("rxInfo", msg.limits.max_rx_info)
    rx_times = [t for t in (opt_time(rx, "time") for rx in rx_infos) if t is not None]
    time = min(rx_times, key=lambda t: t.ns, default=None) or _published(root)
    data = JoinedData(device=device, dev_addr=hex_or_b64(root, "devAddr", 4))
    return accept(msg, DeviceJoined, data, id_part=msg.digest(), dedup_id=None, time=time)


def _no_queue_item(root: Obj, device: DeviceInfo, msg: Message) -> ParseResult:
    detail = f"v3 {msg.event} carries no queue item id to correlate with a downlink"
    return ParseResult.ignored("no_queue_item", detail, msg.dedup_key(msg.digest()))


def _error(root: Obj, device: DeviceInfo, msg: Message) -> ParseResult:
    f_cnt = root.opt_integer("fCnt", 0, U32)
    data = LogData(
        device=device,
        level="ERROR",
        code=root.text("type", "UNKNOWN"),
        description=root.text("error"),
        context={"f_cnt": str(f_cnt)} if f_cnt is not None else {},
    )
    time = _published(root)
    return accept(msg, DeviceLogged, data, id_part=msg.digest(), dedup_id=None, time=time)


def _status(root: Obj, device: DeviceInfo, msg: Message) -> ParseResult:
    unavailable = root.flag("batteryLevelUnavailable")
    external = root.flag("externalPowerSource")
    level = root.opt_number("batteryLevel")
    if level is not None and not 0 <= level <= 100:
        raise bad("batteryLevel", "must be a percentage 0..100")
    data = StatusData(
        device=device,
        margin=root.opt_integer("margin", -128, 127),
        external_power_source=external,
        battery_level_unavailable=unavailable,
        battery_level=None if unavailable or external else level,
    )
    time = _published(root)
    return accept(msg, DeviceStatusReported, data, id_part=msg.digest(), dedup_id=None, time=time)


def _location(root: Obj, device: DeviceInfo, msg: Message) -> ParseResult:
    loc = root.req_child("location")
    data = LocationData(
        device=device,
        latitude=loc.req_number("latitude"),
        longitude=loc.req_number("longitude"),
        altitude=loc.opt_number("altitude"),
        source=loc.opt_text("source"),
        accuracy=loc.opt_number("accuracy"),
    )
    time = _published(root)
    return accept(msg, LocationReported, data, id_part=msg.digest(), dedup_id=None, time=time)


HANDLERS: Mapping[str, Handler] = {
    "up": _up,
    "join": _join,
    "ack": _no_queue_item,
    "txack": _no_queue_item,
    "error": _error,
    "status": _status,
    "location": _location,
}
