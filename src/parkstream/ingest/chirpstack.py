"""ChirpStack v4 integration events (JSON, as pbjson writes them) to device events.

Field names are the proto3 JSON names of ``integration.proto``. ChirpStack
writes default values for integration messages, but an absent field is read as
its default too, so the protobuf path (``chirpstack_pb``) lands here unchanged.

- ``up``: UplinkObserved, or ``ignored``/``mac_only`` for fPort 0 or empty data;
- ``join``: DeviceJoined; ``txack``: DownlinkTransmitted; ``ack``: DownlinkAcknowledged;
- ``log``: DownlinkDropped for EXPIRED / DOWNLINK_PAYLOAD_SIZE with
  ``context.queue_item_id``, else DeviceLogged;
- ``status``: DeviceStatusReported; ``location``: LocationReported.

``txack``/``ack`` without a ``queueItemId`` are ignored (``no_queue_item``):
nothing of ours can be correlated with them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from parkstream.domain.device_events import (
    AckData,
    DeviceInfo,
    DeviceJoined,
    DeviceLogged,
    DeviceStatusReported,
    DownlinkAcknowledged,
    DownlinkDropped,
    DownlinkTransmitted,
    DroppedData,
    JoinedData,
    LocationData,
    LocationReported,
    LogData,
    StatusData,
    TxAckData,
)
from parkstream.domain.ids import normalize_eui
from parkstream.ingest.envelopes import (
    Heard,
    Message,
    Uplink,
    accept,
    device_class,
    frame_bytes,
    opt_time,
    radio_summary,
    uplink_result,
)
from parkstream.ingest.fields import Obj, bad
from parkstream.ingest.result import ParseResult, Rejected

U8 = 255
U32 = 2**32 - 1
DROP_CODES = frozenset({"EXPIRED", "DOWNLINK_PAYLOAD_SIZE"})
_HEX_EUI = re.compile(r"[0-9a-fA-F]{16}")
_DEV_ADDR = re.compile(r"[0-9a-fA-F]{8}")

Handler = Callable[[Obj, DeviceInfo, Message], ParseResult]


def parse_v4(doc: Mapping[str, object], msg: Message) -> ParseResult:
    """Parse a v4 event object for ``msg.event``; raises :class:`Rejected` on bad input."""
    handler = HANDLERS.get(msg.event)
    if handler is None:
        raise Rejected("unknown_event", f"{msg.event!r} is not a ChirpStack v4 event")
    root = Obj(doc)
    info = root.req_child("deviceInfo")
    check_eui(info, "devEui", msg.dev_eui)
    return handler(root, device_info(info, msg), msg)


def check_eui(obj: Obj, key: str, topic_eui: str) -> str:
    """The payload's device EUI, normalised; it must equal the topic's.

    Exactly 16 hex digits in either case: ChirpStack never writes separators,
    so an EUI with any is not ChirpStack's and is refused (``bad_eui``).
    """
    raw = obj.req_text(key)
    if _HEX_EUI.fullmatch(raw) is None:
        raise Rejected("bad_eui", f"{obj.at(key)} is not 16 hex digits: {raw[:32]!r}")
    eui = normalize_eui(raw)
    if eui != topic_eui:
        raise Rejected("eui_mismatch", f"{obj.at(key)} {eui} differs from the topic's {topic_eui}")
    return eui


def device_info(info: Obj, msg: Message) -> DeviceInfo:
    return DeviceInfo(
        chirpstack_tenant_id=info.opt_text("tenantId"),
        application_id=info.opt_text("applicationId"),
        application_name=info.opt_text("applicationName"),
        device_profile_id=info.opt_text("deviceProfileId"),
        device_profile_name=info.opt_text("deviceProfileName"),
        device_name=info.opt_text("deviceName"),
        device_class=device_class(info.opt_text("deviceClassEnabled")),
        tags=info.text_map("tags", msg.limits.max_tags),
    )


def dev_addr(obj: Obj, key: str) -> str | None:
    value = obj.opt_text(key)
    if value is not None and _DEV_ADDR.fullmatch(value) is None:
        raise bad(obj.at(key), "must be 8 hex digits")
    return value.lower() if value is not None else None


def _up(root: Obj, device: DeviceInfo, msg: Message) -> ParseResult:
    dedup = root.req_text("deduplicationId")
    tx = root.child("txInfo")
    lora = _lora(tx)
    heard = [
        Heard(
            gateway_id=(rx.opt_text("gatewayId") or "").lower() or None,
            rssi=rx.opt_integer("rssi", -(2**31), 2**31 - 1),
            snr=rx.opt_number("snr"),
        )
        for rx in root.objects("rxInfo", msg.limits.max_rx_info)
    ]
    obj = root.child("object")
    uplink = Uplink(
        id_part=dedup,
        dedup_id=dedup,
        time=opt_time(root, "time"),
        device=device,
        f_port=root.integer("fPort", 0, U8),
        f_cnt=root.integer("fCnt", 0, U32),
        frame=frame_bytes(root.text("data"), "data", msg.limits),
        radio=radio_summary(
            heard,
            tx.opt_integer("frequency", 0, U32) if tx is not None else None,
            lora.opt_integer("spreadingFactor", 0, 12) if lora is not None else None,
        ),
        dev_addr=dev_addr(root, "devAddr"),
        confirmed=root.flag("confirmed"),
        adr=root.flag("adr"),
        dr=root.integer("dr", 0, 15),
        obj=obj.data if obj is not None else None,
    )
    return uplink_result(msg, uplink)


def _lora(tx: Obj | None) -> Obj | None:
    modulation = tx.child("modulation") if tx is not None else None
    return modulation.child("lora") if modulation is not None else None


def _join(root: Obj, device: DeviceInfo, msg: Message) -> ParseResult:
    dedup = root.req_text("deduplicationId")
    data = JoinedData(device=device, dev_addr=dev_addr(root, "devAddr"))
    time = opt_time(root, "time")
    return accept(msg, DeviceJoined, data, id_part=dedup, dedup_id=dedup, time=time)


def _txack(root: Obj, device: DeviceInfo, msg: Message) -> ParseResult:
    queue_item = root.text("queueItemId")
    if not queue_item:
        return _no_queue_item(msg)
    data = TxAckData(
        device=device,
        queue_item_id=queue_item,
        downlink_id=root.opt_integer("downlinkId", 0, U32),
        f_cnt_down=root.opt_integer("fCntDown", 0, U32),
        gateway_id=(root.opt_text("gatewayId") or "").lower() or None,
    )
    time = opt_time(root, "time")
    return accept(
        msg, DownlinkTransmitted, data, id_part=queue_item, dedup_id=queue_item, time=time
    )


def _ack(root: Obj, device: DeviceInfo, msg: Message) -> ParseResult:
    queue_item = root.text("queueItemId")
    if not queue_item:
        return _no_queue_item(msg)
    acknowledged = root.flag("acknowledged")
    dedup = root.text("deduplicationId")
    data = AckData(
        device=device,
        queue_item_id=queue_item,
        acknowledged=acknowledged,
        f_cnt_down=root.opt_integer("fCntDown", 0, U32),
    )
    # A timed-out item (acknowledged=false) has an empty deduplicationId.
    id_part = dedup if acknowledged and dedup else queue_item
    time = opt_time(root, "time")
    return accept(
        msg, DownlinkAcknowledged, data, id_part=id_part, dedup_id=dedup or queue_item, time=time
    )


def _no_queue_item(msg: Message) -> ParseResult:
    detail = f"{msg.event} without a queueItemId cannot be correlated with a downlink"
    return ParseResult.ignored("no_queue_item", detail, msg.dedup_key(msg.digest()))


def _log(root: Obj, device: DeviceInfo, msg: Message) -> ParseResult:
    code = root.text("code", "UNKNOWN")
    description = root.text("description")
    context = root.text_map("context", msg.limits.max_tags)
    time = opt_time(root, "time")
    queue_item = context.get("queue_item_id")
    if code in DROP_CODES and queue_item:
        dropped = DroppedData(
            device=device, queue_item_id=queue_item, code=code, description=description
        )
        id_part = f"{code}:{queue_item}"
        return accept(
            msg, DownlinkDropped, dropped, id_part=id_part, dedup_id=queue_item, time=time
        )
    data = LogData(
        device=device,
        level=root.text("level", "INFO"),
        code=code,
        description=description,
        context=context,
    )
    dedup = context.get("deduplication_id") or None
    return accept(msg, DeviceLogged, data, id_part=msg.digest(), dedup_id=dedup, time=time)


def _status(root: Obj, device: DeviceInfo, msg: Message) -> ParseResult:
    unavailable = root.flag("batteryLevelUnavailable")
    external = root.flag("externalPowerSource")
    level = root.opt_number("batteryLevel")
    if level is not None and not 0 <= level <= 100:
        raise bad(root.at("batteryLevel"), "must be a percentage 0..100")
    data = StatusData(
        device=device,
        margin=root.opt_integer("margin", -128, 127),
        external_power_source=external,
        battery_level_unavailable=unavailable,
        # ChirpStack writes 0 when the level is unknown or the device is mains powered.
        battery_level=None if unavailable or external else level,
    )
    return _with_optional_id(root, msg, DeviceStatusReported, data)


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
    return _with_optional_id(root, msg, LocationReported, data)


def _with_optional_id(
    root: Obj,
    msg: Message,
    cls: type[DeviceStatusReported] | type[LocationReported],
    data: StatusData | LocationData,
) -> ParseResult:
    dedup = root.opt_text("deduplicationId")
    time = opt_time(root, "time")
    return accept(msg, cls, data, id_part=dedup or msg.digest(), dedup_id=dedup, time=time)


HANDLERS: Mapping[str, Handler] = {
    "up": _up,
    "join": _join,
    "ack": _ack,
    "txack": _txack,
    "log": _log,
    "status": _status,
    "location": _location,
}
