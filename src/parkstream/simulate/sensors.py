"""Parking sensor uplink frames per vendor, as the devices send them (pure).

Each vendor has three frames: a *status* frame on a state change, a *heartbeat*
(the vendor's own heartbeat frame where it has one, otherwise its periodic status
frame) and a *startup* frame after joining. Layouts follow docs/protocols and the
decoders in :mod:`parkstream.decoders`, which read every frame here back to the
occupancy it was built from. Profile names match the decoder registry's default
profile rules, so the bridge picks the right decoder.

=================  =============  ========================  ==========================
vendor             status         heartbeat                 startup
=================  =============  ========================  ==========================
Bosch TPS110       fPort 1        fPort 2 (+ temperature)   fPort 3 (17 bytes)
Nwave NPS405       fPort 1        fPort 2 (battery, temp.)  fPort 3 (5 bytes)
Tekzitel TEKZIPARK fPort 1        fPort 1, keepAlive flag   fPort 1, reset flag
Browan TBMS100     fPort 102      fPort 102 (same frame)    fPort 102 (same frame)
=================  =============  ========================  ==========================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from parkstream.decoders import bosch_tps110, browan_tbms100, nwave_nps405, tekzitel


@dataclass(frozen=True, slots=True)
class Frame:
    """One uplink frame: the LoRaWAN port and the application payload."""

    f_port: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Report:
    """What a sensor knows when it sends a frame."""

    occupied: bool
    previous_state_minutes: float = 0.0
    temperature_c: float = 15.0
    parking_id: int = 0
    motion_count: int = 0


def _s8(value: float) -> int:
    """``value`` as a two's-complement byte, clamped to -128..127."""
    return max(-128, min(127, round(value))) & 0xFF


# Bosch TPS110 ---------------------------------------------------------------------------

BOSCH_FIRMWARE = (0, 29, 2)
BOSCH_RESET_POWER_ON = 2


def bosch_status(report: Report) -> Frame:
    return Frame(1, bytes((int(report.occupied),)))


def bosch_heartbeat(report: Report) -> Frame:
    return Frame(2, bytes((int(report.occupied), _s8(report.temperature_c))))


def bosch_startup(report: Report) -> Frame:
    """Three empty 12-bit debug codes in 4-byte slots, firmware, reset cause, occupancy."""
    return Frame(
        3, bytes(12) + bytes((*BOSCH_FIRMWARE, BOSCH_RESET_POWER_ON, int(report.occupied)))
    )


# Nwave NPS405 ---------------------------------------------------------------------------

NWAVE_FIRMWARE = (1, 4, 0)
NWAVE_RESET_POWER_ON = 2
NWAVE_BATTERY_MV = 3300


def compress_duration(minutes: float) -> int:
    """The 7-bit compressed ``previous_state_duration`` (inverse of the decoder's expansion)."""
    m = max(0, round(minutes))
    if m < 90:
        return m
    if m < 240:
        return min(90 + round((m - 90) / 5), 119)
    if m < 660:
        return min(120 + round((m - 240) / 60), 126)
    return 127


def nwave_status(report: Report) -> Frame:
    compressed = compress_duration(report.previous_state_minutes)
    return Frame(1, bytes(((compressed << 1) | int(report.occupied),)))


def nwave_heartbeat(report: Report) -> Frame:
    battery = max(0, min(255, (NWAVE_BATTERY_MV - 2500) // 4))
    temperature = _s8((report.temperature_c - 10) * 2)
    return Frame(2, bytes((int(report.occupied), battery, temperature)))


def nwave_startup(report: Report) -> Frame:
    return Frame(3, bytes((*NWAVE_FIRMWARE, NWAVE_RESET_POWER_ON, int(report.occupied))))


# Tekzitel TEKZIPARK ---------------------------------------------------------------------

TEKZI_KEEP_ALIVE = 0x01
TEKZI_RESET = 0x02
TEKZI_RADAR = 0x08
TEKZI_GOOD_BATTERY = 0x20
TEKZI_OCCUPIED = 0x80


def _tekzitel(report: Report, extra_flags: int) -> Frame:
    flags = TEKZI_RADAR | TEKZI_GOOD_BATTERY | extra_flags
    if report.occupied:
        flags |= TEKZI_OCCUPIED
    return Frame(1, bytes((flags, _s8(report.temperature_c), report.parking_id & 0xFF)))


def tekzitel_status(report: Report) -> Frame:
    return _tekzitel(report, 0)


def tekzitel_heartbeat(report: Report) -> Frame:
    return _tekzitel(report, TEKZI_KEEP_ALIVE)


def tekzitel_startup(report: Report) -> Frame:
    return _tekzitel(report, TEKZI_RESET)


# Browan TBMS100 -------------------------------------------------------------------------

BROWAN_BATTERY_NIBBLE = 11  # (25 + 11) / 10 = 3.6 V


def browan_status(report: Report) -> Frame:
    """Status bit, battery, board temperature, minutes in the previous state, motion count."""
    temperature = max(0, min(127, round(report.temperature_c) + 32))
    minutes = max(0, min(0xFFFF, round(report.previous_state_minutes)))
    count = report.motion_count & 0xFFFFFF
    return Frame(
        browan_tbms100.F_PORT,
        bytes((int(report.occupied), BROWAN_BATTERY_NIBBLE, temperature))
        + minutes.to_bytes(2, "little")
        + count.to_bytes(3, "little"),
    )


# The vendors ----------------------------------------------------------------------------

Encoder = Callable[[Report], Frame]


@dataclass(frozen=True, slots=True)
class Vendor:
    """A sensor model: its decoder's name, a ChirpStack device-profile name, its frames."""

    key: str
    profile_name: str
    status: Encoder
    heartbeat: Encoder
    startup: Encoder


VENDORS: Mapping[str, Vendor] = MappingProxyType(
    {
        v.key: v
        for v in (
            Vendor(
                bosch_tps110.NAME,
                "Bosch TPS110 EU868",
                bosch_status,
                bosch_heartbeat,
                bosch_startup,
            ),
            Vendor(
                nwave_nps405.NAME,
                "Nwave NPS405 EU868",
                nwave_status,
                nwave_heartbeat,
                nwave_startup,
            ),
            Vendor(
                tekzitel.NAME,
                "Tekzitel TEKZIPARK EU868",
                tekzitel_status,
                tekzitel_heartbeat,
                tekzitel_startup,
            ),
            Vendor(
                browan_tbms100.NAME,
                "Browan TBMS100 EU868",
                browan_status,
                browan_status,
                browan_status,
            ),
        )
    }
)
DEFAULT_VENDOR_MIX: tuple[str, ...] = tuple(VENDORS)
