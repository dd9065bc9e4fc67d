"""What parsing one MQTT message produces: accepted events, a deliberate ignore, or a rejection.

Reasons are machine-readable snake_case (optionally ``reason:detail-key``, e.g.
``missing_field:deduplicationId``); the vocabulary is listed in ``parse.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from parkstream.domain.envelope import Envelope

Outcome = Literal["accepted", "ignored", "rejected"]


@dataclass(frozen=True, slots=True)
class ParseResult:
    """The outcome of one message, its events, and the key that identifies a redelivery."""

    outcome: Outcome
    reason: str | None
    detail: str
    events: tuple[Envelope, ...] = ()
    dedup_key: str | None = None

    @classmethod
    def accepted(
        cls,
        events: tuple[Envelope, ...],
        dedup_key: str,
        reason: str | None = None,
        detail: str = "",
    ) -> ParseResult:
        return cls("accepted", reason, detail, events, dedup_key)

    @classmethod
    def ignored(cls, reason: str, detail: str, dedup_key: str | None = None) -> ParseResult:
        return cls("ignored", reason, detail, (), dedup_key)

    @classmethod
    def rejected(cls, reason: str, detail: str) -> ParseResult:
        return cls("rejected", reason, detail)


class Rejected(Exception):
    """Raised inside the parsers to abandon a message; ``parse_message`` turns it into a result."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
