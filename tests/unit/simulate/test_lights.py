"""Kuando status uplinks, command/down parsing and what a light does with a frame."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parkstream.domain.kuando import colour_frame, decode_status, status_request
from parkstream.simulate.lights import (
    Command,
    Ignore,
    Refused,
    SendStatus,
    SetKeepAlive,
    ShowColour,
    encode_status,
    interpret,
    parse_command,
    parse_command_topic,
)

EUI = "2020204100c30a01"


@given(
    frame=st.binary(min_size=5, max_size=5),
    received=st.integers(0, 2**32 - 1),
    sent=st.integers(0, 2**32 - 1),
    rssi=st.integers(-(2**31), 2**31 - 1),
    snr=st.integers(-(2**31), 2**31 - 1),
    adr=st.booleans(),
)
def test_the_status_uplink_decodes_to_what_was_encoded(
    frame: bytes, received: int, sent: int, rssi: int, snr: int, adr: bool
) -> None:
    payload = encode_status(
        frame=frame, messages_received=received, messages_sent=sent, rssi=rssi, snr=snr, adr=adr
    )
    status = decode_status(payload)
    assert len(payload) == 24
    assert bytes.fromhex(status.frame_hex) == frame
    assert (status.messages_received, status.messages_sent) == (received, sent)
    assert (status.rssi, status.snr, status.adr) == (rssi, snr, adr)
    assert (status.sw_rev, status.hw_rev) == (41, 12)


def test_the_status_uplink_matches_the_documented_example() -> None:
    payload = encode_status(
        frame=bytes.fromhex("0000ffff00"), messages_received=8, messages_sent=6, rssi=-48, snr=30
    )
    assert payload.hex() == "d0ffffff1e00000008000000060000000000ffff00290c01"


def test_a_status_needs_a_five_byte_colour() -> None:
    with pytest.raises(ValueError, match="5 bytes"):
        encode_status(frame=b"\x00", messages_received=0, messages_sent=0)


def command(**fields: object) -> bytes:
    body: dict[str, object] = {
        "id": "4a1c9e3e-2b1f-4a57-9c55-7f0c2e3b8d11",
        "devEui": EUI,
        "confirmed": False,
        "fPort": 15,
        "data": "AAD//wA=",
    }
    body.update(fields)
    return orjson.dumps({k: v for k, v in body.items() if v is not None})


def test_a_valid_colour_command_is_parsed() -> None:
    parsed = parse_command(EUI, command(expiresAt="2026-11-02T08:00:00Z"))
    assert parsed == Command(
        "4a1c9e3e-2b1f-4a57-9c55-7f0c2e3b8d11", EUI, 15, bytes.fromhex("0000ffff00"), False
    )


def test_a_command_without_id_gets_one_as_chirpstack_does() -> None:
    first = parse_command(EUI, command(id=None))
    second = parse_command(EUI, command(id=""))
    assert isinstance(first, Command)
    assert isinstance(second, Command)
    assert first.id
    assert second.id
    assert first.id != second.id


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_object"),
        (command(devEui=EUI.upper()), "eui_mismatch"),
        (command(devEui="2020204100010002"), "eui_mismatch"),
        (command(devEui=None), "eui_mismatch"),
        (command(fPort=0), "bad_f_port"),
        (command(fPort=256), "bad_f_port"),
        (command(fPort=True), "bad_f_port"),
        (command(fPort="15"), "bad_f_port"),
        (command(data="AAD//wA"), "bad_base64"),
        (command(data="%%%"), "bad_base64"),
        (command(data=""), "bad_length"),
        (command(data=None, object={"colour": "green"}), "bad_data"),
        (command(confirmed="yes"), "bad_confirmed"),
        (command(id=7), "bad_id"),
    ],
)
def test_commands_chirpstack_would_drop_are_refused(payload: bytes, reason: str) -> None:
    refused = parse_command(EUI, payload)
    assert isinstance(refused, Refused)
    assert refused.reason == reason


def test_command_topics_are_split_with_their_prefix() -> None:
    parsed = parse_command_topic(f"t-1/x/application/app/device/{EUI}/command/down")
    assert parsed is not None
    assert (parsed.prefix, parsed.application_id, parsed.dev_eui) == ("t-1/x", "app", EUI)
    assert parse_command_topic(f"application/app/device/{EUI}/event/up") is None


def test_a_light_shows_a_colour_frame_and_understands_two_byte_commands() -> None:
    green = colour_frame(0, 255, 0)
    assert interpret(15, green.payload) == ShowColour(green.payload)
    assert interpret(15, status_request().payload) == SendStatus()
    assert interpret(15, b"\x04\x0a") == SetKeepAlive(10)


@pytest.mark.parametrize(
    ("f_port", "data"), [(16, bytes(5)), (15, b"\x01"), (15, bytes(6)), (15, b"\xaa\x00")]
)
def test_a_light_ignores_what_it_does_not_understand(f_port: int, data: bytes) -> None:
    assert isinstance(interpret(f_port, data), Ignore)


def test_the_documented_green_example_is_a_colour() -> None:
    raw = base64.b64decode("AAD//wA=")
    assert interpret(15, raw) == ShowColour(colour_frame(0, 255, 0).payload)
