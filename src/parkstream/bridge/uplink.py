"""MQTT -> Kafka: parse every ChirpStack message with the core, produce, then acknowledge.

A message is acknowledged to the MQTT broker only after Kafka has acknowledged every
record produced from it, and acknowledgements go out in the order the messages came
(MQTT requires it). A crash at any point therefore loses nothing: the broker
redelivers what was not acknowledged, and the repeat carries the same event ids.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiomqtt

from parkstream.bridge import mqtt
from parkstream.bridge.metrics import BridgeMetrics
from parkstream.bridge.state import BridgeState
from parkstream.decoders.registry import DecoderRegistry
from parkstream.domain.contract import encode
from parkstream.domain.deadletter import dead_letter
from parkstream.domain.envelope import Source
from parkstream.ingest.parse import parse_message
from parkstream.ingest.result import ParseResult
from parkstream.logging import get_logger

log = get_logger("parkstream.bridge.uplink")

DRAIN_BURST = 256


@dataclass(slots=True)
class _InFlight:
    message: aiomqtt.Message
    futures: list[asyncio.Future[Any]]
    received: float
    result: ParseResult
    event: str


def _utcnow() -> datetime:
    return datetime.now(UTC)


class UplinkPump:
    def __init__(
        self,
        *,
        producer: Any,
        device_topic: str,
        deadletter_topic: str,
        decoders: DecoderRegistry,
        state: BridgeState,
        metrics: BridgeMetrics,
        clock: Callable[[], datetime] = _utcnow,
        max_in_flight: int = 10_000,
    ) -> None:
        self.producer = producer
        self.device_topic = device_topic
        self.deadletter_topic = deadletter_topic
        self.decoders = decoders
        self.state = state
        self.metrics = metrics
        self.clock = clock
        self.max_in_flight = max_in_flight
        self._in_flight_keys: set[str] = set()

    async def run(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """Pump until ``stop`` is set (then drain what is in flight) or a broker fails."""
        queue: asyncio.Queue[_InFlight | None] = asyncio.Queue(self.max_in_flight)
        reader = asyncio.create_task(self._read(client, queue), name="bridge-uplink-read")
        acker = asyncio.create_task(self._ack(client, queue), name="bridge-uplink-ack")
        stopper = asyncio.create_task(stop.wait(), name="bridge-uplink-stop")
        try:
            await asyncio.wait({reader, acker, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            if not acker.done():
                await queue.put(None)  # drain: acknowledge what Kafka has confirmed
        try:
            await acker
        finally:
            self._in_flight_keys.clear()  # what was not acknowledged will be redelivered
        if reader.done() and not reader.cancelled() and reader.exception() is not None:
            raise reader.exception()  # type: ignore[misc]

    async def _read(self, client: aiomqtt.Client, queue: asyncio.Queue[_InFlight | None]) -> None:
        incoming = client._queue  # aiomqtt 2.5 internals, as for manual acks (mqtt.py)
        async for message in client.messages:
            await queue.put(await self.handle(message))
            # aiomqtt 2.5 creates a task for every message it hands out; what has already
            # arrived is taken straight from its queue instead (a bounded burst per turn).
            for _ in range(DRAIN_BURST):
                if incoming.empty():
                    break
                await queue.put(await self.handle(incoming.get_nowait()))

    async def handle(self, message: aiomqtt.Message) -> _InFlight:
        received = time.monotonic()
        topic = message.topic.value
        payload = (
            message.payload
            if isinstance(message.payload, bytes)
            else bytes(str(message.payload or ""), "utf-8")
        )
        recorded_at = self.clock()
        result = parse_message(topic, payload, recorded_at=recorded_at, decoders=self.decoders)
        event = topic.rsplit("/", 1)[-1]
        dedup_key = result.dedup_key
        if result.outcome == "accepted" and dedup_key:
            # A repeat of a message still in flight is safe to acknowledge: acknowledgements
            # go in order, so it is acknowledged only after the first one reached Kafka.
            if dedup_key in self._in_flight_keys or dedup_key in self.state.dedup:
                result = ParseResult.ignored("duplicate", "seen within the dedup window", dedup_key)
            else:
                self._in_flight_keys.add(dedup_key)
        futures: list[asyncio.Future[Any]] = []
        if result.outcome == "accepted":
            for record in result.events:
                key = (record.dev_eui or "").encode()
                futures.append(await self.producer.send(self.device_topic, encode(record), key=key))
            first = result.events[0] if result.events else None
            device = getattr(getattr(first, "data", None), "device", None)
            if first is not None and first.dev_eui and device is not None and device.application_id:
                self.state.learn_application(first.dev_eui, device.application_id)
        elif result.outcome == "rejected":
            record = dead_letter(
                stage="bridge",
                reason=result.reason or "rejected",
                detail=result.detail,
                raw=payload,
                received_at=recorded_at,
                source=Source(kind="mqtt", topic=topic),
                origin_topic=topic,
            )
            futures.append(
                await self.producer.send(self.deadletter_topic, encode(record), key=topic.encode())
            )
            log.info("uplink rejected", topic=topic, reason=result.reason, detail=result.detail)
        self.metrics.in_flight.inc()
        return _InFlight(message, futures, received, result, event)

    async def _ack(self, client: aiomqtt.Client, queue: asyncio.Queue[_InFlight | None]) -> None:
        while (item := await queue.get()) is not None:
            for future in item.futures:
                await future  # a Kafka failure raises here: nothing after it is acknowledged
            mqtt.ack(client, item.message)
            self._account(item)

    def _account(self, item: _InFlight) -> None:
        m = self.metrics
        m.in_flight.dec()
        result = item.result
        m.messages.labels(item.event, result.outcome).inc()
        if result.outcome == "accepted":
            if result.dedup_key:
                self.state.dedup.seen(result.dedup_key, time.time())
                self._in_flight_keys.discard(result.dedup_key)
            m.produced.labels(self.device_topic).inc(len(result.events))
        elif result.outcome == "rejected":
            m.rejected.labels(result.reason or "rejected").inc()
            m.produced.labels(self.deadletter_topic).inc()
        m.latency.observe(time.monotonic() - item.received)
