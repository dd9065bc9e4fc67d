"""ChirpStack v3 (Application Server) JSON: json_v3 and protobuf_json marshalers."""

from __future__ import annotations

import base64

from parkstream.domain.device_events import (
    DeviceLogged,
    DeviceStatusReported,
    UplinkObserved,
)
from parkstream.ingest.rfc3339 import parse_rfc3339

from .conftest import Parse
from .messages import BOSCH_EUI, NWAVE_EUI, RECORDED_AT, doc, raw, v3_legacy_topic, v3_topic


def uplink(parse: Parse, topic: str, payload: bytes | dict[str, object]) -> UplinkObserved:
    result = parse(topic, payload)
    assert result.outcome == "accepted", (result.reason, result.detail)
    (event,) = result.events
    assert isinstance(event, UplinkObserved)
    return event


def test_a_json_v3_uplink_is_decoded_by_its_device_profile(parse: Parse) -> None:
    event = uplink(parse, v3_topic(BOSCH_EUI), raw("v3_up_json_v3.json"))
    data = event.data
    assert data.reading is not None
    assert (data.reading.decoder, data.reading.occupied) == ("bosch_tps110", False)
    assert (data.f_port, data.f_cnt, data.adr, data.dr) == (1, 10, True, 5)
    assert data.device.application_id == "12"
    assert data.device.device_profile_name == "bosch-tps110"
    assert data.device.tags == {"site": "north"}


def test_v3_time_is_the_earliest_gateway_time(parse: Parse) -> None:
    event = uplink(parse, v3_topic(BOSCH_EUI), raw("v3_up_json_v3.json"))
    assert event.data.time_ns == parse_rfc3339("2022-03-01T08:30:00.123456789Z").ns
    assert event.data.radio.rssi == -77
    assert event.data.radio.gateway_ids == ("0016c001ff10a235", "0016c001ff10a236")


def test_a_protobuf_json_uplink_has_base64_euis_and_addresses(parse: Parse) -> None:
    event = uplink(parse, v3_topic(NWAVE_EUI), raw("v3_up_protobuf_json.json"))
    data = event.data
    assert event.dev_eui == NWAVE_EUI
    assert data.dev_addr == "01ab023d"
    assert data.radio.gateway_ids == ("0016c001ff10a235",)
    assert data.radio.spreading_factor == 10
    assert data.reading is not None
    assert (data.reading.kind, data.reading.battery_v) == ("heartbeat", 3.344)


def test_the_legacy_rx_topic_is_an_uplink(parse: Parse) -> None:
    event = uplink(parse, v3_legacy_topic(BOSCH_EUI), raw("v3_up_json_v3.json"))
    assert event.data.f_cnt == 10


def test_v3_uplinks_have_a_stable_key_from_fcnt_and_rx_time(parse: Parse) -> None:
    first = parse(v3_topic(BOSCH_EUI), raw("v3_up_json_v3.json"))
    again = parse(v3_topic(BOSCH_EUI), raw("v3_up_json_v3.json"))
    next_frame = parse(v3_topic(BOSCH_EUI), doc("v3_up_json_v3.json") | {"fCnt": 11})
    assert first.events[0].event_id == again.events[0].event_id
    assert (
        first.dedup_key
        == f"up:{BOSCH_EUI}:v3:10:{parse_rfc3339('2022-03-01T08:30:00.123456789Z').ns}"
    )
    assert next_frame.dedup_key != first.dedup_key
    assert first.events[0].source.dedup_id is None


def test_without_any_time_the_v3_key_uses_the_frame_and_recorded_at(parse: Parse) -> None:
    message = doc("v3_up_json_v3.json")
    for rx in message["rxInfo"]:
        rx["time"] = None
    result = parse(v3_topic(BOSCH_EUI), message)
    assert result.dedup_key is not None
    assert result.dedup_key.startswith(f"up:{BOSCH_EUI}:v3:10:data-sha256:")
    assert result.events[0].occurred_at == RECORDED_AT


def test_a_v3_object_is_mapped_when_no_decoder_is_chosen(parse: Parse) -> None:
    message = doc("v3_up_json_v3.json") | {"deviceProfileName": "generic"}
    data = uplink(parse, v3_topic(BOSCH_EUI), message).data
    assert data.reading is not None
    assert (data.reading.decoder, data.reading.occupied) == ("object", False)


def test_a_v3_object_json_string_is_mapped(parse: Parse) -> None:
    message = doc("v3_up_protobuf_json.json") | {
        "deviceProfileName": "generic",
        "objectJSON": '{"status":"free"}',
    }
    data = uplink(parse, v3_topic(NWAVE_EUI), message).data
    assert data.reading is not None
    assert data.reading.occupied is False


def test_a_v3_fport_zero_uplink_is_mac_only(parse: Parse) -> None:
    message = doc("v3_up_json_v3.json") | {"fPort": 0, "data": None}
    result = parse(v3_topic(BOSCH_EUI), message)
    assert (result.outcome, result.reason) == ("ignored", "mac_only")


def test_a_v3_error_is_device_logged(parse: Parse) -> None:
    (event,) = parse(v3_topic(BOSCH_EUI, "error"), raw("v3_error.json")).events
    assert isinstance(event, DeviceLogged)
    assert (event.data.level, event.data.code) == ("ERROR", "UPLINK_CODEC")
    assert event.data.context == {"f_cnt": "11"}


def test_a_v3_status_reports_the_battery(parse: Parse) -> None:
    (event,) = parse(v3_topic(BOSCH_EUI, "status"), raw("v3_status.json")).events
    assert isinstance(event, DeviceStatusReported)
    assert (event.data.margin, event.data.battery_level) == (6, 75.5)


def test_v3_ack_and_txack_are_ignored_for_lack_of_a_queue_item(parse: Parse) -> None:
    ack = {"applicationID": "12", "devEUI": BOSCH_EUI, "acknowledged": True, "fCnt": 3}
    for event in ("ack", "txack"):
        result = parse(v3_topic(BOSCH_EUI, event), ack)
        assert (result.outcome, result.reason) == ("ignored", "no_queue_item")


def test_a_v3_eui_mismatch_is_rejected_in_either_encoding(parse: Parse) -> None:
    hex_form = parse(v3_topic("0202020202020202"), raw("v3_up_json_v3.json"))
    b64_form = parse(v3_topic("0202020202020202"), raw("v3_up_protobuf_json.json"))
    assert hex_form.reason == b64_form.reason == "eui_mismatch"


def test_a_v3_eui_that_is_neither_hex_nor_eight_bytes_of_base64_is_bad(parse: Parse) -> None:
    short = base64.b64encode(bytes(4)).decode()
    result = parse(v3_topic(BOSCH_EUI), doc("v3_up_json_v3.json") | {"devEUI": short})
    assert (result.outcome, result.reason) == ("rejected", "bad_eui")


def test_log_is_not_a_v3_event(parse: Parse) -> None:
    result = parse(v3_topic(BOSCH_EUI, "log"), raw("v3_error.json"))
    assert (result.outcome, result.reason) == ("rejected", "unknown_event")
