"""A Faust app with a table, run in-process against the harness's broker.

The worker runs in the test's event loop: ``await app.start()`` starts the
app's services (producer, consumer, agents, tables; no web server, no
``faust.Worker`` signal handling or logging set-up) and returns once table
recovery is done; ``await app.stop()`` stops them. A second app instance with
the same id then rebuilds the table from its changelog topic, which is what the
test profile's one-record-per-batch producer setting protects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from parkstream.config import Settings
from parkstream.kafka_profile import aiokafka_client_kwargs, faust_settings

pytestmark = pytest.mark.integration

PARTITIONS = 2


@dataclass
class CounterApp:
    app: faust.App
    events: Any  # faust.TopicT
    totals: Any  # faust.Table: key -> sum of amounts


def make_counter_app(settings: Settings, datadir: Path) -> CounterApp:
    """An app summing event amounts per key into a changelog-backed table."""
    app = faust.App(
        f"{settings.topic_prefix}-counter",
        **faust_settings(
            settings,
            store="memory://",
            datadir=str(datadir),
            web_enabled=False,
            topic_partitions=PARTITIONS,
        ),
    )
    events = app.topic(
        settings.topic("events.v1"), key_type=str, value_type=int, partitions=PARTITIONS
    )
    totals = app.Table("totals", default=int, partitions=PARTITIONS)

    @app.agent(events)
    async def count(stream: Any) -> None:
        async for key, amount in stream.items():
            totals[key] += amount

    return CounterApp(app=app, events=events, totals=totals)


async def create_topic(settings: Settings, name: str, partitions: int) -> None:
    """Source topics are declared up front (the broker would auto-create them with
    its default partition count, which need not match the table's)."""
    admin = AIOKafkaAdminClient(**aiokafka_client_kwargs(settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def stop_app(app: faust.App) -> None:
    """Stop, but never hang the test run (a crashed agent makes Faust wait forever)."""
    await asyncio.wait_for(app.stop(), timeout=30)


async def eventually(condition: Callable[[], bool], *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)


def table_state(counter: CounterApp) -> dict[str, int]:
    return {key: counter.totals[key] for key in ("bay-1", "bay-2", "bay-3")}


async def test_table_reflects_events_and_recovers(settings: Settings, tmp_path: Path) -> None:
    expected = {"bay-1": 0, "bay-2": 0, "bay-3": 0}
    await create_topic(settings, settings.topic("events.v1"), PARTITIONS)
    first = make_counter_app(settings, tmp_path / "first")
    await first.app.start()
    try:
        for i in range(30):
            key = f"bay-{i % 3 + 1}"
            await first.events.send(key=key, value=i)
            expected[key] += i
        await eventually(
            lambda: table_state(first) == expected, within=60, what="table has all events"
        )
    finally:
        await stop_app(first.app)

    # A fresh instance (empty memory store) rebuilds the table from the changelog.
    second = make_counter_app(settings, tmp_path / "second")
    await second.app.start()
    try:
        await eventually(lambda: table_state(second) == expected, within=60, what="table recovered")
    finally:
        await stop_app(second.app)
