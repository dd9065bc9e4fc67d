"""Every captured message parses as expected into records the public contract reads back."""

from __future__ import annotations

import pytest

from parkstream.domain import contract

from .conftest import Parse
from .messages import (
    BOSCH_EUI,
    CODEC_EUI,
    KUANDO_EUI,
    NWAVE_EUI,
    raw,
    v3_topic,
    v4_topic,
)

CAPTURED = [
    ("v4_up_bosch.json", v4_topic(BOSCH_EUI), "accepted", "device.uplink_observed"),
    ("v4_up_nwave.json", v4_topic(NWAVE_EUI), "accepted", "device.uplink_observed"),
    ("v4_up_kuando_status.json", v4_topic(KUANDO_EUI), "accepted", "device.uplink_observed"),
    ("v4_up_codec_object.json", v4_topic(CODEC_EUI), "accepted", "device.uplink_observed"),
    ("v4_up_mac_only.json", v4_topic(BOSCH_EUI), "ignored", None),
    ("v4_join.json", v4_topic(KUANDO_EUI, "join"), "accepted", "device.joined"),
    ("v4_txack.json", v4_topic(KUANDO_EUI, "txack"), "accepted", "device.downlink_transmitted"),
    ("v4_ack.json", v4_topic(KUANDO_EUI, "ack"), "accepted", "device.downlink_acknowledged"),
    (
        "v4_ack_timeout.json",
        v4_topic(KUANDO_EUI, "ack"),
        "accepted",
        "device.downlink_acknowledged",
    ),
    ("v4_log_expired.json", v4_topic(KUANDO_EUI, "log"), "accepted", "device.downlink_dropped"),
    ("v4_log_codec.json", v4_topic(CODEC_EUI, "log"), "accepted", "device.logged"),
    ("v4_status.json", v4_topic(BOSCH_EUI, "status"), "accepted", "device.status_reported"),
    ("v4_location.json", v4_topic(BOSCH_EUI, "location"), "accepted", "device.location_reported"),
    ("v3_up_json_v3.json", v3_topic(BOSCH_EUI), "accepted", "device.uplink_observed"),
    ("v3_up_protobuf_json.json", v3_topic(NWAVE_EUI), "accepted", "device.uplink_observed"),
    ("v3_error.json", v3_topic(BOSCH_EUI, "error"), "accepted", "device.logged"),
    ("v3_status.json", v3_topic(BOSCH_EUI, "status"), "accepted", "device.status_reported"),
]


@pytest.mark.parametrize(("name", "topic", "outcome", "event_type"), CAPTURED)
def test_a_captured_message_gives_its_event_and_the_contract_reads_it_back(
    parse: Parse, name: str, topic: str, outcome: str, event_type: str | None
) -> None:
    result = parse(topic, raw(name))
    assert result.outcome == outcome, (result.reason, result.detail)
    assert [event.type for event in result.events] == ([event_type] if event_type else [])
    for event in result.events:
        assert contract.decode(contract.encode(event)) == event
