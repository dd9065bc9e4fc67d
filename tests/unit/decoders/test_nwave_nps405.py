"""Nwave NPS405: occupancy in bit 0 (the codec's own examples), durations, heartbeat."""

from __future__ import annotations

import pytest

from parkstream.decoders import nwave_nps405
from parkstream.decoders.base import BAD_LENGTH, UNKNOWN_PORT, DecodeFailure
from parkstream.domain.device_events import Reading


def decode(f_port: int, hex_payload: str) -> Reading:
    result = nwave_nps405.decode(f_port, bytes.fromhex(hex_payload))
    assert isinstance(result, Reading), result
    return result


def test_example_0x95_is_occupied_with_previous_state_duration_74() -> None:
    reading = decode(1, "95")
    assert reading.kind == "parking_status"
    assert reading.occupied is True
    assert reading.fields["previous_state_duration"] == 74
    assert reading.fields["previous_state_duration_error"] == 0
    assert reading.fields["previous_state_duration_overflow"] is False


def test_bit_seven_alone_does_not_mean_occupied() -> None:
    # The superseded codec read bit 7; 0x80 has bit 0 clear, so the bay is free.
    assert decode(1, "80").occupied is False


@pytest.mark.parametrize(
    ("compressed", "expected"),
    [
        (0, (0, 0, False)),
        (89, (89, 0, False)),
        (90, (90, 4, False)),
        (104, (160, 4, False)),
        (119, (235, 4, False)),
        (120, (240, 59, False)),
        (126, (600, 59, False)),
        (127, (660, None, True)),
    ],
)
def test_compressed_duration_expands_by_the_stated_rule(
    compressed: int, expected: tuple[int, int | None, bool]
) -> None:
    assert nwave_nps405.expand_duration(compressed) == expected


def test_heartbeat_example_gives_battery_temperature_and_health() -> None:
    reading = decode(2, "00d3d800590b")
    assert reading.kind == "heartbeat"
    assert reading.occupied is False
    assert reading.battery_v == pytest.approx(3.344)
    assert reading.temperature_c == -10.0
    assert reading.fields["battery_health"] == "normal"
    assert reading.fields["hw_health_status"] == 0


@pytest.mark.parametrize(
    ("battery_mv", "temperature", "health"),
    [
        (3000, 20.0, "normal"),
        (2999, 20.0, "low"),
        (2899, 20.0, "critical"),
        (2900, -10.0, "normal"),
        (2850, -10.0, "low"),
        (2799, -10.0, "critical"),
    ],
)
def test_battery_health_thresholds_drop_below_minus_five_degrees(
    battery_mv: int, temperature: float, health: str
) -> None:
    assert nwave_nps405.battery_health(battery_mv, temperature) == health


def test_startup_example_gives_firmware_reset_cause_and_occupancy() -> None:
    reading = decode(3, "0204090200")
    assert reading.kind == "startup"
    assert reading.occupied is False
    assert reading.fields == {"firmware_version": "2.4.9", "reset_cause": "power_on"}


def test_tag_registration_example_keeps_occupancy_out_of_the_reading() -> None:
    reading = decode(10, "d1201f345678")
    assert reading.kind == "tag_registration"
    assert reading.occupied is None
    assert reading.fields["sensor_occupied"] is True
    assert reading.fields["previous_state_duration"] == 160
    assert reading.fields["tag_battery_voltage"] == pytest.approx(3.2)
    assert reading.fields["tag_id"] == "1F345678"


def test_debug_frame_says_nothing_about_occupancy() -> None:
    reading = decode(6, "0a0b")
    assert (reading.kind, reading.occupied, reading.fields["raw_hex"]) == ("debug", None, "0a0b")


def test_short_heartbeat_is_a_bad_length_failure() -> None:
    result = nwave_nps405.decode(2, b"\x00\xd3")
    assert isinstance(result, DecodeFailure)
    assert result.reason == BAD_LENGTH


def test_unknown_port_is_a_failure() -> None:
    result = nwave_nps405.decode(4, b"\x00")
    assert isinstance(result, DecodeFailure)
    assert result.reason == UNKNOWN_PORT
