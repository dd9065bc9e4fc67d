"""Kuando Busylight status uplinks wrapped as display readings."""

from __future__ import annotations

import base64

from parkstream.decoders import kuando
from parkstream.decoders.base import BAD_LENGTH, UNKNOWN_PORT, DecodeFailure
from parkstream.domain.device_events import Reading

STATUS_EXAMPLE = bytes.fromhex("d0ffffff1e00000008000000060000000000ffff00290c01")
TTN_GREEN_FRAME = "AAD//wA="  # the TTN codec's "turn green" downlink


def test_status_example_decodes_as_protocols_md_states() -> None:
    reading = kuando.decode(15, STATUS_EXAMPLE)
    assert isinstance(reading, Reading)
    assert reading.kind == "display_status"
    assert reading.occupied is None
    status = reading.display
    assert status is not None
    assert (status.rssi, status.snr) == (-48, 30)
    assert (status.messages_received, status.messages_sent) == (8, 6)
    assert (status.sw_rev, status.hw_rev, status.adr) == (41, 12, True)
    assert status.frame_hex == "0000ffff00"


def test_status_example_shows_the_ttn_green_frame() -> None:
    reading = kuando.decode(15, STATUS_EXAMPLE)
    assert isinstance(reading, Reading)
    assert reading.display is not None
    assert base64.b64encode(bytes.fromhex(reading.display.frame_hex)).decode() == TTN_GREEN_FRAME


def test_ten_byte_variant_gives_the_last_colour_and_sent_count() -> None:
    reading = kuando.decode(15, bytes.fromhex("06000000" + "ff000000ff" + "00"))
    assert isinstance(reading, Reading)
    assert reading.display is not None
    assert reading.display.frame_hex == "ff000000ff"
    assert reading.display.messages_sent == 6


def test_wrong_length_and_wrong_port_are_failures() -> None:
    short = kuando.decode(15, bytes(23))
    other_port = kuando.decode(1, STATUS_EXAMPLE)
    assert isinstance(short, DecodeFailure)
    assert short.reason == BAD_LENGTH
    assert isinstance(other_port, DecodeFailure)
    assert other_port.reason == UNKNOWN_PORT
