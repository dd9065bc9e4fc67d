"""Property: parse_message is total. Any topic, any bytes: a result, never an exception."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from chirpstack_api import integration
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from parkstream.decoders.registry import DecoderRegistry
from parkstream.domain import contract
from parkstream.ingest.parse import parse_message
from parkstream.ingest.result import ParseResult

from .messages import BOSCH_EUI, doc, v3_topic, v4_topic

REGISTRY = DecoderRegistry.default()
RECORDED_AT = datetime(2026, 7, 23, tzinfo=UTC)
EVENTS = ["up", "join", "ack", "txack", "status", "log", "location", "error", "rx", "x"]
FIXTURES = {
    "up": "v4_up_bosch.json",
    "join": "v4_join.json",
    "ack": "v4_ack.json",
    "txack": "v4_txack.json",
    "log": "v4_log_expired.json",
    "status": "v4_status.json",
    "location": "v4_location.json",
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
topics = st.one_of(
    st.text(max_size=120),
    st.sampled_from(EVENTS).map(lambda e: v4_topic(BOSCH_EUI, e)),
    st.sampled_from(EVENTS).map(lambda e: v3_topic(BOSCH_EUI, e)),
)


def check(result: ParseResult) -> None:
    assert result.outcome in ("accepted", "ignored", "rejected")
    assert result.reason != "internal_error", result.detail
    if result.outcome == "rejected":
        assert result.reason
        assert result.events == ()
    if result.outcome == "accepted":
        assert result.events
        assert result.dedup_key
        for event in result.events:  # every event is a valid record of the public contract
            assert contract.decode(contract.encode(event)) == event


def run(topic: str, payload: bytes) -> ParseResult:
    return parse_message(topic, payload, recorded_at=RECORDED_AT, decoders=REGISTRY)


@given(topic=topics, payload=st.binary(max_size=512))
def test_any_topic_and_any_bytes_give_a_result(topic: str, payload: bytes) -> None:
    check(run(topic, payload))


@settings(max_examples=300)
@given(
    event=st.sampled_from(sorted(FIXTURES)),
    path=st.lists(st.text(max_size=1), min_size=1, max_size=3),
    value=json_values,
    data=st.data(),
)
def test_a_real_message_with_any_field_replaced_gives_a_result(
    event: str, path: list[str], value: object, data: st.DataObject
) -> None:
    message: dict[str, Any] = doc(FIXTURES[event])
    target: dict[str, Any] = message
    for _ in range(data.draw(st.integers(min_value=0, max_value=2))):
        nested = [k for k, v in target.items() if isinstance(v, dict)]
        if not nested:
            break
        target = target[data.draw(st.sampled_from(sorted(nested)))]
    key = data.draw(st.sampled_from([*sorted(target), "".join(path)]))
    target[key] = value
    check(run(v4_topic(BOSCH_EUI, event), orjson.dumps(message)))


@given(
    event=st.sampled_from(sorted(FIXTURES)),
    cut=st.integers(min_value=0, max_value=2000),
    flips=st.lists(
        st.tuples(st.integers(min_value=0, max_value=2000), st.integers(0, 255)), max_size=4
    ),
)
def test_a_truncated_or_corrupted_protobuf_gives_a_result(
    event: str, cut: int, flips: list[tuple[int, int]]
) -> None:
    classes = {
        "up": integration.UplinkEvent,
        "join": integration.JoinEvent,
        "ack": integration.AckEvent,
        "txack": integration.TxAckEvent,
        "log": integration.LogEvent,
        "status": integration.StatusEvent,
        "location": integration.LocationEvent,
    }
    message = json_format.ParseDict(doc(FIXTURES[event]), classes[event]())
    payload = bytearray(message.SerializeToString()[:cut])
    for index, byte in flips:
        if payload:
            payload[index % len(payload)] = byte
    check(run(v4_topic(BOSCH_EUI, event), bytes(payload)))
