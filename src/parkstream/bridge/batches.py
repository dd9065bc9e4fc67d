"""Records appended to one open Kafka produce batch per partition.

``AIOKafkaProducer.send`` costs a coroutine, a partitioner call and a future for every
record. The bridge builds the batches itself instead (``create_batch``/``send_batch``):
a batch is submitted when its first record is appended and left open, so the records
that arrive while it waits for the sender (its linger time, or the request in flight)
join it, as ``send`` would have done; the sender closes it when it takes it. Each
record is then covered by its batch's one future.

Records go to the partition the producer's default partitioner would pick for their
key (murmur2, as the Java client), so one device's records stay on one partition in
the order they were appended. aiokafka keeps at most one batch per partition queued
and one request per broker in flight, so a later batch of a partition never overtakes
an earlier one; submitting a batch waits while a full one of the same partition has
not been taken yet, which holds the reader back when Kafka is slower than MQTT.
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
    """The open batch of each topic partition, and the future that covers its records."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.partitions = PartitionCache(producer)
        self._open: dict[tuple[str, int], tuple[Any, asyncio.Future[Any]]] = {}

    async def add(
        self, topic: str, key: bytes, value: bytes, headers: Headers
    ) -> asyncio.Future[Any]:
        """Append a record; the future is done when Kafka acknowledged its batch."""
        partition = await self.partitions.of(topic, key)
        tp = (topic, partition)
        current = self._open.get(tp)
        if current is not None:
            batch, pending = current
            # A batch the sender took (or failed) is closed: append returns None.
            if not pending.done() and batch.append(
                timestamp=None, key=key, value=value, headers=headers
            ):
                return pending
        batch = self.producer.create_batch()
        if batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
            raise MessageSizeTooLargeError(f"a record of {len(value)} bytes exceeds a batch")
        future: asyncio.Future[Any] = await self.producer.send_batch(
            batch, topic, partition=partition
        )
        future.add_done_callback(_retrieve)
        self._open[tp] = (batch, future)
        return future


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
        """Forget topics whose partitions changed (call now and then, e.g. once per burst)."""
        for topic, (partitions, _) in list(self._known.items()):
            if sorted(await self.producer.partitions_for(topic)) != partitions:
                del self._known[topic]


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a failed batch's exception as seen: the acknowledger raises the first one."""
    if not future.cancelled():
        future.exception()
