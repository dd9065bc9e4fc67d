"""A bay's state at a past time, folded from its space events (``GET .../as-of``).

The read model holds the present; the log holds every past. The bay's events live in one
partition of ``space-events`` (keyed by space id, Kafka's default partitioner), so this
reads that partition from its start, keeps the bay's events that happened up to the
asked time, folds them with the same ``evolve`` the worker uses, and lets the decider
explain the result at that time. Its cost grows with the retained log of the partition.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from parkstream.api import models as m
from parkstream.api.problems import ApiProblem
from parkstream.domain.contract import ContractError, decode
from parkstream.domain.decider import explain
from parkstream.domain.evolve import fold
from parkstream.kafka_profile import aiokafka_consumer_kwargs

TOPIC = "space-events.v1"
READ_BUDGET_S = 20.0


async def state_as_of(ctx: Any, tenant: str, space_id: str, at: datetime) -> m.SpaceAsOf | None:
    settings = ctx.settings
    topic = settings.topic(TOPIC)
    consumer = AIOKafkaConsumer(
        **aiokafka_consumer_kwargs(settings, group_id=None, enable_auto_commit=False)
    )
    await consumer.start()
    try:
        partitions = sorted(await _partitions(consumer, topic))
        if not partitions:
            raise ApiProblem(503, "unavailable", f"topic {topic} has no partitions")
        key = space_id.encode()
        tp = TopicPartition(topic, DefaultPartitioner()(key, partitions, partitions))
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        events = []
        deadline = time.monotonic() + READ_BUDGET_S
        while True:
            batch = await consumer.getmany(tp, timeout_ms=200, max_records=5000)
            for record in batch.get(tp, []):
                if record.key != key:
                    continue
                try:
                    event = decode(record.value)
                except ContractError:
                    continue  # not ours to judge here; the projector dead-letters it
                if event.tenant_id == tenant and event.occurred_at <= at:
                    events.append(event)
            # The fetch's high-water mark is exact; ListOffsets may lag on some brokers.
            high = consumer.highwater(tp)
            if high is not None:
                end = high
            if await consumer.position(tp) >= end and (batch or high is not None or end == 0):
                break
            if time.monotonic() > deadline:
                raise ApiProblem(
                    503, "unavailable", "reading the bay's events took too long; try again"
                )
    finally:
        await consumer.stop()
    if not events:
        return None
    space = fold(events, space_id=space_id)
    if not space.registered:
        return None
    why = explain(space, at)
    return m.SpaceAsOf(
        space_id=space_id,
        as_of=at,
        state=why.state.value,
        layer=why.layer.value,
        summary=why.summary,
        explanation=why.model_dump(mode="json"),
        events_folded=len(events),
    )


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    found = consumer.partitions_for_topic(topic)
    if not found:
        await consumer._client.force_metadata_update()
        found = consumer.partitions_for_topic(topic)
    return set(found or ())
