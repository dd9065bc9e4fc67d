"""The projector process: ``space-events`` and ``device-events`` -> PostgreSQL, batch by batch.

A consumer in group ``<topic_prefix>.projector`` subscribed to both topics fetches
batches (``getmany``); the records of each topic are applied by its own
:class:`~parkstream.projector.store.Store` (``space-events``: registry, reservations,
activity; ``device-events``: device_health) with their offsets in one transaction, which
also notifies ``parkstream_projection`` (see :mod:`parkstream.projector.store`).
PostgreSQL, not Kafka, holds the position: on every assignment the consumer seeks to the
offsets stored there, so a projector killed at any moment resumes exactly after the
last committed batch. Records that cannot be projected go to ``deadletter.v1`` (stage
``projector``, with CloudEvents headers) before the batch commits.

A partition repositioned between the fetch of a batch and its write (a resync, a
rebalance) loses its records from that batch: they are fetched again from where it was
moved to.

Lag is the fetch high-watermark (``consumer.highwater``) minus the next offset to apply;
``end_offsets()`` is not used (the test broker gets it wrong for multi-record batches).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from parkstream.config import Settings
from parkstream.domain.cloudevents import headers
from parkstream.domain.contract import encode
from parkstream.domain.deadletter import dead_letter
from parkstream.domain.envelope import Source
from parkstream.logging import get_logger
from parkstream.projector import DEVICE_EVENTS, SPACE_EVENTS, projections_of
from parkstream.projector.collector import fewer_collections
from parkstream.projector.metrics import ProjectorMetrics
from parkstream.projector.records import Incoming
from parkstream.projector.store import Applied, Prepared, Rejection, Store

TOPIC = SPACE_EVENTS
TOPICS = (SPACE_EVENTS, DEVICE_EVENTS)
DEADLETTER_TOPIC = "deadletter.v1"
DEFAULT_BATCH = 5000
DEFAULT_MONTHS_AHEAD = 3
RETRIES = 5

log = get_logger("parkstream.projector")


def group_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}.projector"


class Projector:
    """Runs until ``stop`` is set; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        schema: str = "public",
        batch_size: int = DEFAULT_BATCH,
        months_ahead: int = DEFAULT_MONTHS_AHEAD,
        metrics: ProjectorMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.schema = schema
        self.batch_size = batch_size
        self.months_ahead = months_ahead
        self.metrics = metrics or ProjectorMetrics()
        self.clock = clock
        self.topic = settings.topic(TOPIC)
        self.topics = {settings.topic(t): t for t in TOPICS}  # full name -> catalogue name
        self.deadletter_topic = settings.topic(DEADLETTER_TOPIC)
        self._db = asyncio.Lock()  # the stores' connection: the loop and the rebalances
        self._fetched_from: dict[tuple[str, int], int | None] = {}
        self._moves = 0  # repositionings of partitions so far
        self._moved_at: dict[tuple[str, int], int] = {}  # partition -> its last one
        self._month: date | None = None
        self._producer: Any = None
        self._lags: dict[tuple[str, int], int] = {}
        self.batches = 0
        self.first_batch_at: float | None = None  # time.monotonic() when the first batch began
        self.last_batch_at: float | None = None  # ... and when the last one committed

    async def run(self, stop: asyncio.Event) -> None:
        import asyncpg
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        from parkstream.kafka_profile import aiokafka_consumer_kwargs, aiokafka_producer_kwargs

        conn = await asyncpg.connect(self.settings.database_url.get_secret_value())
        try:
            stores = {
                full: Store(
                    conn, schema=self.schema, topic=full, projections=projections_of(catalogue)
                )
                for full, catalogue in self.topics.items()
            }
            for store in stores.values():
                created = await store.setup(self.months_ahead, self.clock().date())
                if created:
                    log.info("partitions created", months=[m.isoformat() for m in created])
            self._month = self.clock().date().replace(day=1)
            producer = AIOKafkaProducer(**aiokafka_producer_kwargs(self.settings))
            await producer.start()
            self._producer = producer
            try:
                consumer = AIOKafkaConsumer(
                    **aiokafka_consumer_kwargs(
                        self.settings,
                        group_id=group_id(self.settings),
                        enable_auto_commit=False,
                        auto_offset_reset="earliest",
                        max_partition_fetch_bytes=4 * 1024 * 1024,
                    )
                )
                consumer.subscribe(list(stores), listener=_listener(self, stores, consumer))
                await consumer.start()
                try:
                    with fewer_collections():
                        await self._loop(stores, consumer, stop)
                finally:
                    await consumer.stop()
            finally:
                await producer.stop()
        finally:
            await conn.close()

    async def _loop(self, stores: dict[str, Store], consumer: Any, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=self.batch_size)
            fetched_at = self._moves
            # aiokafka's records have partition, offset, key and value: used as they are
            by_topic: dict[str, list[Incoming]] = {}
            for tp, messages in batch.items():
                by_topic.setdefault(tp.topic, []).extend(messages)
            if by_topic and self.first_batch_at is None:
                self.first_batch_at = time.monotonic()
            # Inline: preparing in a thread while the previous batch is written was measured
            # slower on two cores (the GIL hand-offs cost more CPU than the overlap saved).
            prepared = {t: stores[t].prepare(records) for t, records in by_topic.items()}
            if prepared:
                async with self._db:
                    if self._moves != fetched_at:
                        prepared = self._unmoved(stores, prepared, fetched_at)
                    results = await self._write(stores, prepared)
                self._finish(results, consumer)
            self._update_lag(consumer)

    def _moved(self, topic: str, partition: int) -> None:
        """Note that a partition was repositioned (seek, assignment, revocation)."""
        self._moves += 1
        self._moved_at[(topic, partition)] = self._moves

    def _unmoved(
        self, stores: dict[str, Store], prepared: dict[str, Prepared], fetched_at: int
    ) -> dict[str, Prepared]:
        """The batch without the records of partitions repositioned after it was fetched
        (they will be fetched again from where the partition was moved to)."""
        kept: dict[str, Prepared] = {}
        for topic, batch in prepared.items():
            records = [
                r
                for r in batch.records
                if self._moved_at.get((topic, r.partition), 0) <= fetched_at
            ]
            if len(records) == len(batch.records):
                kept[topic] = batch
            elif records:
                kept[topic] = stores[topic].prepare(records)
        return kept

    async def _write(
        self, stores: dict[str, Store], prepared: dict[str, Prepared]
    ) -> list[tuple[str, Applied]]:
        """Apply a prepared batch, topic by topic (the caller holds ``self._db``)."""
        started = time.perf_counter()
        results: list[tuple[str, Applied]] = []
        await self._roll_month(stores[self.topic])
        for topic, batch in prepared.items():
            fetched = {
                p: self._fetched_from.get((topic, p)) for p in {r.partition for r in batch.records}
            }
            results.append((topic, await self._apply(stores[topic], batch, fetched)))
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(sum(len(b.records) for b in prepared.values()))
        return results

    def _finish(self, results: list[tuple[str, Applied]], consumer: Any) -> None:
        """Book a committed batch: metrics, positions, and the seeks it asked for."""
        from aiokafka import TopicPartition

        self.batches += 1
        self.last_batch_at = time.monotonic()
        m = self.metrics
        assigned = consumer.assignment()
        for topic, result in results:
            m.records.inc(result.records)
            m.events.inc(result.events)
            for table, n in result.rows.items():
                m.rows.labels(table).inc(n)
            for partition, offset in result.positions.items():
                self._fetched_from[(topic, partition)] = offset
            for partition, offset in result.resync.items():
                m.resyncs.inc()
                tp = TopicPartition(topic, partition)
                if tp in assigned:
                    consumer.seek(tp, offset)
                    self._moved(topic, partition)
                    self._fetched_from[(topic, partition)] = offset
                log.info("resync", topic=topic, partition=partition, offset=offset)

    async def _apply(
        self, store: Store, prepared: Prepared, fetched: dict[int, int | None]
    ) -> Applied:
        """Apply a batch; a transaction that lost a deadlock against another projector
        (both merging into one site's day) is rolled back whole and tried again."""
        import asyncpg

        async def rejected(rejections: list[Rejection]) -> None:
            await self._dead_letter(store.topic, rejections)

        for attempt in range(1, RETRIES + 1):
            try:
                return await store.apply(prepared, fetched_from=fetched, on_rejected=rejected)
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
                if attempt == RETRIES:
                    raise
                log.warning("batch retried", attempt=attempt, error=str(exc))
                await asyncio.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    async def _roll_month(self, store: Store) -> None:
        """Create the partitions ahead again when a month turns."""
        month = self.clock().date().replace(day=1)
        if month != self._month:
            await store.ensure_ahead(self.months_ahead, month)
            self._month = month

    def _update_lag(self, consumer: Any) -> None:
        lags: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            position = self._fetched_from.get((tp.topic, tp.partition))
            if high is not None and position is not None:
                lag = lags[(tp.topic, tp.partition)] = max(0, high - position)
                self.metrics.lag.labels(self.topics.get(tp.topic, tp.topic), str(tp.partition)).set(
                    lag
                )
        self._lags = lags

    def lag_total(self) -> int | None:
        """Records behind the high-watermarks of the assigned partitions (None: unknown)."""
        if not self._lags:
            return None
        return sum(self._lags.values())

    async def _dead_letter(self, topic: str, rejections: list[Rejection]) -> None:
        """Write every rejected record of ``topic`` to the dead-letter topic (with its
        CloudEvents headers) before the batch commits."""
        futures = []
        for r in rejections:
            record = r.record
            letter = dead_letter(
                stage="projector",
                reason=r.error.reason,
                detail=r.error.detail,
                raw=record.value or b"",
                received_at=self.clock(),
                source=Source(
                    kind="kafka", topic=topic, partition=record.partition, offset=record.offset
                ),
                origin_topic=topic,
                origin_partition=record.partition,
                origin_offset=record.offset,
            )
            futures.append(
                await self._producer.send(
                    self.deadletter_topic,
                    encode(letter),
                    key=topic.encode(),
                    headers=headers(letter, DEADLETTER_TOPIC),
                )
            )
            self.metrics.rejected.labels(r.error.reason).inc()
        await asyncio.gather(*futures)
        log.warning("dead-lettered", topic=topic, count=len(rejections))


def _listener(projector: Projector, stores: dict[str, Store], consumer: Any) -> Any:
    from aiokafka import ConsumerRebalanceListener

    class Rebalance(_Rebalance, ConsumerRebalanceListener):  # type: ignore[misc]
        pass

    return Rebalance(projector, stores, consumer)


class _Rebalance:
    """Seeks each assigned partition to the offset stored in PostgreSQL."""

    def __init__(self, projector: Projector, stores: dict[str, Store], consumer: Any) -> None:
        self.projector = projector
        self.stores = stores
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        for tp in revoked:
            self.projector._fetched_from.pop((tp.topic, tp.partition), None)
            self.projector._moved(tp.topic, tp.partition)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        for topic, store in self.stores.items():
            mine = [tp for tp in assigned if tp.topic == topic]
            if not mine:
                continue
            async with self.projector._db:
                stored = await store.positions(tp.partition for tp in mine)
            for tp in mine:
                self.projector._moved(topic, tp.partition)
                applied = [o for o in stored[tp.partition].values() if o >= 0]
                if applied:
                    self.consumer.seek(tp, min(applied))
                    self.projector._fetched_from[(topic, tp.partition)] = min(applied)
                else:
                    await self.consumer.seek_to_beginning(tp)
                    self.projector._fetched_from[(topic, tp.partition)] = None
            log.info("assigned", topic=topic, partitions=sorted(tp.partition for tp in mine))
