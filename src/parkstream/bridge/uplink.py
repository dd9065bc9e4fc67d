"""MQTT -> Kafka: parse every ChirpStack message with the core, produce, then acknowledge.

A message is acknowledged to the MQTT broker only after Kafka has acknowledged every
record produced from it, and acknowledgements go out in the order the messages came
(MQTT requires it). A crash at any point therefore loses nothing: the broker
redelivers what was not acknowledged, and the repeat carries the same event ids.

Messages are taken in bursts (what keeps arriving, see ``_read``); their
records are appended to open per-partition produce batches (``batches.py``), and a
burst is acknowledged, in order, once Kafka acknowledged every batch holding one of
its records. Every record carries the CloudEvents headers of its type.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiomqtt

from parkstream.bridge import mqtt
from parkstream.bridge.batches import PartitionBatches
from parkstream.bridge.metrics import BridgeMetrics
from parkstream.bridge.state import BridgeState
from parkstream.decoders.registry import DecoderRegistry
from parkstream.domain import cloudevents
from parkstream.domain.contract import encode
from parkstream.domain.deadletter import dead_letter
from parkstream.domain.envelope import Source
from parkstream.ingest.parse import parse_message
from parkstream.ingest.result import ParseResult
from parkstream.logging import get_logger

log = get_logger("parkstream.bridge.uplink")

DRAIN_BURST = 256  # at most this many messages parsed in one go
BURST_TARGET = 64  # gather up to this many while messages keep arriving
DEVICE_EVENTS = "device-events.v1"  # catalogue names, for the CloudEvents headers
DEADLETTER = "deadletter.v1"


@dataclass(slots=True)
class _Burst:
    """Messages taken together, what parsing made of each, and their produce batches."""

    messages: list[aiomqtt.Message]
    results: list[ParseResult]
    events: list[str]
    futures: list[asyncio.Future[Any]]
    received: float


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _take(incoming: asyncio.Queue[aiomqtt.Message], burst: list[aiomqtt.Message]) -> None:
    """Move what has arrived into ``burst``, up to :data:`DRAIN_BURST` messages."""
    while len(burst) < DRAIN_BURST and not incoming.empty():
        burst.append(incoming.get_nowait())


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
        self._batches = PartitionBatches(producer)
        self._in_flight_keys: set[str] = set()

    async def run(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """Pump until ``stop`` is set (then drain what is in flight) or a broker fails."""
        self._batches = PartitionBatches(self.producer)  # nothing left over from a failure
        queue: asyncio.Queue[_Burst | None] = asyncio.Queue(
            max(1, self.max_in_flight // DRAIN_BURST)
        )
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

    async def _read(self, client: aiomqtt.Client, queue: asyncio.Queue[_Burst | None]) -> None:
        incoming = client._queue  # aiomqtt 2.5 internals, as for manual acks (mqtt.py)
        async for message in client.messages:
            # aiomqtt 2.5 creates a task for every message it hands out; what has already
            # arrived is taken straight from its queue instead (a bounded burst per turn).
            received = time.monotonic()
            burst = [message]
            _take(incoming, burst)
            # paho reads one packet per turn of the event loop. While every turn brings
            # another message, let them come: a burst parsed at once costs much less per
            # message than waking up for each. A turn that brings nothing ends the wait,
            # so a lone message is not held back.
            while len(burst) < BURST_TARGET:
                await asyncio.sleep(0)
                if incoming.empty():
                    break
                _take(incoming, burst)
            await queue.put(await self.handle(burst, received))

    async def handle(self, messages: list[aiomqtt.Message], received: float) -> _Burst:
        """Parse a burst of messages and submit what they yield; Kafka acknowledges later.

        ``received`` is when the first of them was taken (``time.monotonic()``).
        """
        recorded_at = self.clock()
        await self._batches.partitions.refresh()
        futures: dict[asyncio.Future[Any], None] = {}  # in order, once each
        results: list[ParseResult] = []
        events: list[str] = []
        for message in messages:
            topic = message.topic.value
            payload = (
                message.payload
                if isinstance(message.payload, bytes)
                else bytes(str(message.payload or ""), "utf-8")
            )
            result = parse_message(topic, payload, recorded_at=recorded_at, decoders=self.decoders)
            result = self._deduplicated(result)
            if result.outcome == "accepted":
                await self._accepted(futures, result)
            elif result.outcome == "rejected":
                await self._rejected(futures, result, topic, payload, recorded_at)
            results.append(result)
            events.append(topic.rsplit("/", 1)[-1])
        self.metrics.in_flight.inc(len(messages))
        return _Burst(messages, results, events, list(futures), received)

    def _deduplicated(self, result: ParseResult) -> ParseResult:
        dedup_key = result.dedup_key
        if result.outcome == "accepted" and dedup_key:
            # A repeat of a message still in flight is safe to acknowledge: acknowledgements
            # go in order, so it is acknowledged only after the first one reached Kafka.
            if dedup_key in self._in_flight_keys or dedup_key in self.state.dedup:
                return ParseResult.ignored("duplicate", "seen within the dedup window", dedup_key)
            self._in_flight_keys.add(dedup_key)
        return result

    async def _accepted(
        self, futures: dict[asyncio.Future[Any], None], result: ParseResult
    ) -> None:
        for record in result.events:
            key = (record.dev_eui or "").encode()
            headers = cloudevents.headers(record, DEVICE_EVENTS)
            future = await self._batches.add(self.device_topic, key, encode(record), headers)
            futures[future] = None
        first = result.events[0] if result.events else None
        device = getattr(getattr(first, "data", None), "device", None)
        if first is not None and first.dev_eui and device is not None and device.application_id:
            self.state.learn_application(first.dev_eui, device.application_id)

    async def _rejected(
        self,
        futures: dict[asyncio.Future[Any], None],
        result: ParseResult,
        topic: str,
        payload: bytes,
        recorded_at: datetime,
    ) -> None:
        record = dead_letter(
            stage="bridge",
            reason=result.reason or "rejected",
            detail=result.detail,
            raw=payload,
            received_at=recorded_at,
            source=Source(kind="mqtt", topic=topic),
            origin_topic=topic,
        )
        headers = cloudevents.headers(record, DEADLETTER)
        future = await self._batches.add(
            self.deadletter_topic, topic.encode(), encode(record), headers
        )
        futures[future] = None
        log.info("uplink rejected", topic=topic, reason=result.reason, detail=result.detail)

    async def _ack(self, client: aiomqtt.Client, queue: asyncio.Queue[_Burst | None]) -> None:
        while (burst := await queue.get()) is not None:
            for future in burst.futures:
                await future  # a Kafka failure raises here: nothing after it is acknowledged
            for message in burst.messages:
                mqtt.ack(client, message)
            self._account(burst)

    def _account(self, burst: _Burst) -> None:
        m = self.metrics
        m.in_flight.dec(len(burst.messages))
        now = time.time()
        outcomes: Counter[tuple[str, str]] = Counter()
        rejected: Counter[str] = Counter()
        produced = 0
        for event, result in zip(burst.events, burst.results, strict=True):
            outcomes[event, result.outcome] += 1
            if result.outcome == "accepted":
                if result.dedup_key:
                    self.state.dedup.seen(result.dedup_key, now)
                    self._in_flight_keys.discard(result.dedup_key)
                produced += len(result.events)
            elif result.outcome == "rejected":
                rejected[result.reason or "rejected"] += 1
        for (event, outcome), count in outcomes.items():
            m.messages.labels(event, outcome).inc(count)
        for reason, count in rejected.items():
            m.rejected.labels(reason).inc(count)
        if produced:
            m.produced.labels(self.device_topic).inc(produced)
        if rejected:
            m.produced.labels(self.deadletter_topic).inc(rejected.total())
        latency = time.monotonic() - burst.received
        for _ in burst.messages:
            m.latency.observe(latency)
