"""Bosch TPS110: the TTN codec examples and the frame layouts of protocols.md."""

from __future__ import annotations

import pytest

from parkstream.decoders import bosch_tps110
from parkstream.decoders.base import BAD_LENGTH, UNKNOWN_PORT, DecodeFailure
from parkstream.domain.device_events import Reading


def decode(f_port: int, hex_payload: str) -> Reading:
    result = bosch_tps110.decode(f_port, bytes.fromhex(hex_payload))
    assert isinstance(result, Reading), result
    return result


@pytest.mark.parametrize(("payload", "occupied"), [("01", True), ("00", False), ("fe", False)])
def test_parking_status_reads_bit_zero_as_occupancy(payload: str, occupied: bool) -> None:
    reading = decode(1, payload)
    assert reading.kind == "parking_status"
    assert reading.occupied is occupied


def test_heartbeat_example_is_occupied_at_minus_one_degree() -> None:
    reading = decode(2, "01ff")
    assert (reading.kind, reading.occupied, reading.temperature_c) == ("heartbeat", True, -1.0)


def test_heartbeat_without_temperature_byte_still_reports_occupancy() -> None:
    reading = decode(2, "00")
    assert reading.occupied is False
    assert reading.temperature_c is None


def test_startup_example_gives_codes_804_885_firmware_0_29_2_and_occupancy() -> None:
    codec_example = bytes([0x24, 3, 0, 0, 0x75, 3, 0, 0, 0, 0, 0, 0, 0, 29, 2, 3, 1])
    reading = decode(3, codec_example.hex())
    assert reading.kind == "startup"
    assert reading.occupied is True
    assert reading.fields == {
        "debug_codes": "804,885",
        "firmware_version": "0.29.2",
        "reset_cause": "system request",
    }


def test_startup_names_an_unknown_reset_cause_by_its_number() -> None:
    payload = bytes(12) + bytes((0, 29, 2, 9, 0))
    reading = bosch_tps110.decode(3, payload)
    assert isinstance(reading, Reading)
    assert reading.fields["reset_cause"] == "unknown(9)"
    assert reading.occupied is False


def test_short_startup_frame_is_a_bad_length_failure() -> None:
    result = bosch_tps110.decode(3, bytes(16))
    assert isinstance(result, DecodeFailure)
    assert result.reason == BAD_LENGTH


@pytest.mark.parametrize(
    ("f_port", "kind"), [(4, "device_info"), (5, "device_usage"), (6, "debug")]
)
def test_info_usage_and_debug_frames_say_nothing_about_occupancy(f_port: int, kind: str) -> None:
    reading = decode(f_port, "0102030405")
    assert reading.kind == kind
    assert reading.occupied is None
    assert reading.fields["raw_hex"] == "0102030405"


def test_debug_frame_of_ten_bytes_gives_timestamp_code_and_sequence() -> None:
    reading = decode(6, "78563412" + "2403" + "0000" + "0201")
    assert reading.fields["timestamp"] == 0x12345678
    assert reading.fields["debug_code"] == 804
    assert reading.fields["sequence_number"] == 0x0102


def test_unknown_port_is_a_failure_not_an_exception() -> None:
    result = bosch_tps110.decode(7, b"\x01")
    assert isinstance(result, DecodeFailure)
    assert result.reason == UNKNOWN_PORT


def test_empty_status_frame_is_a_bad_length_failure() -> None:
    result = bosch_tps110.decode(1, b"")
    assert isinstance(result, DecodeFailure)
    assert result.reason == BAD_LENGTH
