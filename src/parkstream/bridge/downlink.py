"""Kafka -> MQTT: ``downlinks`` records become ChirpStack ``command/down`` messages.

Records are published with QoS 1 and the consumer offsets are committed only after
the broker acknowledged every publish of the batch (at-least-once; ChirpStack's
queue-item id is the command id, so a repeat is recognisable). Invalid commands go
to the dead-letter topic; expired ones are counted and skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiomqtt

from parkstream.bridge.commands import Dialect, InvalidCommand, build_command
from parkstream.bridge.metrics import BridgeMetrics
from parkstream.bridge.state import BridgeState
from parkstream.domain import cloudevents
from parkstream.domain.contract import ContractError, decode, encode
from parkstream.domain.deadletter import dead_letter
from parkstream.domain.downlinks import DownlinkRequested
from parkstream.domain.envelope import Source
from parkstream.logging import get_logger

log = get_logger("parkstream.bridge.downlink")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DownlinkPump:
    def __init__(
        self,
        *,
        consumer: Any,
        producer: Any,
        downlink_topic: str,
        deadletter_topic: str,
        state: BridgeState,
        metrics: BridgeMetrics,
        dialect: Dialect,
        default_application_id: str | None,
        with_expiry: bool,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.downlink_topic = downlink_topic
        self.deadletter_topic = deadletter_topic
        self.state = state
        self.metrics = metrics
        self.dialect = dialect
        self.default_application_id = default_application_id
        self.with_expiry = with_expiry
        self.clock = clock

    async def run(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batch = await self.consumer.getmany(timeout_ms=100, max_records=500)
            if not batch:
                continue
            publishes: list[asyncio.Task[None]] = []
            dead: list[asyncio.Future[Any]] = []
            for records in batch.values():
                for rec in records:
                    await self._one(client, rec, publishes, dead)
            await asyncio.gather(*publishes)
            for future in dead:
                await future
            await self.consumer.commit()

    async def _one(
        self,
        client: aiomqtt.Client,
        rec: Any,
        publishes: list[asyncio.Task[None]],
        dead: list[asyncio.Future[Any]],
    ) -> None:
        raw: bytes = rec.value or b""
        try:
            record = decode(raw)
            if not isinstance(record, DownlinkRequested):
                raise InvalidCommand("wrong_type", f"{record.type} on the downlinks topic")
            if record.data.expires_at is not None and record.data.expires_at <= self.clock():
                self.metrics.downlinks.labels("expired").inc()
                log.info(
                    "downlink expired", dev_eui=record.dev_eui, command_id=record.data.command_id
                )
                return
            app = (
                record.data.application_id
                or self.state.applications.get(record.dev_eui)
                or self.default_application_id
            )
            command = build_command(
                record, application_id=app, dialect=self.dialect, with_expiry=self.with_expiry
            )
        except (ContractError, InvalidCommand) as exc:
            reason = exc.reason if isinstance(exc, InvalidCommand) else "invalid_record"
            self.metrics.downlinks.labels("rejected").inc()
            log.warning("downlink rejected", reason=reason, detail=str(exc))
            letter = dead_letter(
                stage="bridge-downlink",
                reason=reason,
                detail=str(exc),
                raw=raw,
                received_at=self.clock(),
                source=Source(
                    kind="kafka", topic=rec.topic, partition=rec.partition, offset=rec.offset
                ),
                origin_topic=rec.topic,
                origin_partition=rec.partition,
                origin_offset=rec.offset,
            )
            dead.append(
                await self.producer.send(
                    self.deadletter_topic,
                    encode(letter),
                    key=rec.topic.encode(),
                    headers=cloudevents.headers(letter, "deadletter.v1"),
                )
            )
            return
        publishes.append(asyncio.create_task(self._publish(client, command.topic, command.payload)))

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: bytes) -> None:
        await client.publish(topic, payload, qos=1)
        self.metrics.downlinks.labels("published").inc()
