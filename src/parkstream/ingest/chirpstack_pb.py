"""ChirpStack v4 integration events in protobuf (``[integration.mqtt] json=false``).

The binary message is decoded with the ``chirpstack-api`` package and converted
to the proto3 JSON form ChirpStack itself writes (camelCase names, defaults
written, enums by name, bytes in standard base64, Timestamps as RFC 3339 with up
to 9 fractional digits and ``Z``), so ``chirpstack.parse_v4`` reads both
dialects the same way. Protobuf carries no type: the topic's event name picks
the message class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chirpstack_api import integration
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from parkstream.ingest.result import Rejected

MESSAGES: Mapping[str, Any] = {
    "up": integration.UplinkEvent,
    "join": integration.JoinEvent,
    "ack": integration.AckEvent,
    "txack": integration.TxAckEvent,
    "log": integration.LogEvent,
    "status": integration.StatusEvent,
    "location": integration.LocationEvent,
}


def protobuf_to_json(event: str, payload: bytes) -> dict[str, object]:
    """The v4 JSON object of a protobuf ``event`` payload; raises :class:`Rejected`."""
    message_class = MESSAGES.get(event)
    if message_class is None:
        raise Rejected("unknown_event", f"{event!r} has no ChirpStack v4 protobuf message")
    try:
        message = message_class.FromString(payload)
    except DecodeError as exc:
        raise Rejected("invalid_protobuf", f"not a {message_class.__name__}: {exc}") from exc
    try:
        doc = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    except Exception as exc:  # e.g. a Timestamp out of range; protobuf raises several types
        raise Rejected("invalid_protobuf", f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(doc, dict):
        raise Rejected("invalid_protobuf", "the message did not convert to an object")
    return doc
