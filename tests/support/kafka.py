"""Reading and writing test topics with aiokafka, with deadlines instead of sleeps."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from parkstream.config import Settings
from parkstream.domain.contract import decode
from parkstream.domain.envelope import Envelope
from parkstream.kafka_profile import aiokafka_consumer_kwargs, aiokafka_producer_kwargs


async def read_records(
    settings: Settings, topic: str, count: int, timeout: float = 30.0
) -> list[Any]:
    """The first ``count`` records of ``topic`` (all partitions); fails after ``timeout``."""
    consumer = AIOKafkaConsumer(
        topic, **aiokafka_consumer_kwargs(settings, auto_offset_reset="earliest", group_id=None)
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{topic}: {len(records)} of {count} records after {timeout}s")
            batch = await consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


async def read_all(settings: Settings, topic: str, quiet: float = 2.0) -> list[Any]:
    """Every record of ``topic``: read until nothing new came for ``quiet`` seconds."""
    consumer = AIOKafkaConsumer(
        topic, **aiokafka_consumer_kwargs(settings, auto_offset_reset="earliest", group_id=None)
    )
    await consumer.start()
    records: list[Any] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=int(quiet * 1000))
            if not batch:
                return records
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()


async def read_events(
    settings: Settings, topic: str, count: int, timeout: float = 30.0
) -> list[Envelope]:
    return [decode(r.value) for r in await read_records(settings, topic, count, timeout)]


async def read_until(
    settings: Settings,
    done: Any,
    topic: str = "device-events.v1",
    timeout: float = 30.0,
) -> list[Envelope]:
    """Read ``topic`` (a catalogue name) from the start until ``done(events)`` holds."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic),
        **aiokafka_consumer_kwargs(settings, auto_offset_reset="earliest", group_id=None),
    )
    await consumer.start()
    events: list[Envelope] = []
    deadline = time.monotonic() + timeout
    try:
        while not done(events):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{topic}: condition not met after {timeout}s ({len(events)} read)"
                )
            batch = await consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
            for part in batch.values():
                events.extend(decode(r.value) for r in part)
    finally:
        await consumer.stop()
    return events


async def produce(settings: Settings, topic: str, items: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(**aiokafka_producer_kwargs(settings))
    await producer.start()
    try:
        for key, value in items:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> None:
    """Await until ``predicate()`` is true; fail with a clear message at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate}")
        await asyncio.sleep(interval)
