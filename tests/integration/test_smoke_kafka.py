"""Produce and consume keyed records with aiokafka through the harness's broker."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from parkstream.config import Settings
from parkstream.kafka_profile import (
    aiokafka_client_kwargs,
    aiokafka_consumer_kwargs,
    aiokafka_producer_kwargs,
)

pytestmark = pytest.mark.integration

KEYS = ("bay-1", "bay-2", "bay-3")
PER_KEY = 5


async def test_keyed_records_arrive_in_order_per_key(settings: Settings) -> None:
    topic = settings.topic("smoke.v1")
    admin = AIOKafkaAdminClient(**aiokafka_client_kwargs(settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(**aiokafka_producer_kwargs(settings))
    await producer.start()
    try:
        for i in range(PER_KEY):
            for key in KEYS:
                await producer.send(topic, key=key.encode(), value=f"{key}:{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        **aiokafka_consumer_kwargs(
            settings,
            group_id=f"{settings.topic_prefix}-smoke",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        ),
    )
    await consumer.start()
    received: dict[str, list[str]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    try:
        async with asyncio.timeout(30):
            while sum(len(v) for v in received.values()) < len(KEYS) * PER_KEY:
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        assert record.key is not None
                        assert record.value is not None
                        key = record.key.decode()
                        received[key].append(record.value.decode())
                        partitions[key].add(record.partition)
        end_offsets = await consumer.end_offsets(list(consumer.assignment()))
    finally:
        await consumer.stop()

    assert received == {key: [f"{key}:{i}" for i in range(PER_KEY)] for key in KEYS}
    assert all(len(p) == 1 for p in partitions.values()), partitions
    # One record per batch (test profile) keeps the broker's end offsets right.
    assert sum(end_offsets.values()) == len(KEYS) * PER_KEY
