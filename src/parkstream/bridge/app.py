"""Composition root of ``parkstream bridge``: connections, pumps, reconnects, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import aiomqtt
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from parkstream.bridge import mqtt
from parkstream.bridge.downlink import DownlinkPump
from parkstream.bridge.metrics import BridgeMetrics
from parkstream.bridge.state import BridgeState
from parkstream.bridge.uplink import UplinkPump
from parkstream.config import Settings
from parkstream.decoders.registry import DecoderRegistry
from parkstream.kafka_profile import (
    aiokafka_consumer_kwargs,
    aiokafka_producer_kwargs,
    latency_consumer_overrides,
)
from parkstream.logging import get_logger

log = get_logger("parkstream.bridge")

DOWNLINK_GROUP = "bridge-downlinks"  # after the topic prefix
STATE_SAVE_INTERVAL_S = 5.0


@dataclass
class Backoff:
    """Exponential backoff with a cap: 0.2 s, 0.4 s, ... 10 s; reset after a success."""

    first: float = 0.2
    cap: float = 10.0
    current: float = 0.0

    def next(self) -> float:
        self.current = self.first if self.current == 0 else min(self.current * 2, self.cap)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


def subscriptions(settings: Settings) -> list[str]:
    if settings.mqtt_shared_group:
        return [f"$share/{settings.mqtt_shared_group}/{t}" for t in settings.mqtt_subscriptions]
    return list(settings.mqtt_subscriptions)


class Bridge:
    def __init__(
        self,
        settings: Settings,
        *,
        decoders: DecoderRegistry | None = None,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.decoders = decoders or DecoderRegistry.default()
        self.metrics = metrics or BridgeMetrics()
        self.state = BridgeState.load(
            settings.state_dir,
            max_entries=settings.dedup_window,
            max_age_s=settings.dedup_max_age_s,
            now=time.time(),
        )
        self.stop = asyncio.Event()
        self.ready = asyncio.Event()  # set once uplinks are subscribed
        self.producer: AIOKafkaProducer | None = None

    async def run(self) -> None:
        """Run until :attr:`stop` is set; then drain, save state and return."""
        s = self.settings
        await self._until_connected("kafka", self._start_producer)
        saver = asyncio.create_task(self._save_periodically(), name="bridge-state-saver")
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._uplinks(), name="bridge-uplinks")
                group.create_task(self._downlinks(), name="bridge-downlinks")
        finally:
            saver.cancel()
            await asyncio.gather(saver, return_exceptions=True)
            if self.producer is not None:
                with contextlib.suppress(KafkaError):
                    await self.producer.flush()
                await self.producer.stop()
            self.state.save(s.state_dir)
            log.info("bridge stopped")

    async def _start_producer(self) -> None:
        # Batching at the edge: linger a little so records of concurrent messages share
        # produce requests. The bridge's output is never read by end offsets, so the
        # dev profile's one-record-batch workaround is not needed here.
        kwargs = aiokafka_producer_kwargs(self.settings, linger_ms=2, max_batch_size=256 * 1024)
        producer = AIOKafkaProducer(**kwargs)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self.producer = producer

    async def _until_connected(self, name: str, connect: Callable[[], Awaitable[None]]) -> None:
        backoff = Backoff()
        while not self.stop.is_set():
            try:
                await connect()
                return
            except (KafkaError, OSError, aiomqtt.MqttError) as exc:
                delay = backoff.next()
                log.warning("broker unavailable", broker=name, error=str(exc), retry_in=delay)
                self.metrics.reconnects.labels(name).inc()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), delay)

    def _topics(self) -> tuple[str, str, str]:
        s = self.settings
        return s.topic("device-events.v1"), s.topic("deadletter.v1"), s.topic("downlinks.v1")

    async def _uplinks(self) -> None:
        device_topic, deadletter_topic, _ = self._topics()
        assert self.producer is not None
        pump = UplinkPump(
            producer=self.producer,
            device_topic=device_topic,
            deadletter_topic=deadletter_topic,
            decoders=self.decoders,
            state=self.state,
            metrics=self.metrics,
        )
        backoff = Backoff()
        while not self.stop.is_set():
            client = mqtt.make_client(
                self.settings, client_id=self.settings.mqtt_client_id, clean_session=False
            )
            mqtt.enable_manual_ack(client)
            try:
                async with client:
                    for topic in subscriptions(self.settings):
                        await client.subscribe(topic, qos=1)
                    log.info("uplinks subscribed", topics=subscriptions(self.settings))
                    self.ready.set()
                    backoff.reset()
                    await pump.run(client, self.stop)
            except (aiomqtt.MqttError, KafkaError, OSError) as exc:
                if self.stop.is_set():
                    break
                delay = backoff.next()
                log.warning("uplink pump interrupted", error=str(exc), retry_in=delay)
                self.metrics.reconnects.labels(
                    "mqtt" if isinstance(exc, aiomqtt.MqttError) else "kafka"
                ).inc()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), delay)

    async def _downlinks(self) -> None:
        # Joining a consumer group can take seconds; a stop must not wait for it.
        await _cancel_on(self.stop, self._downlink_loop())

    async def _downlink_loop(self) -> None:
        _, deadletter_topic, downlink_topic = self._topics()
        assert self.producer is not None
        s = self.settings
        consumer: AIOKafkaConsumer | None = None

        async def start_consumer() -> None:
            nonlocal consumer
            c = AIOKafkaConsumer(
                downlink_topic,
                **aiokafka_consumer_kwargs(
                    s,
                    group_id=f"{s.topic_prefix}.{DOWNLINK_GROUP}",
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                    **latency_consumer_overrides(s),
                ),
            )
            try:
                await c.start()
            except BaseException:
                await c.stop()
                raise
            consumer = c

        await self._until_connected("kafka", start_consumer)
        if consumer is None:
            return
        pump = DownlinkPump(
            consumer=consumer,
            producer=self.producer,
            downlink_topic=downlink_topic,
            deadletter_topic=deadletter_topic,
            state=self.state,
            metrics=self.metrics,
            dialect=s.downlink_dialect,
            default_application_id=s.downlink_application_id,
            with_expiry=s.downlink_expiry,
        )
        backoff = Backoff()
        try:
            while not self.stop.is_set():
                client = mqtt.make_client(
                    s, client_id=f"{s.mqtt_client_id}-down", clean_session=True
                )
                try:
                    async with client:
                        backoff.reset()
                        await pump.run(client, self.stop)
                except (aiomqtt.MqttError, KafkaError, OSError) as exc:
                    if self.stop.is_set():
                        break
                    delay = backoff.next()
                    log.warning("downlink pump interrupted", error=str(exc), retry_in=delay)
                    self.metrics.reconnects.labels("mqtt").inc()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), delay)
        finally:
            await consumer.stop()

    async def _save_periodically(self) -> None:
        while True:
            await asyncio.sleep(STATE_SAVE_INTERVAL_S)
            try:
                self.state.save(self.settings.state_dir)
            except OSError as exc:
                log.warning("cannot save bridge state", error=str(exc))


async def _cancel_on(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` until it ends or ``stop`` is set, then cancel it.

    Safe for the downlink pump: offsets are committed only after a batch is published,
    so a cancelled batch is consumed again by the next run.
    """
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
    if not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
