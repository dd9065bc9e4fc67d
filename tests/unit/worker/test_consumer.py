"""The worker's Faust consumer: its fetch wait per profile, without Kafka."""

from __future__ import annotations

from pathlib import Path

from parkstream.config import Settings
from parkstream.kafka_profile import DEV_FAUST_FETCH_MAX_WAIT_MS
from parkstream.worker.app import create_worker
from parkstream.worker.consumer import BatchingConsumer, FetchWaitConsumerThread

FAUST_FETCH_MAX_WAIT_MS = 1500  # hard-coded by faust-streaming 0.15


async def fetch_wait_of(settings: Settings) -> int:
    worker = create_worker(settings, datadir=settings.state_dir / "worker", ticks=False)
    consumer = worker.app.consumer
    assert isinstance(consumer, BatchingConsumer)
    thread = consumer._thread
    assert isinstance(thread, FetchWaitConsumerThread)
    client = thread._create_worker_consumer(worker.app.transport)  # not started: no connection
    try:
        wait: int = client._fetch_max_wait_ms  # what start() gives its fetcher
    finally:
        await client.stop()
    return wait


async def test_the_dev_profile_fetches_with_a_short_wait(tmp_path: Path) -> None:
    settings = Settings(profile="dev", state_dir=tmp_path)
    assert await fetch_wait_of(settings) == DEV_FAUST_FETCH_MAX_WAIT_MS


async def test_production_keeps_fausts_fetch_wait(tmp_path: Path) -> None:
    settings = Settings(profile="production", state_dir=tmp_path)
    assert await fetch_wait_of(settings) == FAUST_FETCH_MAX_WAIT_MS
