"""Driving the worker through Kafka in tests: inputs in, space events and downlinks out."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from parkstream.config import Settings
from parkstream.domain import commands as cmd
from parkstream.domain import device_events as dev
from parkstream.domain.contract import decode, encode
from parkstream.domain.envelope import Envelope, Source
from parkstream.kafka_profile import aiokafka_consumer_kwargs, aiokafka_producer_kwargs
from parkstream.worker.app import Worker, create_worker


@dataclass
class Collector:
    """Reads topics from the start in the background and keeps every record."""

    settings: Settings
    topics: tuple[str, ...]
    records: dict[str, list[Envelope]] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            *(self.settings.topic(t) for t in self.topics),
            **aiokafka_consumer_kwargs(self.settings, auto_offset_reset="earliest", group_id=None),
        )
        await consumer.start()
        self.records = {t: [] for t in self.topics}
        by_full = {self.settings.topic(t): t for t in self.topics}

        async def run() -> None:
            try:
                while True:
                    batch = await consumer.getmany(timeout_ms=100)
                    for tp, recs in batch.items():
                        for r in recs:
                            self.records[by_full[tp.topic]].append(decode(r.value))
            finally:
                await consumer.stop()

        self._task = asyncio.create_task(run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def of(self, topic: str, type_: str | None = None, space_id: str | None = None) -> list[Any]:
        return [
            r
            for r in self.records.get(topic, [])
            if (type_ is None or r.type == type_) and (space_id is None or r.space_id == space_id)
        ]

    async def until(self, what: str, condition: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout}s: {what}")
            await asyncio.sleep(0.05)


class Driver:
    """Sends commands and device events with explicit (simulated) times."""

    def __init__(self, settings: Settings, tenant: str = "t-1") -> None:
        self.settings = settings
        self.tenant = tenant
        self.producer = AIOKafkaProducer(**aiokafka_producer_kwargs(settings))
        self._n = 0

    async def __aenter__(self) -> Driver:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    def _id(self, tag: str) -> str:
        self._n += 1
        return f"{tag}-{self._n}"

    async def command(
        self, cls: type[Envelope], space_id: str, data: Any, at: datetime
    ) -> Envelope:
        record = cls(
            event_id=self._id("cmd"),
            tenant_id=self.tenant if cls is not cmd.Tick else None,
            space_id=space_id,
            occurred_at=at,
            recorded_at=at,
            source=Source(kind="api"),
            data=data,
        )
        await self.producer.send_and_wait(
            self.settings.topic("space-commands.v1"), encode(record), key=space_id.encode()
        )
        return record

    async def tick(self, space_id: str, at: datetime) -> Envelope:
        return await self.command(cmd.Tick, space_id, cmd.TickData(due_at=at), at)

    async def device(self, record: Envelope) -> None:
        assert record.dev_eui
        await self.producer.send_and_wait(
            self.settings.topic("device-events.v1"), encode(record), key=record.dev_eui.encode()
        )

    def _dev(self, cls: type[Envelope], eui: str, at: datetime, data: Any) -> Envelope:
        return cls(
            event_id=self._id("dev"),
            dev_eui=eui,
            occurred_at=at,
            recorded_at=at,
            source=Source(kind="mqtt"),
            data=data,
        )

    async def reading(self, eui: str, occupied: bool | None, at: datetime) -> None:
        reading = dev.Reading(decoder="bosch_tps110", kind="parking_status", occupied=occupied)
        data = dev.UplinkData(device=dev.DeviceInfo(), f_port=1, data_b64="AQ==", reading=reading)
        await self.device(self._dev(dev.UplinkObserved, eui, at, data))

    async def txack(self, eui: str, queue_item_id: str, at: datetime) -> None:
        data = dev.TxAckData(device=dev.DeviceInfo(), queue_item_id=queue_item_id)
        await self.device(self._dev(dev.DownlinkTransmitted, eui, at, data))

    async def join(self, eui: str, at: datetime) -> None:
        await self.device(
            self._dev(dev.DeviceJoined, eui, at, dev.JoinedData(device=dev.DeviceInfo()))
        )


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, datadir: Path, ticks: bool = False
) -> AsyncIterator[Worker]:
    worker = create_worker(settings, datadir=datadir, ticks=ticks)
    anomalies: list[str] = []
    # In-process, the worker must not end the test runner: record the anomaly instead.
    worker.on_fatal = anomalies.append
    await worker.app.start()
    try:
        yield worker
    finally:
        await worker.app.stop()
    assert not anomalies, f"the worker met a consumer anomaly: {anomalies}"
