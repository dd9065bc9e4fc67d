"""v4 join, txack, ack, log, status and location events."""

from __future__ import annotations

from datetime import UTC, datetime

from parkstream.domain.device_events import (
    DeviceJoined,
    DeviceLogged,
    DeviceStatusReported,
    DownlinkAcknowledged,
    DownlinkDropped,
    DownlinkTransmitted,
    LocationReported,
)
from parkstream.domain.ids import derive_id

from .conftest import Parse
from .messages import BOSCH_EUI, CODEC_EUI, KUANDO_EUI, RECORDED_AT, doc, raw, v4_topic

QUEUE_ITEM = "9b2f6c4e-3a1d-4e5f-8b7c-6d5e4f3a2b1c"


def test_a_join_becomes_device_joined_with_its_dev_addr(parse: Parse) -> None:
    result = parse(v4_topic(KUANDO_EUI, "join"), raw("v4_join.json"))
    (event,) = result.events
    assert isinstance(event, DeviceJoined)
    assert event.data.dev_addr == "0042f1e3"
    assert event.data.device.device_class == "CLASS_C"
    assert event.event_id == derive_id(
        "mqtt", KUANDO_EUI, "join", "e7a4c1b2-9f3d-4c5e-8a6b-7d1e2f3a4b5c"
    )


def test_a_txack_becomes_downlink_transmitted_keyed_by_queue_item(parse: Parse) -> None:
    result = parse(v4_topic(KUANDO_EUI, "txack"), raw("v4_txack.json"))
    (event,) = result.events
    assert isinstance(event, DownlinkTransmitted)
    assert event.data.queue_item_id == QUEUE_ITEM
    assert (event.data.downlink_id, event.data.f_cnt_down) == (3192411562, 12)
    assert event.data.gateway_id == "0016c001ff10a235"
    assert event.source.dedup_id == QUEUE_ITEM
    assert event.event_id == derive_id("mqtt", KUANDO_EUI, "txack", QUEUE_ITEM)


def test_an_acknowledged_ack_is_identified_by_its_deduplication_id(parse: Parse) -> None:
    result = parse(v4_topic(KUANDO_EUI, "ack"), raw("v4_ack.json"))
    (event,) = result.events
    assert isinstance(event, DownlinkAcknowledged)
    assert (event.data.queue_item_id, event.data.acknowledged) == (QUEUE_ITEM, True)
    dedup = "5b0a3e8e-0d7c-4d1f-b9c6-6f8a0f2c9e41"
    assert event.event_id == derive_id("mqtt", KUANDO_EUI, "ack", dedup)


def test_an_ack_and_the_uplink_that_carried_it_have_distinct_keys(parse: Parse) -> None:
    ack = parse(v4_topic(KUANDO_EUI, "ack"), raw("v4_ack.json"))
    up = parse(v4_topic(KUANDO_EUI), raw("v4_up_kuando_status.json"))
    assert ack.events[0].source.dedup_id == up.events[0].source.dedup_id
    assert ack.dedup_key != up.dedup_key
    assert ack.events[0].event_id != up.events[0].event_id


def test_a_timed_out_ack_is_identified_by_its_queue_item(parse: Parse) -> None:
    result = parse(v4_topic(KUANDO_EUI, "ack"), raw("v4_ack_timeout.json"))
    (event,) = result.events
    assert isinstance(event, DownlinkAcknowledged)
    queue_item = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
    assert event.data.acknowledged is False
    assert event.event_id == derive_id("mqtt", KUANDO_EUI, "ack", queue_item)
    assert event.source.dedup_id == queue_item


def test_txack_and_ack_without_a_queue_item_are_ignored(parse: Parse) -> None:
    for name, event in (("v4_txack.json", "txack"), ("v4_ack.json", "ack")):
        message = doc(name) | {"queueItemId": ""}
        result = parse(v4_topic(KUANDO_EUI, event), message)
        assert (result.outcome, result.reason) == ("ignored", "no_queue_item")


def test_an_expired_log_with_a_queue_item_is_a_dropped_downlink(parse: Parse) -> None:
    result = parse(v4_topic(KUANDO_EUI, "log"), raw("v4_log_expired.json"))
    (event,) = result.events
    assert isinstance(event, DownlinkDropped)
    queue_item = "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918"
    assert (event.data.queue_item_id, event.data.code) == (queue_item, "EXPIRED")
    assert event.event_id == derive_id("mqtt", KUANDO_EUI, "log", f"EXPIRED:{queue_item}")


def test_a_payload_size_log_is_a_dropped_downlink_too(parse: Parse) -> None:
    message = doc("v4_log_expired.json") | {"code": "DOWNLINK_PAYLOAD_SIZE"}
    (event,) = parse(v4_topic(KUANDO_EUI, "log"), message).events
    assert isinstance(event, DownlinkDropped)


def test_other_logs_are_device_logged_and_keep_their_context(parse: Parse) -> None:
    result = parse(v4_topic(CODEC_EUI, "log"), raw("v4_log_codec.json"))
    (event,) = result.events
    assert isinstance(event, DeviceLogged)
    assert (event.data.level, event.data.code) == ("ERROR", "UPLINK_CODEC")
    dedup = "a2f5d3c1-7b6e-4e8a-9c1d-3f2e1d0c9b8a"
    assert event.data.context == {"deduplication_id": dedup}
    assert event.source.dedup_id == dedup


def test_an_expired_log_without_a_queue_item_is_only_logged(parse: Parse) -> None:
    message = doc("v4_log_expired.json") | {"context": {}}
    (event,) = parse(v4_topic(KUANDO_EUI, "log"), message).events
    assert isinstance(event, DeviceLogged)


def test_a_log_redelivered_yields_the_same_event_id_from_its_payload_hash(parse: Parse) -> None:
    first = parse(v4_topic(CODEC_EUI, "log"), raw("v4_log_codec.json"))
    again = parse(v4_topic(CODEC_EUI, "log"), raw("v4_log_codec.json"))
    other = parse(v4_topic(CODEC_EUI, "log"), doc("v4_log_codec.json") | {"description": "x"})
    assert first.events[0].event_id == again.events[0].event_id
    assert first.events[0].event_id != other.events[0].event_id


def test_a_status_reports_battery_and_margin(parse: Parse) -> None:
    result = parse(v4_topic(BOSCH_EUI, "status"), raw("v4_status.json"))
    (event,) = result.events
    assert isinstance(event, DeviceStatusReported)
    assert (event.data.margin, event.data.battery_level) == (12, 87.4)
    assert event.occurred_at == datetime(2026, 7, 23, 11, 0, tzinfo=UTC)


def test_an_unavailable_battery_level_is_none_not_zero(parse: Parse) -> None:
    message = doc("v4_status.json") | {"batteryLevelUnavailable": True, "batteryLevel": 0}
    (event,) = parse(v4_topic(BOSCH_EUI, "status"), message).events
    assert isinstance(event, DeviceStatusReported)
    assert event.data.battery_level is None


def test_a_status_without_id_or_time_uses_the_payload_hash_and_recorded_at(parse: Parse) -> None:
    message = doc("v4_status.json")
    del message["deduplicationId"], message["time"]
    result = parse(v4_topic(BOSCH_EUI, "status"), message)
    (event,) = result.events
    assert event.occurred_at == RECORDED_AT
    assert event.source.dedup_id is None
    assert result.dedup_key is not None
    assert result.dedup_key.startswith(f"status:{BOSCH_EUI}:sha256:")


def test_a_location_becomes_location_reported(parse: Parse) -> None:
    (event,) = parse(v4_topic(BOSCH_EUI, "location"), raw("v4_location.json")).events
    assert isinstance(event, LocationReported)
    assert (event.data.latitude, event.data.longitude) == (52.3740364, 4.9144401)
    assert event.data.source == "GEO_RESOLVER_TDOA"


def test_a_location_event_without_location_is_rejected(parse: Parse) -> None:
    message = doc("v4_location.json")
    del message["location"]
    result = parse(v4_topic(BOSCH_EUI, "location"), message)
    assert (result.outcome, result.reason) == ("rejected", "missing_field:location")


def test_a_v4_payload_on_a_v3_error_topic_is_an_unknown_event(parse: Parse) -> None:
    result = parse(v4_topic(CODEC_EUI, "error"), raw("v4_log_codec.json"))
    assert (result.outcome, result.reason) == ("rejected", "unknown_event")
