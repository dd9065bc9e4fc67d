"""Tekzitel TEKZIPARK: flag byte, temperature, parking id, optional beacons."""

from __future__ import annotations

from parkstream.decoders import tekzitel
from parkstream.decoders.base import BAD_LENGTH, UNKNOWN_PORT, DecodeFailure
from parkstream.domain.device_events import Reading


def decode(f_port: int, hex_payload: str) -> Reading:
    result = tekzitel.decode(f_port, bytes.fromhex(hex_payload))
    assert isinstance(result, Reading), result
    return result


def test_status_reads_bit_seven_as_occupied_and_the_other_flags() -> None:
    reading = decode(1, "a9" + "ec" + "07")  # 1010_1001: occupied, good battery, radar, keepAlive
    assert reading.kind == "parking_status"
    assert reading.occupied is True
    assert reading.temperature_c == -20.0
    assert reading.fields == {
        "keep_alive": True,
        "reset": False,
        "no_beacon": False,
        "radar": True,
        "obstruction": False,
        "good_battery": True,
        "parking_id": 7,
    }


def test_free_bay_has_bit_seven_clear() -> None:
    assert decode(1, "211405").occupied is False


def test_status_with_beacons_lists_their_big_endian_ids_and_rssi() -> None:
    reading = decode(1, "80" + "14" + "01" + "b5" + "1234" + "abcd")
    assert reading.fields["beacon_rssi"] == -75
    assert reading.fields["beacon_count"] == 2
    assert reading.fields["beacons"] == f"{0x1234},{0xABCD}"


def test_a_dangling_beacon_byte_is_a_bad_length_failure() -> None:
    result = tekzitel.decode(1, bytes.fromhex("801401b512"))
    assert isinstance(result, DecodeFailure)
    assert result.reason == BAD_LENGTH


def test_debug_frame_carries_the_same_flags_and_the_magnetometer_values() -> None:
    reading = decode(2, "80" + "14" + "03" + "fe0102" + "f00f10" + "05" + "00" + "07")
    assert reading.kind == "debug"
    assert reading.occupied is True
    assert reading.fields["deflection_x"] == -2
    assert reading.fields["baseline_x"] == -16
    assert reading.fields["baseline_z"] == 16
    assert reading.fields["fault_code"] == 5
    assert reading.fields["d_reflection"] == 7


def test_config_frame_says_nothing_about_occupancy() -> None:
    reading = decode(3, "0102030405060708")
    assert (reading.kind, reading.occupied) == ("config", None)


def test_short_status_and_unknown_port_are_failures() -> None:
    short = tekzitel.decode(1, b"\x80\x14")
    unknown = tekzitel.decode(9, b"\x80\x14\x01")
    assert isinstance(short, DecodeFailure)
    assert short.reason == BAD_LENGTH
    assert isinstance(unknown, DecodeFailure)
    assert unknown.reason == UNKNOWN_PORT
