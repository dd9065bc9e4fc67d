"""Browan TBMS100 PIR motion sensor: an occupancy proxy, not a bay sensor.

fPort 102, 8 bytes: ``status`` b0 bit0 (motion -> occupied); battery
(25+(b1&0x0F))/10 V; board temperature (b2&0x7F)-32 °C; ``time`` uint16 LE
b3..b4; ``count`` uint24 LE b5..b7 (after the TTN lorawan-devices codec).
"""

from __future__ import annotations

from parkstream.decoders.base import DecodeResult, bit, too_short, unknown_port
from parkstream.domain.device_events import Reading

NAME = "browan_tbms100"
F_PORT = 102
LENGTH = 8


def decode(f_port: int, payload: bytes) -> DecodeResult:
    """Decode one TBMS100 uplink frame."""
    if f_port != F_PORT:
        return unknown_port(NAME, f_port)
    failure = too_short(NAME, f_port, payload, LENGTH)
    if failure is not None:
        return failure
    return Reading(
        decoder=NAME,
        kind="motion_status",
        occupied=bit(payload[0], 0),
        battery_v=(25 + (payload[1] & 0x0F)) / 10,
        temperature_c=float((payload[2] & 0x7F) - 32),
        fields={
            "time": int.from_bytes(payload[3:5], "little"),
            "count": int.from_bytes(payload[5:8], "little"),
        },
    )
