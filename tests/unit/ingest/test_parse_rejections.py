"""Whole-message refusals: size, emptiness, JSON shape and nesting, topics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pytest

from parkstream.decoders.registry import DecoderRegistry
from parkstream.ingest.limits import Limits
from parkstream.ingest.parse import parse_message

from .conftest import Parse
from .messages import BOSCH_EUI, V4_APP, doc, raw, v4_topic


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty_payload"),
        (b" \r\n", "empty_payload"),
        (b"{not json", "invalid_json"),
        (b'{"a": "\xff"}', "invalid_json"),
        (b"[" * 2000, "too_deep"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "too_deep"),
        (b"\x00" * (64 * 1024 + 1), "too_large"),
    ],
)
def test_unusable_payloads_are_rejected(parse: Parse, payload: bytes, reason: str) -> None:
    result = parse(v4_topic(BOSCH_EUI), payload)
    assert (result.outcome, result.reason, result.events) == ("rejected", reason, ())


def test_a_json_value_that_is_not_an_object_is_rejected(parse: Parse) -> None:
    for payload in (b'"up"', b"[1]", b"42", b"null"):
        assert parse(v4_topic(BOSCH_EUI), payload).reason == "not_object"


def test_a_json_array_on_a_legacy_topic_is_not_an_object(parse: Parse) -> None:
    result = parse(f"application/12/device/{BOSCH_EUI}/rx", b"[1]")
    assert result.reason == "not_object"


def test_binary_on_a_legacy_topic_is_invalid_json(parse: Parse) -> None:
    result = parse(f"application/12/device/{BOSCH_EUI}/rx", b"\x0a\x01x")
    assert result.reason == "invalid_json"


def test_a_very_long_string_is_rejected(parse: Parse) -> None:
    message = doc("v4_up_bosch.json")
    message["deviceInfo"]["deviceName"] = "x" * 5000
    assert parse(v4_topic(BOSCH_EUI), message).reason == "string_too_long"


def test_limits_are_configurable() -> None:
    result = parse_message(
        v4_topic(BOSCH_EUI),
        raw("v4_up_bosch.json"),
        recorded_at=datetime(2026, 7, 23),
        decoders=DecoderRegistry.default(),
        limits=Limits(max_payload_bytes=100),
    )
    assert result.reason == "too_large"


def test_a_naive_recorded_at_is_taken_as_utc(parse: Parse) -> None:
    result = parse(v4_topic(BOSCH_EUI), raw("v4_up_bosch.json"), recorded_at=datetime(2026, 7, 23))
    assert result.outcome == "accepted"
    assert result.events[0].recorded_at.utcoffset() is not None


@pytest.mark.parametrize(
    ("topic", "outcome", "reason"),
    [
        ("devices/x/up", "rejected", "bad_topic"),
        (f"application/{V4_APP}/device/not-an-eui/event/up", "rejected", "bad_eui"),
        (
            f"application/{V4_APP}/device/{BOSCH_EUI}/event/integration",
            "ignored",
            "unsupported_event",
        ),
        (f"application/{V4_APP}/device/{BOSCH_EUI}/command/down", "ignored", "command_topic"),
    ],
)
def test_the_topic_decides_before_the_payload(
    parse: Parse, topic: str, outcome: str, reason: str
) -> None:
    result = parse(topic, raw("v4_up_bosch.json"))
    assert (result.outcome, result.reason, result.events) == (outcome, reason, ())


def test_a_topic_or_payload_of_the_wrong_type_is_rejected_not_raised(parse: Parse) -> None:
    wrong_topic: Any = b"application/x"
    wrong_payload: Any = "{}"
    assert parse(wrong_topic, b"{}").reason == "bad_topic"
    assert parse(v4_topic(BOSCH_EUI), wrong_payload).reason == "bad_payload"


def test_a_v3_dialect_hint_reads_a_v4_payload_as_v3(parse: Parse) -> None:
    result = parse(v4_topic(BOSCH_EUI), raw("v4_up_bosch.json"), dialect_hint="v3_json")
    assert result.reason == "missing_field:devEUI"


def test_a_payload_without_any_dialect_marker_is_read_as_v4(parse: Parse) -> None:
    result = parse(v4_topic(BOSCH_EUI), orjson.dumps({"fPort": 1}))
    assert result.reason == "missing_field:deviceInfo"
