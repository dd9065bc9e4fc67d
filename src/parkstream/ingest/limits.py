"""Bounds on what the ingest parser accepts, and the bounded check of a parsed JSON tree.

Every MQTT message is untrusted input: its size, nesting, list lengths and string
lengths are capped before any field is read, so a hostile or broken publisher
cannot make the bridge spend unbounded memory or time.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_TOPIC_CHARS = 512
MAX_DEPTH = 32
MAX_FRAME_BYTES = 255  # LoRaWAN never carries more in one frame's FRMPayload.
MAX_RX_INFO = 64
MAX_TAGS = 128
MAX_LIST_ITEMS = 1024
MAX_OBJECT_KEYS = 1024
MAX_STRING_CHARS = 4096


@dataclass(frozen=True, slots=True)
class Limits:
    """The caps, with defaults sized far above anything ChirpStack writes."""

    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    max_topic_chars: int = MAX_TOPIC_CHARS
    max_depth: int = MAX_DEPTH
    max_frame_bytes: int = MAX_FRAME_BYTES
    max_rx_info: int = MAX_RX_INFO
    max_tags: int = MAX_TAGS
    max_list_items: int = MAX_LIST_ITEMS
    max_object_keys: int = MAX_OBJECT_KEYS
    max_string_chars: int = MAX_STRING_CHARS


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class TreeViolation:
    """Why a parsed JSON tree is refused: ``reason`` is machine-readable."""

    reason: str
    detail: str


def within_limits_by_size(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> bool:
    """True when the size of a JSON text alone proves its parse passes :func:`check_tree`.

    A sufficient condition, checked in C instead of walking the tree: no string can
    hold more characters than the text has bytes; a list of ``n`` items takes at
    least ``2n + 1`` bytes and an object of ``n`` distinct keys at least ``5n + 1``;
    and no value nests deeper than the text has ``{`` and ``[`` bytes (inside strings
    or not). Typical ChirpStack events (about 1 KB) pass; anything larger is walked.
    """
    size = len(raw)
    return (
        size <= limits.max_string_chars
        and size <= 2 * limits.max_list_items
        and size <= 4 * limits.max_object_keys
        and raw.count(b"{") + raw.count(b"[") <= limits.max_depth
    )


def check_tree(root: object, limits: Limits = DEFAULT_LIMITS) -> TreeViolation | None:
    """Walk a parsed JSON value iteratively (no recursion) and report the first excess.

    Checks nesting depth, the length of every list and object, and of every
    string (keys included). The walk visits each node once, so its cost is linear
    in the size of the payload, which is itself capped.
    """
    stack: list[tuple[object, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if len(value) > limits.max_string_chars:
                return TreeViolation("string_too_long", f"a string of {len(value)} characters")
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > limits.max_depth:
            return TreeViolation("too_deep", f"nesting deeper than {limits.max_depth}")
        if isinstance(value, dict):
            if len(value) > limits.max_object_keys:
                return TreeViolation("too_many_keys", f"an object with {len(value)} keys")
            for key, item in value.items():
                stack.append((key, depth))
                stack.append((item, depth + 1))
        else:
            if len(value) > limits.max_list_items:
                return TreeViolation("too_many_items", f"a list of {len(value)} items")
            stack.extend((item, depth + 1) for item in value)
    return None
