"""Browan TBMS100 (PIR): the TTN codec example."""

from __future__ import annotations

import pytest

from parkstream.decoders import browan_tbms100
from parkstream.decoders.base import BAD_LENGTH, UNKNOWN_PORT, DecodeFailure
from parkstream.domain.device_events import Reading


def test_codec_example_is_occupied_at_3_6_volts_and_20_degrees() -> None:
    reading = browan_tbms100.decode(102, bytes.fromhex("01bb340400dc7801"))
    assert isinstance(reading, Reading)
    assert reading.kind == "motion_status"
    assert reading.occupied is True
    assert reading.battery_v == pytest.approx(3.6)
    assert reading.temperature_c == 20.0
    assert reading.fields == {"time": 4, "count": 96476}


def test_status_bit_clear_is_free() -> None:
    reading = browan_tbms100.decode(102, bytes.fromhex("00bb340400dc7801"))
    assert isinstance(reading, Reading)
    assert reading.occupied is False


def test_other_ports_and_short_frames_are_failures() -> None:
    unknown = browan_tbms100.decode(42, b"\x01")
    short = browan_tbms100.decode(102, bytes(7))
    assert isinstance(unknown, DecodeFailure)
    assert unknown.reason == UNKNOWN_PORT
    assert isinstance(short, DecodeFailure)
    assert short.reason == BAD_LENGTH
