"""Kuando Busylight IoT (Omega) LoRaWAN frames: colour and command downlinks, status uplinks.

Facts (docs/protocols): fPort 15 both ways; the colour frame is ``[R, B, G, ON, OFF]``
(blue before green), ON/OFF in 100 ms steps, OFF=0 is solid. Values outside 0..255
are refused, never masked.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from parkstream.domain.device_events import KuandoStatus

KUANDO_FPORT = 15
SOLID_ON = 255

_RGB_RE = re.compile(r"^#?([0-9a-fA-F]{6})$")


class KuandoError(ValueError):
    """A frame that cannot be encoded or decoded; the message says which value is wrong."""


def _byte(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise KuandoError(f"{name} must be an integer 0..255, got {value!r}")
    if not 0 <= value <= 255:
        raise KuandoError(f"{name} must be 0..255, got {value}")
    return value


def parse_rgb(colour: str) -> tuple[int, int, int]:
    """``"FF3200"`` or ``"#ff3200"`` -> ``(255, 50, 0)``."""
    match = _RGB_RE.match(colour.strip())
    if match is None:
        raise KuandoError(f"colour must be 6 hex digits RRGGBB, got {colour!r}")
    raw = bytes.fromhex(match.group(1))
    return raw[0], raw[1], raw[2]


@dataclass(frozen=True, slots=True)
class Frame:
    """A downlink frame for the light."""

    f_port: int
    payload: bytes

    @property
    def hex(self) -> str:
        return self.payload.hex()


def colour_frame(red: int, green: int, blue: int, on: int = SOLID_ON, off: int = 0) -> Frame:
    """The 5-byte colour frame; ``on``/``off`` in 100 ms steps, ``off=0`` for a solid light."""
    payload = bytes(
        (
            _byte("red", red),
            _byte("blue", blue),
            _byte("green", green),
            _byte("on", on),
            _byte("off", off),
        )
    )
    return Frame(KUANDO_FPORT, payload)


def colour_frame_hex(colour: str, on: int = SOLID_ON, off: int = 0) -> Frame:
    red, green, blue = parse_rgb(colour)
    return colour_frame(red, green, blue, on, off)


def light_off() -> Frame:
    return Frame(KUANDO_FPORT, bytes(5))


def keepalive_interval(minutes: int) -> Frame:
    """Command ``04 NN``: send a keep-alive (status) uplink every NN minutes (1..255)."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 255:
        raise KuandoError(f"keep-alive interval must be 1..255 minutes, got {minutes!r}")
    return Frame(KUANDO_FPORT, bytes((0x04, minutes)))


def status_request() -> Frame:
    """Command ``05 00``: send a keep-alive (status) uplink now."""
    return Frame(KUANDO_FPORT, bytes((0x05, 0x00)))


def adr(enabled: bool) -> Frame:
    """Commands ``01 00`` (ADR on) / ``02 00`` (ADR off)."""
    return Frame(KUANDO_FPORT, bytes((0x01 if enabled else 0x02, 0x00)))


def auto_uplink(enabled: bool) -> Frame:
    """Command ``06 01`` / ``06 00``: an uplink after every downlink, on or off."""
    return Frame(KUANDO_FPORT, bytes((0x06, 0x01 if enabled else 0x00)))


def uplink_watchdog(uplinks: int) -> Frame:
    """Command ``03 NN``: rejoin after NN uplinks without any downlink (1..255)."""
    if isinstance(uplinks, bool) or not isinstance(uplinks, int) or not 1 <= uplinks <= 255:
        raise KuandoError(f"watchdog must be 1..255 uplinks, got {uplinks!r}")
    return Frame(KUANDO_FPORT, bytes((0x03, uplinks)))


_STATUS = struct.Struct("<iiII5BBBB")  # 24 bytes


def decode_status(payload: bytes) -> KuandoStatus:
    """Decode a status uplink (fPort 15): the 24- and 25-byte layouts and the 10-byte one.

    24 bytes: int32 RSSI, int32 SNR, uint32 received, uint32 sent, last colour
    ``R B G on off``, sw_rev, hw_rev, adr_state (little-endian). The 25th byte's
    meaning is disputed and is ignored. The 10-byte variant carries uint32 sent,
    the last colour and one unknown byte.
    """
    if len(payload) in (24, 25):
        rssi, snr, received, sent, r, b, g, on, off, sw, hw, adr_state = _STATUS.unpack_from(
            payload
        )
        return KuandoStatus(
            red=r,
            blue=b,
            green=g,
            on=on,
            off=off,
            messages_received=received,
            messages_sent=sent,
            rssi=rssi,
            snr=snr,
            sw_rev=sw,
            hw_rev=hw,
            adr=bool(adr_state),
        )
    if len(payload) == 10:
        (sent,) = struct.unpack_from("<I", payload)
        r, b, g, on, off = payload[4:9]
        return KuandoStatus(red=r, blue=b, green=g, on=on, off=off, messages_sent=sent)
    raise KuandoError(f"Kuando status uplink must be 10, 24 or 25 bytes, got {len(payload)}")
