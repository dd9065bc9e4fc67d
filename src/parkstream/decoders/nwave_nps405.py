"""Nwave NPS405 parking sensor, after the TTN lorawan-devices codec and its examples.

Occupancy is **bit 0** of b0 and bits 1..7 carry the compressed duration of the
previous state: the codec's own examples (``0x95`` -> occupied, 74; ``0xD1`` ->
160) only hold with that layout. One stored codec version reads bit 7 instead;
it contradicts those examples and is treated as superseded.

fPort 1 parking status; 2 heartbeat (battery (2500+4*b1) mV, temperature
int8(b2)/2+10 °C); 3 startup (firmware b0.b1.b2, reset cause b3, b4 bit0
occupied); 6 debug; 10 tag (user) registration. Tag registration is not a state
report (the codec leaves ``occupied`` null when bit 0 is clear), so its reading
carries ``occupied=None`` and the bit as ``sensor_occupied``.
"""

from __future__ import annotations

from parkstream.decoders.base import DecodeResult, bit, int8, too_short, unknown_port, version
from parkstream.domain.device_events import Reading, Scalar

NAME = "nwave_nps405"

RESET_CAUSES = {
    0: "rejoining_lorawan_network",
    1: "watchdog",
    2: "power_on",
    3: "user_request",
    6: "brownout",
    7: "other",
}
# fPort -> the fewest bytes a frame of that port must have.
MIN_LENGTH = {1: 1, 2: 3, 3: 5, 6: 1, 10: 5}


def expand_duration(compressed: int) -> tuple[int, int | None, bool]:
    """``(previous_state_duration, error, overflow)`` of the 7-bit compressed duration.

    <90 -> the value itself; 90..119 -> 90+(c-90)*5 (±4); 120..126 ->
    240+(c-120)*60 (±59); 127 -> 660 and overflow (error unknown).
    """
    if compressed < 90:
        return compressed, 0, False
    if compressed < 120:
        return 90 + (compressed - 90) * 5, 4, False
    if compressed < 127:
        return 240 + (compressed - 120) * 60, 59, False
    return 660, None, True


def battery_health(battery_mv: int, temperature_c: float) -> str:
    """The codec's battery verdict: thresholds drop by 100 mV below -5 °C."""
    critical, low = (2900, 3000) if temperature_c >= -5 else (2800, 2900)
    if battery_mv >= low:
        return "normal"
    return "low" if battery_mv >= critical else "critical"


def decode(f_port: int, payload: bytes) -> DecodeResult:
    """Decode one NPS405 uplink frame."""
    minimum = MIN_LENGTH.get(f_port)
    if minimum is None:
        return unknown_port(NAME, f_port)
    failure = too_short(NAME, f_port, payload, minimum)
    if failure is not None:
        return failure
    if f_port == 1:
        fields = _duration_fields(payload[0] >> 1)
        return Reading(
            decoder=NAME, kind="parking_status", occupied=bit(payload[0], 0), fields=fields
        )
    if f_port == 2:
        return _heartbeat(payload)
    if f_port == 3:
        cause = payload[3]
        startup: dict[str, Scalar] = {
            "firmware_version": version(payload, 0),
            "reset_cause": RESET_CAUSES.get(cause, f"unknown({cause})"),
        }
        return Reading(decoder=NAME, kind="startup", occupied=bit(payload[4], 0), fields=startup)
    if f_port == 6:
        return Reading(decoder=NAME, kind="debug", fields={"raw_hex": payload.hex()})
    return _tag_registration(payload)


def _duration_fields(compressed: int) -> dict[str, Scalar]:
    duration, error, overflow = expand_duration(compressed)
    return {
        "previous_state_duration": duration,
        "previous_state_duration_error": error,
        "previous_state_duration_overflow": overflow,
    }


def _heartbeat(payload: bytes) -> Reading:
    battery_mv = 2500 + 4 * payload[1]
    temperature = int8(payload[2]) / 2 + 10
    fields: dict[str, Scalar] = {
        "hw_health_status": payload[0] >> 1,
        "battery_health": battery_health(battery_mv, temperature),
    }
    return Reading(
        decoder=NAME,
        kind="heartbeat",
        occupied=bit(payload[0], 0),
        battery_v=battery_mv / 1000,
        temperature_c=temperature,
        fields=fields,
    )


def _tag_registration(payload: bytes) -> Reading:
    """fPort 10. Six bytes or more: b1 tag battery (decivolts), b2..b5 tag id; five: b1..b4 id."""
    fields: dict[str, Scalar] = {"sensor_occupied": True if bit(payload[0], 0) else None}
    if bit(payload[0], 0):
        fields.update(_duration_fields(payload[0] >> 1))
    if len(payload) >= 6:
        fields["tag_battery_voltage"] = payload[1] / 10
        fields["tag_id"] = payload[2:6].hex().upper()
    else:
        fields["tag_id"] = payload[1:5].hex().upper()
    return Reading(decoder=NAME, kind="tag_registration", fields=fields)
