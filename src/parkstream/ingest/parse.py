"""The single entry point of ingest: one MQTT message in, a :class:`ParseResult` out.

Pure (no I/O, no clock: ``recorded_at`` is an argument) and total: it never
raises, whatever the topic and payload; every failure is a ``rejected`` result.

Dialect: a payload whose first non-blank byte is ``{`` is JSON; it is v4 when it
has ``deviceInfo``, v3 when it has ``devEUI`` or ``applicationID``, otherwise v3
on a legacy (pre-3.11) topic and v4 elsewhere. Any other payload on an
``…/event/…`` topic is read as v4 protobuf. ``dialect_hint`` forces a dialect.

Reasons (``reason`` of the result):

- rejected: ``bad_topic``, ``bad_eui``, ``unknown_event``, ``bad_payload`` (not
  bytes), ``too_large``, ``empty_payload``, ``invalid_json``, ``not_object``, ``too_deep``,
  ``too_many_keys``, ``too_many_items``, ``string_too_long``,
  ``too_many:<path>``, ``invalid_protobuf``, ``missing_field:<path>``,
  ``bad_field:<path>``, ``bad_base64``, ``frame_too_large``, ``bad_time``,
  ``eui_mismatch``, ``internal_error`` (a bug: reported, never raised);
- ignored: ``mac_only``, ``command_topic``, ``unsupported_event``, ``no_queue_item``
  (and ``duplicate``, given by callers that keep a :class:`DedupWindow`);
- accepted: None, or ``decode_error:<decoder reason>`` when the sensor frame
  could not be decoded (the uplink is kept with ``decode_error``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import orjson
from pydantic import ValidationError

from parkstream.decoders.registry import DecoderRegistry
from parkstream.ingest.chirpstack import parse_v4
from parkstream.ingest.chirpstack_pb import protobuf_to_json
from parkstream.ingest.chirpstack_v3 import parse_v3
from parkstream.ingest.envelopes import Message, refused
from parkstream.ingest.fast_path import common_uplink
from parkstream.ingest.limits import DEFAULT_LIMITS, Limits, check_tree, within_limits_by_size
from parkstream.ingest.result import ParseResult, Rejected
from parkstream.ingest.topics import Topic, TopicProblem, parse_topic

Dialect = Literal["v4_json", "v4_protobuf", "v3_json"]
_BLANK = b" \t\r\n"


def parse_message(
    topic: str,
    payload: bytes,
    *,
    recorded_at: datetime,
    decoders: DecoderRegistry,
    dialect_hint: Dialect | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> ParseResult:
    """Parse one ChirpStack MQTT message into device events. Never raises.

    ``recorded_at`` is the ingest time (a naive value is taken as UTC); it is
    also the event time of messages that carry none.
    """
    try:
        return _parse(topic, payload, recorded_at, decoders, dialect_hint, limits)
    except Rejected as exc:
        return ParseResult.rejected(exc.reason, exc.detail)
    except ValidationError as exc:
        rejection = refused(exc, "event")
        return ParseResult.rejected(rejection.reason, rejection.detail)
    except Exception as exc:  # the contract is "never raises": report a bug as a rejection
        return ParseResult.rejected("internal_error", f"{type(exc).__name__}: {exc}")


def _parse(
    topic: object,
    payload: object,
    recorded_at: datetime,
    decoders: DecoderRegistry,
    dialect_hint: Dialect | None,
    limits: Limits,
) -> ParseResult:
    if not isinstance(topic, str):
        raise Rejected("bad_topic", f"the topic must be text, got {type(topic).__name__}")
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise Rejected("bad_payload", f"the payload must be bytes, got {type(payload).__name__}")
    raw = bytes(payload)
    if len(raw) > limits.max_payload_bytes:
        raise Rejected("too_large", f"{len(raw)} bytes, more than {limits.max_payload_bytes}")
    where = parse_topic(topic, limits.max_topic_chars)
    if isinstance(where, TopicProblem):
        if where.outcome == "ignored":
            return ParseResult.ignored(where.reason, where.detail)
        raise Rejected(where.reason, where.detail)
    if not raw.strip(_BLANK):
        raise Rejected("empty_payload", "the message has no payload")
    if recorded_at.tzinfo is None:
        recorded_at = recorded_at.replace(tzinfo=UTC)
    msg = Message(topic, where.dev_eui, where.event, raw, recorded_at, decoders, limits)
    if dialect_hint == "v4_protobuf" or (dialect_hint is None and _is_protobuf(raw, where)):
        return parse_v4(_checked(protobuf_to_json(where.event, raw), limits), msg)
    doc = _load_json(raw)
    if not within_limits_by_size(raw, limits):
        _checked(doc, limits)
    if dialect_hint == "v3_json" or (dialect_hint is None and _looks_v3(doc, where)):
        return parse_v3(doc, msg)
    if where.event == "up":
        common = common_uplink(doc, msg)  # the usual uplink in one pass; None: read it fully
        if common is not None:
            return common
    return parse_v4(doc, msg)


def _is_protobuf(raw: bytes, where: Topic) -> bool:
    """Protobuf unless the payload opens a JSON object, is other JSON, or the topic predates v4."""
    if raw.lstrip(_BLANK).startswith(b"{") or where.shape == "legacy":
        return False
    try:
        _load_json(raw)
    except Rejected as exc:
        if exc.reason == "invalid_json":
            return True
        raise
    return False  # JSON after all: read it as JSON


def _looks_v3(doc: dict[str, object], where: Topic) -> bool:
    if "deviceInfo" in doc:
        return False
    return "devEUI" in doc or "applicationID" in doc or where.shape == "legacy"


def _load_json(raw: bytes) -> dict[str, object]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            raise Rejected("too_deep", f"nesting too deep: {exc}") from exc
        raise Rejected("invalid_json", str(exc)) from exc
    if not isinstance(doc, dict):
        raise Rejected("not_object", f"the payload is a JSON {type(doc).__name__}, not an object")
    return doc


def _checked(doc: dict[str, object], limits: Limits) -> dict[str, object]:
    violation = check_tree(doc, limits)
    if violation is not None:
        raise Rejected(violation.reason, violation.detail)
    return doc
