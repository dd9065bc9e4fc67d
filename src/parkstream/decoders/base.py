"""What every sensor decoder shares: the failure value, the decoder signature, byte helpers.

A decoder is a pure function ``decode(f_port, payload) -> Reading | DecodeFailure``.
It never raises: a frame it cannot read (wrong port, too short) is a
:class:`DecodeFailure` carrying a machine-readable ``reason``, so the uplink is
still recorded with its ``decode_error`` instead of being lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from parkstream.domain.device_events import Reading

# Reasons a decoder gives (DecodeFailure.reason).
UNKNOWN_PORT = "unknown_port"
BAD_LENGTH = "bad_length"
BAD_VALUE = "bad_value"
UNKNOWN_DECODER = "unknown_decoder"


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """Why ``decoder`` could not read a frame; ``reason`` is snake_case, ``detail`` prose."""

    decoder: str
    reason: str
    detail: str = ""

    def describe(self) -> str:
        """One line for ``UplinkData.decode_error``: ``decoder: reason: detail``."""
        text = f"{self.decoder}: {self.reason}"
        return f"{text}: {self.detail}" if self.detail else text


DecodeResult = Reading | DecodeFailure
Decoder = Callable[[int, bytes], DecodeResult]


def unknown_port(decoder: str, f_port: int) -> DecodeFailure:
    return DecodeFailure(decoder, UNKNOWN_PORT, f"fPort {f_port} is not an uplink port")


def too_short(decoder: str, f_port: int, payload: bytes, minimum: int) -> DecodeFailure | None:
    """A failure when ``payload`` has fewer than ``minimum`` bytes, else None."""
    if len(payload) >= minimum:
        return None
    return DecodeFailure(
        decoder,
        BAD_LENGTH,
        f"fPort {f_port} needs at least {minimum} bytes, got {len(payload)}",
    )


def int8(value: int) -> int:
    """The byte ``value`` read as a two's-complement signed integer."""
    return value - 0x100 if value & 0x80 else value


def bit(value: int, index: int) -> bool:
    return bool((value >> index) & 1)


def version(payload: bytes, start: int) -> str:
    """Three bytes from ``start`` as ``"major.minor.patch"``."""
    return ".".join(str(b) for b in payload[start : start + 3])
