"""The projector's rows/s against a raw asyncpg COPY of the same rows into the same table.

Workload: the decider benchmark's car park (``bench.decider.build_workload``: 1,000 bays,
sensor uplinks, txacks, ticks, reservations, overrides), decided once, gives a stream of
real space events (about 1.45 per input), produced to a fresh ``space-events`` topic before
anything is timed.

- Projector: :class:`parkstream.projector.app.Projector` in this process, on a fresh
  migrated database, drains the topic from the start; timed from the start of its first
  batch to the commit of its last. Figures: events/s and rows/s (rows merged or inserted
  into all tables, counted by the projector after each batch is reduced).
- Raw COPY: the very ``actuations`` rows the projector writes, built before timing,
  ``copy_records_to_table`` into ``actuations`` of another fresh database, in batches of
  the same size, each in its own transaction.

The goal (issue "5 · Projections and replay") is the projector's rows/s at >= 0.5 of the
raw COPY's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from bench.common import Result
from parkstream.config import Settings

NAME = "projector"
GOAL = 0.5
UNIT = "rows/s"
TOPIC = "space-events.v1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inputs", type=int, default=140_000, help="decider inputs (about 1.45 events each)"
    )
    parser.add_argument("--batch", type=int, default=5000, help="records per projector batch")


# --- shared with bench.replay ----------------------------------------------------------------


def space_events(inputs: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of the events the decider emits for the decider benchmark's workload."""
    import random

    from bench.decider import BAYS, _setup_inputs, _Stream, build_workload
    from parkstream.domain.contract import encode
    from parkstream.domain.decider import decide_and_evolve
    from parkstream.domain.space import initial_state

    records: list[tuple[bytes, bytes]] = []
    # The bays' set-up (registration, devices, first reading) is decided again here: the
    # decider benchmark starts from the states it leads to without keeping its events.
    setup = _Stream(random.Random(0))
    for bay in range(BAYS):
        space = initial_state(f"bay-{bay:04d}")
        for inp in _setup_inputs(setup, bay):
            space, out = decide_and_evolve(space, inp, setup.now)
            records.extend(((e.space_id or "").encode(), encode(e)) for e in out)
    initial, stream = build_workload(inputs)
    states = list(initial)
    for bay, inp, now in stream:
        states[bay], out = decide_and_evolve(states[bay], inp, now)
        records.extend(((e.space_id or e.dev_eui or "").encode(), encode(e)) for e in out)
    return records


@contextlib.contextmanager
def services() -> Iterator[Settings]:
    """Kafka and PostgreSQL from the harness; settings with a fresh topic prefix."""
    from parkstream.harness import ServicesHarness

    with ServicesHarness(os.environ, need=("kafka", "postgres")) as found:
        yield Settings(
            profile="test",
            kafka_bootstrap=found.kafka_bootstrap,
            database_url=SecretStr(found.database_url),
            topic_prefix=f"bench-{secrets.token_hex(4)}",
        )


@contextlib.asynccontextmanager
async def fresh_database(settings: Settings) -> AsyncIterator[Settings]:
    """A new, migrated database on the harness's server, dropped afterwards."""
    import asyncpg

    from parkstream.projector.migrate import migrate

    url = settings.database_url.get_secret_value()
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    name = f"bench_{secrets.token_hex(5)}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    target = urlunsplit(parts._replace(path=f"/{name}"))
    try:
        conn = await asyncpg.connect(target)
        await migrate(conn)
        await conn.close()
        yield settings.model_copy(update={"database_url": SecretStr(target)})
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> dict[int, int]:
    """Produce in large batches (the timing never uses end offsets); partition -> end."""
    from aiokafka import AIOKafkaProducer

    from parkstream.kafka_profile import aiokafka_producer_kwargs
    from parkstream.topics_admin import apply_topics

    await apply_topics(settings)
    producer = AIOKafkaProducer(
        **aiokafka_producer_kwargs(settings, max_batch_size=1024 * 1024, linger_ms=20)
    )
    await producer.start()
    ends: dict[int, int] = {}
    try:
        topic = settings.topic(TOPIC)
        for start in range(0, len(records), 20_000):
            futures = [
                await producer.send(topic, v, key=k) for k, v in records[start : start + 20_000]
            ]
            for meta in await asyncio.gather(*futures):
                ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    finally:
        await producer.stop()
    return ends


# --- the projector ----------------------------------------------------------------------------


async def _caught_up(settings: Settings, ends: dict[int, int], within: float = 600) -> None:
    import asyncpg

    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    deadline = time.monotonic() + within
    try:
        while True:
            rows = await conn.fetch(
                "SELECT partition, min(next_offset) AS o FROM projector_offsets "
                "WHERE topic = $1 GROUP BY partition",
                settings.topic(TOPIC),
            )
            done = {r["partition"]: r["o"] for r in rows}
            if all(done.get(p, -1) >= o for p, o in ends.items()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the projector did not catch up within {within}s")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def time_projector(settings: Settings, ends: dict[int, int], batch: int) -> dict[str, Any]:
    from parkstream.projector.app import Projector

    projector = Projector(settings, batch_size=batch)
    stop = asyncio.Event()
    cpu = time.process_time()
    task = asyncio.create_task(projector.run(stop))
    try:
        await _caught_up(settings, ends)
    finally:
        stop.set()
        await task
    cpu = time.process_time() - cpu
    assert projector.first_batch_at is not None
    assert projector.last_batch_at is not None
    seconds = projector.last_batch_at - projector.first_batch_at
    rows = {
        s.labels["table"]: s.value
        for metric in projector.metrics.rows.collect()
        for s in metric.samples
        if s.name.endswith("_total")
    }
    events = sum(ends.values())
    return {
        "seconds": seconds,
        "events_per_s": events / seconds,
        "rows_per_s": sum(rows.values()) / seconds,
        "actuations_per_s": rows.get("actuations", 0) / seconds,
        "rows": rows,
        "cpu_seconds": cpu,  # this process, all threads, start to stop (a little more than timed)
    }


# --- the raw COPY -------------------------------------------------------------------------------


def actuation_rows(records: list[tuple[bytes, bytes]]) -> list[tuple[Any, ...]]:
    """The rows the projector inserts into ``actuations`` (with made-up positions)."""
    from parkstream.projector.activity import ACTUATIONS, plan
    from parkstream.projector.records import Incoming, read_event

    events = [read_event(Incoming(0, n, k, v)) for n, (k, v) in enumerate(records)]
    return list(plan(events).actuations.of(ACTUATIONS))


async def time_raw_copy(settings: Settings, rows: list[tuple[Any, ...]], batch: int) -> float:
    import asyncpg

    from parkstream.projector.activity import ACTUATIONS
    from parkstream.projector.partitions import Partitions, month_of
    from parkstream.projector.store import prepare_connection

    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        await prepare_connection(conn)
        await Partitions("public").ensure(conn, {month_of(r[2]) for r in rows})
        columns = list(ACTUATIONS.names)
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "actuations", records=rows[start : start + batch], columns=columns
                )
        return len(rows) / (time.perf_counter() - started)
    finally:
        await conn.close()


@contextlib.contextmanager
def workload_frozen() -> Iterator[None]:
    """Keep the pre-built workload out of the garbage collector's scans while timing.

    A projector process holds one batch at a time; without this, every full collection
    would also walk the hundreds of thousands of records built ahead for the benchmark
    (it made the projector look 2.5 times slower than it is).
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _run(settings: Settings, records: list[tuple[bytes, bytes]], batch: int) -> Result:
    ends = await produce(settings, records)
    rows = actuation_rows(records)
    with workload_frozen():
        async with fresh_database(settings) as db:
            projector = await time_projector(db, ends, batch)
        async with fresh_database(settings) as db:
            raw = await time_raw_copy(db, rows, batch)
    print(
        f"projector: {projector['events_per_s']:,.0f} events/s, "
        f"{projector['rows_per_s']:,.0f} rows/s in all tables "
        f"({projector['actuations_per_s']:,.0f} actuations/s) over {projector['seconds']:.1f} s"
    )
    print(f"   rows by table: { {k: int(v) for k, v in projector['rows'].items()} }")
    print(f"   CPU of this process meanwhile: {projector['cpu_seconds']:.1f} s")
    print(f"raw COPY into actuations: {raw:,.0f} rows/s ({len(rows):,} rows)")
    note = (
        f"{len(records):,} events; projector {projector['events_per_s']:,.0f} events/s, "
        f"{projector['actuations_per_s']:,.0f} actuation rows/s; raw COPY of the "
        f"{len(rows):,} actuation rows, batches of {batch}"
    )
    return Result(NAME, projector["rows_per_s"], UNIT, raw, GOAL, note)


def run(args: argparse.Namespace) -> list[Result]:
    from parkstream.logging import configure_logging

    configure_logging("WARNING", "console")
    print(f"building the workload ({args.inputs:,} decider inputs) ...")
    records = space_events(args.inputs)
    with services() as settings:
        return [asyncio.run(_run(settings, records, args.batch))]
