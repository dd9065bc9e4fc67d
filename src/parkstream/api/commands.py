"""Commands from the API to ``space-commands``, keyed by space, with CloudEvents headers.

A command's ``event_id`` is derived from the tenant and what identifies the request (an
``Idempotency-Key`` when the caller gave one), so a retried request sends the same
command and the fold ignores the repeat.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from parkstream.config import Settings
from parkstream.domain import cloudevents
from parkstream.domain.contract import encode
from parkstream.domain.envelope import Envelope, Record, Source
from parkstream.domain.ids import derive_id

TOPIC = "space-commands.v1"


def command_id(tenant_id: str, kind: str, space_id: str, request_key: str | None) -> str:
    if request_key is None:
        return str(uuid.uuid4())
    return derive_id("api", tenant_id, kind, space_id, request_key)


class CommandSender:
    def __init__(self, settings: Settings, producer: Any, metrics: Any = None) -> None:
        self.settings = settings
        self.producer = producer
        self.topic = settings.topic(TOPIC)
        self.metrics = metrics

    def build(
        self,
        cls: type[Envelope],
        tenant_id: str,
        space_id: str,
        data: Record,
        *,
        request_key: str | None = None,
        correlation_id: str | None = None,
        now: datetime | None = None,
    ) -> Envelope:
        at = now or datetime.now(UTC)
        return cls(  # type: ignore[call-arg]  # each command class pins its own ``type``
            event_id=command_id(tenant_id, cls.TYPE, space_id, request_key),
            tenant_id=tenant_id,
            space_id=space_id,
            occurred_at=at,
            recorded_at=at,
            source=Source(kind="api", topic=None),
            correlation_id=correlation_id,
            data=data,
        )

    async def send(self, *commands: Envelope) -> None:
        """Send and wait until the broker has them: an accepted request is never lost."""
        futures = []
        for c in commands:
            assert c.space_id is not None
            futures.append(
                await self.producer.send(
                    self.topic,
                    encode(c),
                    key=c.space_id.encode(),
                    headers=cloudevents.headers(c, TOPIC),
                )
            )
            if self.metrics is not None:
                self.metrics.commands.labels(c.type).inc()
        for f in futures:
            await f
