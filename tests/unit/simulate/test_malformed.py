"""Malformed copies are rejected by the ingest parser: they exercise the dead-letter path."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from parkstream.decoders.registry import DecoderRegistry
from parkstream.ingest.parse import parse_message
from parkstream.simulate.malformed import KINDS, Kind, malformed
from parkstream.simulate.messages import SimDevice, uplink

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DEVICE = SimDevice("a000000100000001", profile_name="Bosch TPS110 EU868")
TOPIC = DEVICE.topic("up", "t-prefix")


def parse(payload: bytes) -> tuple[str, str | None]:
    result = parse_message(TOPIC, payload, recorded_at=NOW, decoders=DecoderRegistry.default())
    return result.outcome, result.reason


def test_the_good_message_is_accepted() -> None:
    assert parse(uplink(DEVICE, f_port=1, payload=b"\x01", f_cnt=3, time=NOW)) == (
        "accepted",
        None,
    )


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("bad_json", "invalid_json"), ("bad_base64", "bad_base64"), ("eui_mismatch", "eui_mismatch")],
)
def test_each_malformed_kind_is_rejected(kind: Kind, reason: str) -> None:
    good = uplink(DEVICE, f_port=1, payload=b"\x01", f_cnt=3, time=NOW)
    assert parse(malformed(good, kind)) == ("rejected", reason)


def test_every_kind_is_covered() -> None:
    assert set(KINDS) == {"bad_json", "bad_base64", "eui_mismatch"}


def test_an_eui_ending_in_zero_is_still_changed() -> None:
    device = SimDevice("a000000100000010")
    good = uplink(device, f_port=1, payload=b"\x01", f_cnt=1, time=NOW)
    result = parse_message(
        device.topic("up"),
        malformed(good, "eui_mismatch"),
        recorded_at=NOW,
        decoders=DecoderRegistry.default(),
    )
    assert result.reason == "eui_mismatch"
