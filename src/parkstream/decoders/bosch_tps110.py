"""Bosch TPS110 parking lot sensor (firmware 0.29.x), after the TTN lorawan-devices codec.

fPort 1 parking status (b0 bit0 occupied); 2 heartbeat (occupied, optional int8
temperature); 3 startup (three 12-bit little-endian debug codes in 4-byte slots
b0..b11, firmware b12.b13.b14, reset cause b15, b16 bit0 occupied); 4 device
information, 5 device usage and 6 debug say nothing about occupancy. Bytes past
the documented layout are ignored, as the vendor codec does.
"""

from __future__ import annotations

import struct

from parkstream.decoders.base import DecodeResult, bit, int8, too_short, unknown_port, version
from parkstream.domain.device_events import Reading, Scalar

NAME = "bosch_tps110"

RESET_CAUSES = {1: "watchdog", 2: "power on", 3: "system request", 4: "other"}
DEBUG_LENGTH = 10
# fPort -> the fewest bytes a frame of that port must have.
MIN_LENGTH = {1: 1, 2: 1, 3: 17, 4: 1, 5: 1, 6: 1}


def decode(f_port: int, payload: bytes) -> DecodeResult:
    """Decode one TPS110 uplink frame."""
    minimum = MIN_LENGTH.get(f_port)
    if minimum is None:
        return unknown_port(NAME, f_port)
    failure = too_short(NAME, f_port, payload, minimum)
    if failure is not None:
        return failure
    if f_port == 1:
        return Reading(decoder=NAME, kind="parking_status", occupied=bit(payload[0], 0))
    if f_port == 2:
        return _heartbeat(payload)
    if f_port == 3:
        return _startup(payload)
    if f_port in (4, 5):
        kind = "device_info" if f_port == 4 else "device_usage"
        return Reading(decoder=NAME, kind=kind, fields={"raw_hex": payload.hex()})
    return _debug(payload)


def _heartbeat(payload: bytes) -> Reading:
    temperature = float(int8(payload[1])) if len(payload) >= 2 else None
    return Reading(
        decoder=NAME, kind="heartbeat", occupied=bit(payload[0], 0), temperature_c=temperature
    )


def _startup(payload: bytes) -> Reading:
    codes = [((payload[i + 1] & 0x0F) << 8) | payload[i] for i in (0, 4, 8)]
    cause = payload[15]
    fields: dict[str, Scalar] = {
        "debug_codes": ",".join(str(code) for code in codes if code),
        "firmware_version": version(payload, 12),
        "reset_cause": RESET_CAUSES.get(cause, f"unknown({cause})"),
    }
    return Reading(decoder=NAME, kind="startup", occupied=bit(payload[16], 0), fields=fields)


def _debug(payload: bytes) -> Reading:
    fields: dict[str, Scalar] = {"raw_hex": payload.hex()}
    if len(payload) >= DEBUG_LENGTH:
        (timestamp,) = struct.unpack_from("<I", payload, 0)
        fields["timestamp"] = timestamp
        fields["debug_code"] = ((payload[5] & 0x0F) << 8) | payload[4]
        fields["sequence_number"] = payload[8] | (payload[9] << 8)
    return Reading(decoder=NAME, kind="debug", fields=fields)
