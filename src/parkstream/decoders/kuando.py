"""Kuando Busylight IoT status uplinks (fPort 15) as a :class:`Reading`.

The frame layout lives in :func:`parkstream.domain.kuando.decode_status`; this
module only wraps it: the reading says what the light shows (``display``) and
nothing about occupancy.
"""

from __future__ import annotations

from parkstream.decoders.base import BAD_LENGTH, DecodeFailure, DecodeResult, unknown_port
from parkstream.domain.device_events import Reading
from parkstream.domain.kuando import KUANDO_FPORT, decode_status

NAME = "kuando"


def decode(f_port: int, payload: bytes) -> DecodeResult:
    """Decode a Busylight status uplink into ``Reading(kind="display_status")``."""
    if f_port != KUANDO_FPORT:
        return unknown_port(NAME, f_port)
    try:
        status = decode_status(payload)
    except ValueError as exc:  # KuandoError, or a value the status model refuses
        return DecodeFailure(NAME, BAD_LENGTH, str(exc))
    return Reading(
        decoder=NAME,
        kind="display_status",
        display=status,
        fields={"frame_hex": status.frame_hex, "length": len(payload)},
    )
