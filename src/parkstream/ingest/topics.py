"""ChirpStack MQTT topic names: which device and which event a message is about.

Supported shapes (the defaults of ChirpStack v4 and v3), each optionally after a
prefix of one or more levels (``site-a/application/…``), the prefix being
everything before the last ``application`` level that starts a valid shape:

- ``application/{app}/device/{dev_eui}/event/{event}``: v4 (``app`` is a UUID;
  events up, join, ack, txack, status, log, location) and v3 ≥ 3.11 (``app`` is
  numeric; events up, join, ack, error, status, location, txack);
- ``application/{app}/device/{dev_eui}/{event}``: v3 before 3.11, ``rx`` for uplinks;
- ``…/command/{name}`` and the legacy ``…/tx`` are downlink commands, not events.

Event names are mapped to one canonical vocabulary: ``rx`` -> ``up``. The v3
``error`` keeps its name (it is the v4 ``log``, with another payload).
Topic templates are configurable in ChirpStack; other layouts are not parsed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from parkstream.domain.ids import normalize_eui

EVENT_NAMES = frozenset({"up", "join", "ack", "txack", "status", "log", "location", "error"})
LEGACY_EVENT_NAMES = {
    "rx": "up",
    "join": "join",
    "ack": "ack",
    "error": "error",
    "status": "status",
    "location": "location",
    "txack": "txack",
}
UNSUPPORTED_EVENTS = frozenset({"integration"})
# Parsed topics are kept: a device publishes on the same few topics again and again.
CACHED_TOPICS = 16_384

_TOPIC = re.compile(
    r"(?:(?P<prefix>.+)/)?application/(?P<app>[^/]+)/device/(?P<eui>[^/]+)"
    r"/(?:(?P<kind>event|command)/)?(?P<name>[^/]+)"
)
_HEX_EUI = re.compile(r"[0-9a-fA-F]{16}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

Shape = Literal["event", "legacy", "command"]


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic. ``event`` is canonical (``rx`` -> ``up``); ``name`` is as written."""

    prefix: str
    application_id: str
    dev_eui: str
    shape: Shape
    name: str
    event: str

    @property
    def application_is_uuid(self) -> bool:
        """True for a v4 application id; v3 ids are numbers."""
        return _UUID.fullmatch(self.application_id) is not None


@dataclass(frozen=True, slots=True)
class TopicProblem:
    """Why a topic is not an event topic we read: a rejection or a deliberate ignore."""

    outcome: Literal["rejected", "ignored"]
    reason: str
    detail: str


@lru_cache(maxsize=CACHED_TOPICS)
def parse_topic(topic: str, max_chars: int = 512) -> Topic | TopicProblem:
    """Split ``topic`` into application, normalised device EUI and canonical event.

    Pure, and its results are immutable, so they are cached (least recently used).
    """
    if len(topic) > max_chars:
        return TopicProblem("rejected", "bad_topic", f"topic longer than {max_chars} characters")
    match = _TOPIC.fullmatch(topic)
    if match is None:
        return TopicProblem("rejected", "bad_topic", f"not a ChirpStack device topic: {topic!r}")
    eui = match.group("eui")
    if _HEX_EUI.fullmatch(eui) is None:
        return TopicProblem(
            "rejected", "bad_eui", f"topic device EUI is not 16 hex digits: {eui!r}"
        )
    kind, name = match.group("kind"), match.group("name")
    shape: Shape = "event" if kind == "event" else "command" if kind == "command" else "legacy"
    if shape == "command" or (shape == "legacy" and name == "tx"):
        return TopicProblem("ignored", "command_topic", f"a downlink command topic ({name})")
    if name in UNSUPPORTED_EVENTS:
        return TopicProblem("ignored", "unsupported_event", f"event {name!r} is not read")
    if shape == "event":
        event = name if name in EVENT_NAMES else None
    else:
        event = LEGACY_EVENT_NAMES.get(name)
    if event is None:
        return TopicProblem("rejected", "unknown_event", f"unknown event {name!r}")
    return Topic(
        prefix=match.group("prefix") or "",
        application_id=match.group("app"),
        dev_eui=normalize_eui(eui),
        shape=shape,
        name=name,
        event=event,
    )
