"""Building dead-letter records: the raw input, where it came from, and why it was refused."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from parkstream.domain.downlinks import DeadLetterData, DeadLettered
from parkstream.domain.envelope import Source
from parkstream.domain.ids import derive_id


def dead_letter(
    *,
    stage: str,
    reason: str,
    detail: str,
    raw: bytes,
    received_at: datetime,
    source: Source,
    origin_topic: str | None = None,
    origin_partition: int | None = None,
    origin_offset: int | None = None,
    dev_eui: str | None = None,
) -> DeadLettered:
    """A dead-letter record whose id depends only on the input, so redeliveries repeat it."""
    digest = hashlib.sha256(raw).hexdigest()
    return DeadLettered(
        event_id=derive_id(
            "deadletter", stage, origin_topic, origin_partition, origin_offset, digest
        ),
        dev_eui=dev_eui,
        occurred_at=received_at,
        recorded_at=received_at,
        source=source,
        data=DeadLetterData(
            stage=stage,
            reason=reason,
            detail=detail[:2000],
            raw_b64=base64.b64encode(raw).decode("ascii"),
            origin_topic=origin_topic,
            origin_partition=origin_partition,
            origin_offset=origin_offset,
            received_at=received_at,
        ),
    )
