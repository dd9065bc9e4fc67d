"""Tekzitel TEKZIPARK radar + magnetometer sensor, after the TTN lorawan-devices codec.

b0 flags: bit7 occupied, bit0 keepAlive, bit1 reset, bit2 No_Beacon, bit3 Radar,
bit4 Obstruction, bit5 Good_Battery; b1 int8 temperature; b2 Parking_ID.
fPort 1 may add b3 int8 Beacon_RSSI and big-endian uint16 beacon ids. fPort 2 is
the debug frame: the same three bytes (so it reports occupancy too), then
deflection/baseline per axis, fault code, obstruction level, D-reflection.
fPort 3 is the 8-byte configuration frame (no occupancy).
"""

from __future__ import annotations

from parkstream.decoders.base import (
    BAD_LENGTH,
    DecodeFailure,
    DecodeResult,
    bit,
    int8,
    too_short,
    unknown_port,
)
from parkstream.domain.device_events import Reading, Scalar

NAME = "tekzitel"

FLAGS = (
    ("keep_alive", 0),
    ("reset", 1),
    ("no_beacon", 2),
    ("radar", 3),
    ("obstruction", 4),
    ("good_battery", 5),
)
DEBUG_AXES = ("deflection_x", "deflection_y", "deflection_z", "baseline_x", "baseline_y")
# fPort -> the fewest bytes a frame of that port must have.
MIN_LENGTH = {1: 3, 2: 12, 3: 8}


def decode(f_port: int, payload: bytes) -> DecodeResult:
    """Decode one TEKZIPARK uplink frame."""
    minimum = MIN_LENGTH.get(f_port)
    if minimum is None:
        return unknown_port(NAME, f_port)
    failure = too_short(NAME, f_port, payload, minimum)
    if failure is not None:
        return failure
    if f_port == 3:
        return Reading(decoder=NAME, kind="config", fields={"raw_hex": payload[:8].hex()})
    fields = _common_fields(payload)
    if f_port == 1:
        beacons = _beacon_fields(payload)
        if isinstance(beacons, DecodeFailure):
            return beacons
        fields.update(beacons)
        kind = "parking_status"
    else:
        fields.update(_debug_fields(payload))
        kind = "debug"
    return Reading(
        decoder=NAME,
        kind=kind,
        occupied=bit(payload[0], 7),
        temperature_c=float(int8(payload[1])),
        fields=fields,
    )


def _common_fields(payload: bytes) -> dict[str, Scalar]:
    fields: dict[str, Scalar] = {name: bit(payload[0], index) for name, index in FLAGS}
    fields["parking_id"] = payload[2]
    return fields


def _beacon_fields(payload: bytes) -> dict[str, Scalar] | DecodeFailure:
    if len(payload) <= 3:
        return {}
    ids = payload[4:]
    if len(ids) % 2:
        return DecodeFailure(NAME, BAD_LENGTH, "beacon ids must be whole uint16 values")
    beacons = [int.from_bytes(ids[i : i + 2], "big") for i in range(0, len(ids), 2)]
    return {
        "beacon_rssi": int8(payload[3]),
        "beacon_count": len(beacons),
        "beacons": ",".join(str(b) for b in beacons),
    }


def _debug_fields(payload: bytes) -> dict[str, Scalar]:
    fields: dict[str, Scalar] = {name: int8(payload[3 + i]) for i, name in enumerate(DEBUG_AXES)}
    fields["baseline_z"] = int8(payload[8])
    fields["fault_code"] = payload[9]
    fields["obstruction_level"] = payload[10]
    fields["d_reflection"] = payload[11]
    return fields
