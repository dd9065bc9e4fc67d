"""v4 ``up`` events, as ChirpStack writes them, to UplinkObserved."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest

from parkstream.decoders.registry import DecoderRegistry
from parkstream.domain.device_events import UplinkObserved
from parkstream.domain.ids import derive_id

from .conftest import Parse
from .messages import (
    BOSCH_EUI,
    CODEC_EUI,
    KUANDO_EUI,
    NWAVE_EUI,
    RECORDED_AT,
    V4_APP,
    doc,
    raw,
    v4_topic,
)

BOSCH_DEDUP = "3ac7e3c4-4401-4b8d-9386-a5c902f9202d"


def uplink(parse: Parse, topic: str, payload: bytes | dict[str, object]) -> UplinkObserved:
    result = parse(topic, payload)
    assert result.outcome == "accepted", (result.reason, result.detail)
    (event,) = result.events
    assert isinstance(event, UplinkObserved)
    return event


def test_a_bosch_status_uplink_becomes_an_occupied_reading(parse: Parse) -> None:
    event = uplink(parse, v4_topic(BOSCH_EUI), raw("v4_up_bosch.json"))
    assert event.dev_eui == BOSCH_EUI
    assert (event.data.f_port, event.data.f_cnt, event.data.data_b64) == (1, 42, "AQ==")
    assert event.data.reading is not None
    assert (event.data.reading.decoder, event.data.reading.occupied) == ("bosch_tps110", True)
    assert event.data.decode_error is None


def test_device_info_and_frame_fields_are_copied(parse: Parse) -> None:
    data = uplink(parse, v4_topic(BOSCH_EUI), raw("v4_up_bosch.json")).data
    assert data.device.application_id == V4_APP
    assert data.device.device_profile_name == "Bosch TPS110 EU868"
    assert data.device.device_class == "CLASS_A"
    assert data.device.tags == {"site": "north"}
    assert (data.dev_addr, data.adr, data.dr, data.confirmed) == ("00189440", True, 5, False)


def test_the_event_time_keeps_nanoseconds_and_occurred_at_microseconds(parse: Parse) -> None:
    event = uplink(parse, v4_topic(BOSCH_EUI), raw("v4_up_bosch.json"))
    assert event.data.time_ns == 1_784_801_742_123_456_789
    assert event.occurred_at == datetime(2026, 7, 23, 10, 15, 42, 123456, tzinfo=UTC)
    assert event.recorded_at == RECORDED_AT


def test_the_radio_summary_is_the_best_gateway_and_everyone_who_heard(parse: Parse) -> None:
    radio = uplink(parse, v4_topic(BOSCH_EUI), raw("v4_up_bosch.json")).data.radio
    assert (radio.rssi, radio.snr) == (-71, 9.25)
    assert radio.gateway_ids == ("0016c001ff10a235", "0016c001ff10a236")
    assert (radio.frequency, radio.spreading_factor) == (868_500_000, 7)


def test_the_event_id_derives_from_the_deduplication_id(parse: Parse) -> None:
    result = parse(v4_topic(BOSCH_EUI), raw("v4_up_bosch.json"))
    (event,) = result.events
    assert event.event_id == derive_id("mqtt", BOSCH_EUI, "up", BOSCH_DEDUP)
    assert event.correlation_id == event.event_id
    assert event.source.kind == "mqtt"
    assert event.source.topic == v4_topic(BOSCH_EUI)
    assert event.source.dedup_id == BOSCH_DEDUP
    assert result.dedup_key == f"up:{BOSCH_EUI}:{BOSCH_DEDUP}"


def test_the_same_message_redelivered_later_yields_the_same_event_id(parse: Parse) -> None:
    first = parse(v4_topic(BOSCH_EUI), raw("v4_up_bosch.json"))
    again = parse(
        v4_topic(BOSCH_EUI),
        raw("v4_up_bosch.json"),
        recorded_at=datetime(2026, 7, 24, tzinfo=UTC),
    )
    assert first.events[0].event_id == again.events[0].event_id
    assert first.dedup_key == again.dedup_key


def test_nwave_0x95_is_occupied_with_duration_74(parse: Parse) -> None:
    reading = uplink(parse, v4_topic(NWAVE_EUI), raw("v4_up_nwave.json")).data.reading
    assert reading is not None
    assert (reading.decoder, reading.occupied) == ("nwave_nps405", True)
    assert reading.fields["previous_state_duration"] == 74


def test_fport_zero_is_mac_only_and_never_a_free_reading(parse: Parse) -> None:
    result = parse(v4_topic(BOSCH_EUI), raw("v4_up_mac_only.json"))
    assert (result.outcome, result.reason, result.events) == ("ignored", "mac_only", ())
    assert result.dedup_key is not None


def test_an_empty_frame_on_a_data_port_is_mac_only(parse: Parse) -> None:
    message = doc("v4_up_bosch.json") | {"data": ""}
    result = parse(v4_topic(BOSCH_EUI), message)
    assert (result.outcome, result.reason) == ("ignored", "mac_only")


def test_a_kuando_status_uplink_is_a_display_reading(parse: Parse) -> None:
    reading = uplink(parse, v4_topic(KUANDO_EUI), raw("v4_up_kuando_status.json")).data.reading
    assert reading is not None
    assert (reading.kind, reading.occupied) == ("display_status", None)
    assert reading.display is not None
    assert reading.display.frame_hex == "0000ffff00"


def test_a_codec_object_is_mapped_when_no_binary_decoder_applies(parse: Parse) -> None:
    event = uplink(parse, v4_topic(CODEC_EUI), raw("v4_up_codec_object.json"))
    reading = event.data.reading
    assert reading is not None
    assert (reading.decoder, reading.occupied, reading.battery_v) == ("object", True, 3.6)
    assert event.data.confirmed is True


def test_an_unknown_device_type_keeps_the_uplink_without_reading_or_error(parse: Parse) -> None:
    message = doc("v4_up_codec_object.json")
    del message["object"]
    result = parse(v4_topic(CODEC_EUI), message)
    (event,) = result.events
    assert isinstance(event, UplinkObserved)
    assert (result.outcome, result.reason) == ("accepted", None)
    assert (event.data.reading, event.data.decode_error) == (None, None)


def test_an_undecodable_frame_keeps_the_uplink_with_its_decode_error(parse: Parse) -> None:
    message = doc("v4_up_bosch.json") | {"fPort": 3, "data": base64.b64encode(bytes(5)).decode()}
    result = parse(v4_topic(BOSCH_EUI), message)
    assert (result.outcome, result.reason) == ("accepted", "decode_error:bad_length")
    (event,) = result.events
    assert isinstance(event, UplinkObserved)
    assert event.data.reading is None
    assert event.data.decode_error is not None
    assert event.data.decode_error.startswith("bosch_tps110: bad_length")


def test_a_registry_override_picks_the_decoder(parse: Parse) -> None:
    registry = DecoderRegistry.default().with_overrides({BOSCH_EUI: "browan_tbms100"})
    result = parse(v4_topic(BOSCH_EUI), raw("v4_up_bosch.json"), decoders=registry)
    assert result.reason == "decode_error:unknown_port"


def test_an_upper_case_topic_eui_is_accepted_and_normalised(parse: Parse) -> None:
    result = parse(v4_topic(NWAVE_EUI.upper()), raw("v4_up_nwave.json"))
    assert result.outcome == "accepted"
    assert result.events[0].dev_eui == NWAVE_EUI


def test_a_payload_eui_that_differs_from_the_topic_is_rejected(parse: Parse) -> None:
    result = parse(v4_topic("0202020202020202"), raw("v4_up_bosch.json"))
    assert (result.outcome, result.reason) == ("rejected", "eui_mismatch")


def test_an_absent_time_falls_back_to_recorded_at(parse: Parse) -> None:
    message = doc("v4_up_bosch.json")
    del message["time"]
    event = uplink(parse, v4_topic(BOSCH_EUI), message)
    assert event.occurred_at == RECORDED_AT
    assert event.data.time_ns is None


def test_proto3_defaults_apply_to_absent_fields(parse: Parse) -> None:
    message = doc("v4_up_bosch.json")
    for key in ("adr", "dr", "fCnt", "confirmed", "rxInfo", "txInfo", "devAddr"):
        del message[key]
    data = uplink(parse, v4_topic(BOSCH_EUI), message).data
    assert (data.adr, data.dr, data.f_cnt, data.confirmed, data.dev_addr) == (
        False,
        0,
        0,
        False,
        None,
    )
    assert data.radio.gateway_ids == ()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"data": "AQ"}, "bad_base64"),
        ({"data": "AQ==\n"}, "bad_base64"),
        ({"data": "-_8="}, "bad_base64"),
        ({"data": base64.b64encode(bytes(256)).decode()}, "frame_too_large"),
        ({"deduplicationId": ""}, "missing_field:deduplicationId"),
        ({"time": "yesterday"}, "bad_time"),
        ({"fPort": 256}, "bad_field:fPort"),
        ({"fPort": 1.0}, "bad_field:fPort"),
        ({"fCnt": "42"}, "bad_field:fCnt"),
        ({"fCnt": -1}, "bad_field:fCnt"),
        ({"adr": "true"}, "bad_field:adr"),
        ({"devAddr": "xyz"}, "bad_field:devAddr"),
        ({"rxInfo": {"gatewayId": "x"}}, "bad_field:rxInfo"),
        ({"rxInfo": ["x"]}, "bad_field:rxInfo[0]"),
        ({"rxInfo": [{"rssi": "-90"}]}, "bad_field:rxInfo[0].rssi"),
        ({"rxInfo": [{"gatewayId": "g"}] * 65}, "too_many:rxInfo"),
        ({"object": [1, 2]}, "bad_field:object"),
        ({"deviceInfo": None}, "missing_field:deviceInfo"),
        ({"deviceInfo": "x"}, "bad_field:deviceInfo"),
    ],
)
def test_malformed_fields_are_rejected_with_a_precise_reason(
    parse: Parse, change: dict[str, object], reason: str
) -> None:
    result = parse(v4_topic(BOSCH_EUI), doc("v4_up_bosch.json") | change)
    assert (result.outcome, result.reason) == ("rejected", reason)
    assert result.events == ()


@pytest.mark.parametrize(
    ("device_change", "reason"),
    [
        ({"devEui": ""}, "missing_field:deviceInfo.devEui"),
        ({"devEui": "01:01:01:01:01:01:01:01"}, "bad_eui"),
        ({"tags": {"a": 1}}, "bad_field:deviceInfo.tags"),
        ({"tags": {str(i): "x" for i in range(129)}}, "too_many:deviceInfo.tags"),
    ],
)
def test_malformed_device_info_is_rejected(
    parse: Parse, device_change: dict[str, object], reason: str
) -> None:
    message = doc("v4_up_bosch.json")
    message["deviceInfo"] = message["deviceInfo"] | device_change
    result = parse(v4_topic(BOSCH_EUI), message)
    assert (result.outcome, result.reason) == ("rejected", reason)


def test_an_upper_case_payload_eui_matches_its_lower_case_topic(parse: Parse) -> None:
    message = doc("v4_up_bosch.json")
    message["deviceInfo"]["devEui"] = "0101010101010101".upper()
    assert parse(v4_topic(BOSCH_EUI), orjson.dumps(message)).outcome == "accepted"
