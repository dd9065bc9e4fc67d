"""v4 protobuf payloads (``json=false``) give the same events as v4 JSON."""

from __future__ import annotations

from typing import Any

import pytest
from chirpstack_api import common, gw, integration
from google.protobuf import json_format

from parkstream.domain.device_events import DownlinkTransmitted, UplinkObserved
from parkstream.domain.ids import derive_id

from .conftest import Parse
from .messages import BOSCH_EUI, KUANDO_EUI, NWAVE_EUI, doc, raw, v4_topic


def as_protobuf(name: str, message: Any) -> bytes:
    """The JSON fixture converted to its protobuf form, serialised as ChirpStack sends it."""
    payload: bytes = json_format.ParseDict(doc(name), message).SerializeToString()
    return payload


def test_a_protobuf_uplink_gives_exactly_the_events_of_its_json_form(parse: Parse) -> None:
    from_json = parse(v4_topic(BOSCH_EUI), raw("v4_up_bosch.json"))
    from_pb = parse(v4_topic(BOSCH_EUI), as_protobuf("v4_up_bosch.json", integration.UplinkEvent()))
    assert from_pb.outcome == "accepted"
    assert from_pb.events == from_json.events
    assert from_pb.dedup_key == from_json.dedup_key


def test_a_protobuf_uplink_built_field_by_field_is_decoded(parse: Parse) -> None:
    event = integration.UplinkEvent(
        deduplication_id="c9dd4f5c-8d76-4b9e-a5c0-4a0e4e1f0b6e",
        device_info=integration.DeviceInfo(
            dev_eui=NWAVE_EUI,
            device_profile_name="Nwave NPS405",
            device_class_enabled=common.DeviceClass.CLASS_A,
            tags={"site": "north"},
        ),
        dev_addr="01ab2c3d",
        f_cnt=7,
        f_port=1,
        data=bytes([0x95]),
        rx_info=[gw.UplinkRxInfo(gateway_id="0016c001ff10a235", rssi=-100, snr=-3.5)],
        tx_info=gw.UplinkTxInfo(
            frequency=868_100_000,
            modulation=gw.Modulation(lora=gw.LoraModulationInfo(spreading_factor=10)),
        ),
    )
    event.time.FromNanoseconds(1_784_801_742_000_000_001)
    payload = event.SerializeToString()
    assert payload[0] == 0x0A  # field 1, as protocols.md says: not a "{"

    result = parse(v4_topic(NWAVE_EUI), payload)
    (up,) = result.events
    assert isinstance(up, UplinkObserved)
    assert up.data.time_ns == 1_784_801_742_000_000_001
    assert up.data.reading is not None
    assert (up.data.reading.occupied, up.data.reading.fields["previous_state_duration"]) == (
        True,
        74,
    )
    assert (up.data.radio.rssi, up.data.radio.spreading_factor) == (-100, 10)
    assert up.data.device.tags == {"site": "north"}
    assert up.data.device.device_class == "CLASS_A"


def test_a_protobuf_txack_gives_the_events_of_its_json_form(parse: Parse) -> None:
    payload = as_protobuf("v4_txack.json", integration.TxAckEvent())
    (event,) = parse(v4_topic(KUANDO_EUI, "txack"), payload).events
    (expected,) = parse(v4_topic(KUANDO_EUI, "txack"), raw("v4_txack.json")).events
    assert isinstance(event, DownlinkTransmitted)
    assert event == expected


def test_a_protobuf_mac_only_uplink_is_ignored(parse: Parse) -> None:
    payload = as_protobuf("v4_up_mac_only.json", integration.UplinkEvent())
    result = parse(v4_topic(BOSCH_EUI), payload)
    assert (result.outcome, result.reason) == ("ignored", "mac_only")


def test_a_protobuf_payload_is_read_with_the_message_class_of_the_topic_event(
    parse: Parse,
) -> None:
    payload = as_protobuf("v4_join.json", integration.JoinEvent())
    (event,) = parse(v4_topic(KUANDO_EUI, "join"), payload).events
    assert event.event_id == derive_id(
        "mqtt", KUANDO_EUI, "join", "e7a4c1b2-9f3d-4c5e-8a6b-7d1e2f3a4b5c"
    )


def test_a_protobuf_eui_mismatch_is_rejected(parse: Parse) -> None:
    payload = as_protobuf("v4_up_bosch.json", integration.UplinkEvent())
    result = parse(v4_topic(NWAVE_EUI), payload)
    assert (result.outcome, result.reason) == ("rejected", "eui_mismatch")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\x0a\xff\xff\xff\xff\x0f", "invalid_protobuf"),  # a length past the end
        (b"\x0a\x02\xc3\x28", "invalid_protobuf"),  # a string that is not UTF-8
        (b"\x08\x01", "missing_field:deviceInfo"),  # parses, but is no uplink
        (b"[1, 2]", "not_object"),
    ],
)
def test_bytes_that_are_no_usable_protobuf_are_rejected(
    parse: Parse, payload: bytes, reason: str
) -> None:
    result = parse(v4_topic(BOSCH_EUI), payload)
    assert (result.outcome, result.reason) == ("rejected", reason)


def test_a_dialect_hint_forces_protobuf(parse: Parse) -> None:
    result = parse(v4_topic(BOSCH_EUI), raw("v4_up_bosch.json"), dialect_hint="v4_protobuf")
    assert result.outcome == "rejected"
