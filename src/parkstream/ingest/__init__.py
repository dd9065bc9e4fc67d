"""Ingest: ChirpStack MQTT messages to device events. Pure code: no I/O, no clock.

The MQTT bridge calls :func:`parse_message` per message and keeps a
:class:`DedupWindow` of ``dedup_key`` values to drop redeliveries.
"""

from parkstream.ingest.dedup import DedupWindow
from parkstream.ingest.limits import DEFAULT_LIMITS, Limits
from parkstream.ingest.parse import Dialect, parse_message
from parkstream.ingest.result import Outcome, ParseResult

__all__ = [
    "DEFAULT_LIMITS",
    "DedupWindow",
    "Dialect",
    "Limits",
    "Outcome",
    "ParseResult",
    "parse_message",
]
