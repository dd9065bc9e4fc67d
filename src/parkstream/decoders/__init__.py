"""Sensor decoders: LoRaWAN frame bytes (or a ChirpStack ``object``) to a :class:`Reading`.

Every decoder is pure and never raises; :class:`DecoderRegistry` picks one per uplink.
"""

from parkstream.decoders.base import DecodeFailure, Decoder, DecodeResult
from parkstream.decoders.object_mapping import ObjectMapping
from parkstream.decoders.registry import (
    BUILTIN_DECODERS,
    DecoderConfigError,
    DecoderRegistry,
    ProfileRule,
    UplinkFrame,
)

__all__ = [
    "BUILTIN_DECODERS",
    "DecodeFailure",
    "DecodeResult",
    "Decoder",
    "DecoderConfigError",
    "DecoderRegistry",
    "ObjectMapping",
    "ProfileRule",
    "UplinkFrame",
]
