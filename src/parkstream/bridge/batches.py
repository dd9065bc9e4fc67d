"""Records grouped into one Kafka produce batch per partition, then sent together.

``AIOKafkaProducer.send`` costs a coroutine, a partitioner call and a future for every
record; the bridge produces what a burst of MQTT messages yields, so it builds the
batches itself (``create_batch``/``send_batch``) and waits for one future per batch.

Records go to the partition the producer's default partitioner would pick for their
key (murmur2, as the Java client), so one device's records stay on one partition and,
appended in arrival order, in order. Batches are closed before they are submitted:
a closed batch does not linger, the burst is the batch. aiokafka keeps at most one
batch per partition queued and one request per broker in flight, so a later batch of
a partition never overtakes an earlier one; ``send`` waits while the previous batch
of the same partition has not been taken, which holds the reader back when Kafka is
slower than MQTT.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner

Headers = Sequence[tuple[str, bytes]]
MAX_CACHED_KEYS = 100_000


class PartitionBatches:
    """One burst's records, by topic and partition, in the order they were added."""

    def __init__(self, producer: Any, partitions: PartitionCache) -> None:
        self.producer = producer
        self.partitions = partitions
        self._open: dict[tuple[str, int], Any] = {}
        self._full: list[tuple[str, int, Any]] = []
        self.records = 0

    async def add(self, topic: str, key: bytes, value: bytes, headers: Headers) -> None:
        partition = await self.partitions.of(topic, key)
        tp = (topic, partition)
        batch = self._open.get(tp)
        if batch is None:
            batch = self._open[tp] = self.producer.create_batch()
        if batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
            # Full: it goes out before the next one of its partition.
            self._full.append((topic, partition, batch))
            batch = self._open[tp] = self.producer.create_batch()
            if batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
                raise MessageSizeTooLargeError(f"a record of {len(value)} bytes exceeds a batch")
        self.records += 1

    async def send(self) -> list[asyncio.Future[Any]]:
        """Submit every batch (full ones first, each partition in order); their futures."""
        futures: list[asyncio.Future[Any]] = []
        for topic, partition, batch in [
            *self._full,
            *((topic, partition, batch) for (topic, partition), batch in self._open.items()),
        ]:
            batch.close()
            future = await self.producer.send_batch(batch, topic, partition=partition)
            future.add_done_callback(_retrieve)
            futures.append(future)
        self._full.clear()
        self._open.clear()
        return futures


class PartitionCache:
    """The partition of each key, as the producer's default partitioner computes it."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self._partitioner = DefaultPartitioner()
        self._known: dict[str, tuple[list[int], dict[bytes, int]]] = {}

    async def of(self, topic: str, key: bytes) -> int:
        known = self._known.get(topic)
        if known is None:
            known = self._known[topic] = (sorted(await self.producer.partitions_for(topic)), {})
        partitions, by_key = known
        partition = by_key.get(key)
        if partition is None:
            if len(by_key) >= MAX_CACHED_KEYS:
                by_key.clear()
            partition = by_key[key] = self._partitioner(key, partitions, partitions)
        return partition

    async def refresh(self) -> None:
        """Forget topics whose partition count changed (call once per burst)."""
        for topic, (partitions, _) in list(self._known.items()):
            if sorted(await self.producer.partitions_for(topic)) != partitions:
                del self._known[topic]


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a failed batch's exception as seen: the acknowledger raises the first one."""
    if not future.cancelled():
        future.exception()
