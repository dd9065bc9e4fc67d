"""Simulated Kuando Busylights: parsing ``command/down`` JSON and what a light does with it (pure).

Two levels of checking, as in reality:

- :func:`parse_command` checks what ChirpStack checks before it queues a downlink
  (JSON object, ``devEui`` string-identical to the topic's, ``fPort`` 1..223, strict
  base64 ``data`` of 1..250 bytes). A command failing here is dropped silently:
  ChirpStack only logs it on its server, nothing comes back over MQTT.
- :func:`interpret` is the light's reaction to a frame it received: a 5-byte
  colour frame on fPort 15 changes the colour; the 2-byte commands ``04 NN``
  (keep-alive interval) and ``05 00`` (status now) are understood; anything else
  was transmitted (so it is ``txack``-ed) but changes nothing.

The status uplink is the 24-byte little-endian layout read by
:func:`parkstream.domain.kuando.decode_status`.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import uuid
from dataclasses import dataclass

import orjson

from parkstream.domain.kuando import KUANDO_FPORT

OFF = bytes(5)
COLOUR_LENGTH = 5
MAX_DOWNLINK_BYTES = 250
SW_REV = 41
HW_REV = 12

_STATUS = struct.Struct("<iiII5sBBB")  # 24 bytes
_COMMAND_TOPIC = re.compile(
    r"(?:(?P<prefix>.+)/)?application/(?P<app>[^/]+)/device/(?P<eui>[^/]+)/command/down"
)


def encode_status(
    *,
    frame: bytes,
    messages_received: int,
    messages_sent: int,
    rssi: int = -48,
    snr: int = 30,
    adr: bool = True,
    sw_rev: int = SW_REV,
    hw_rev: int = HW_REV,
) -> bytes:
    """The 24-byte status uplink: RSSI, SNR, received, sent, last colour ``R B G on off``, revs."""
    if len(frame) != COLOUR_LENGTH:
        raise ValueError(f"the last colour is 5 bytes [R, B, G, on, off], got {len(frame)}")
    return _STATUS.pack(
        rssi,
        snr,
        messages_received & 0xFFFFFFFF,
        messages_sent & 0xFFFFFFFF,
        frame,
        sw_rev,
        hw_rev,
        int(adr),
    )


@dataclass(frozen=True, slots=True)
class CommandTopic:
    prefix: str
    application_id: str
    dev_eui: str


def parse_command_topic(topic: str) -> CommandTopic | None:
    """``[prefix/]application/{app}/device/{eui}/command/down``, else None."""
    match = _COMMAND_TOPIC.fullmatch(topic)
    if match is None:
        return None
    return CommandTopic(match.group("prefix") or "", match.group("app"), match.group("eui"))


@dataclass(frozen=True, slots=True)
class Command:
    """A downlink ChirpStack would queue: ``id`` is the queue-item id of its txack."""

    id: str
    dev_eui: str
    f_port: int
    data: bytes
    confirmed: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """A command ChirpStack would drop; ``reason`` is snake_case."""

    reason: str
    detail: str


def parse_command(topic_eui: str, payload: bytes) -> Command | Refused:
    """Check a v4 ``command/down`` payload as ChirpStack does. An empty ``id`` gets a new UUID."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return Refused("invalid_json", str(exc))
    if not isinstance(doc, dict):
        return Refused("not_object", f"a JSON {type(doc).__name__}, not an object")
    eui = doc.get("devEui")
    if not isinstance(eui, str) or eui != topic_eui:
        return Refused("eui_mismatch", f"devEui {eui!r} differs from the topic's {topic_eui!r}")
    f_port = doc.get("fPort")
    if isinstance(f_port, bool) or not isinstance(f_port, int) or not 1 <= f_port <= 223:
        return Refused("bad_f_port", f"fPort must be an integer 1..223, got {f_port!r}")
    data = doc.get("data")
    if not isinstance(data, str):
        return Refused("bad_data", "data must be a base64 string (object needs a codec)")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        return Refused("bad_base64", str(exc))
    if not 1 <= len(raw) <= MAX_DOWNLINK_BYTES:
        return Refused("bad_length", f"{len(raw)} bytes, expected 1..{MAX_DOWNLINK_BYTES}")
    confirmed = doc.get("confirmed", False)
    if not isinstance(confirmed, bool):
        return Refused("bad_confirmed", f"confirmed must be true or false, got {confirmed!r}")
    command_id = doc.get("id")
    if command_id is not None and not isinstance(command_id, str):
        return Refused("bad_id", f"id must be a string, got {command_id!r}")
    return Command(command_id or str(uuid.uuid4()), eui, f_port, raw, confirmed)


@dataclass(frozen=True, slots=True)
class ShowColour:
    frame: bytes


@dataclass(frozen=True, slots=True)
class SetKeepAlive:
    minutes: int


@dataclass(frozen=True, slots=True)
class SendStatus:
    pass


@dataclass(frozen=True, slots=True)
class Ignore:
    reason: str


Reaction = ShowColour | SetKeepAlive | SendStatus | Ignore


def interpret(f_port: int, data: bytes) -> Reaction:
    """What a Busylight does with a frame it received."""
    if f_port != KUANDO_FPORT:
        return Ignore(f"fPort {f_port} is not the Busylight's port {KUANDO_FPORT}")
    if len(data) == COLOUR_LENGTH:
        return ShowColour(bytes(data))
    if len(data) == 2 and data[0] == 0x04 and data[1] >= 1:
        return SetKeepAlive(data[1])
    if data == b"\x05\x00":
        return SendStatus()
    if len(data) == 2 and data[0] in (0x01, 0x02, 0x03, 0x06, 0xAA):
        return Ignore(f"command {data.hex()} is not simulated")
    return Ignore(f"{len(data)}-byte frame {data.hex()} is neither a colour nor a command")
