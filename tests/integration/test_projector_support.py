"""Helpers shared by the projector and replay tests (this module holds no tests).

- ``fresh_database``: a database of its own for one test, migrated, dropped afterwards;
- ``produce``: records to ``space-events`` in multi-record producer batches (the lag and
  the end of a replay come from the fetch high-watermark, so this is safe on the test
  broker), returning the offset each partition should reach;
- ``running_projector`` / ``caught_up``: the projector in this process, and a deadline;
- ``snapshot``: content hash and row count of every read-model table;
- ``rollup_mismatches``: the rollups against a recomputation in SQL from ``actuations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from parkstream.config import Settings
from parkstream.kafka_profile import aiokafka_producer_kwargs
from parkstream.projector import PROJECTION_TABLES, PROJECTIONS, SPACE_EVENTS, projections_of
from parkstream.projector.app import Projector
from parkstream.projector.migrate import migrate
from parkstream.projector.replay import table_hash
from parkstream.projector.store import prepare_connection

ALL_TABLES = [t for p in PROJECTIONS for t in PROJECTION_TABLES[p]]


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.asynccontextmanager
async def fresh_database(settings: Settings, migrated: bool = True) -> AsyncIterator[Settings]:
    """``settings`` pointing at a new database (the harness's server), dropped afterwards."""
    base = settings.database_url.get_secret_value()
    admin = _with_database(base, "postgres")
    name = f"ps_projector_{secrets.token_hex(5)}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = _with_database(base, name)
    try:
        if migrated:
            db = await asyncpg.connect(url)
            try:
                await migrate(db)
            finally:
                await db.close()
        yield settings.model_copy(update={"database_url": SecretStr(url)})
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@contextlib.asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[Any]:
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        await prepare_connection(conn)
        yield conn
    finally:
        await conn.close()


async def produce(
    settings: Settings,
    records: Sequence[tuple[bytes | None, bytes]],
    topic: str = "space-events.v1",
) -> dict[int, int]:
    """Send ``records`` in order; returns partition -> next offset after the last one."""
    producer = AIOKafkaProducer(
        **aiokafka_producer_kwargs(settings, max_batch_size=256 * 1024, linger_ms=5)
    )
    await producer.start()
    ends: dict[int, int] = {}
    try:
        futures = [
            await producer.send(settings.topic(topic), value, key=key) for key, value in records
        ]
        for meta in await asyncio.gather(*futures):
            ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    finally:
        await producer.stop()
    return ends


async def positions(
    conn: Any, settings: Settings, topic: str = SPACE_EVENTS
) -> dict[str, dict[int, int]]:
    """projection -> partition -> next offset, for the projections of ``topic``."""
    rows = await conn.fetch(
        "SELECT projection, partition, next_offset FROM projector_offsets WHERE topic = $1",
        settings.topic(topic),
    )
    found: dict[str, dict[int, int]] = {p: {} for p in projections_of(topic)}
    for r in rows:
        found[r["projection"]][r["partition"]] = r["next_offset"]
    return found


async def caught_up(
    settings: Settings,
    expected: dict[int, int],
    within: float = 60.0,
    topic: str = SPACE_EVENTS,
) -> dict[str, dict[int, int]]:
    """Wait until every projection of ``topic`` stored at least ``expected`` for each
    partition."""
    deadline = time.monotonic() + within
    async with connect(settings) as conn:
        while True:
            found = await positions(conn, settings, topic)
            if all(
                found[p].get(part, -1) >= offset
                for p in projections_of(topic)
                for part, offset in expected.items()
            ):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"not caught up within {within}s: {found} < {expected}")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running_projector(settings: Settings, **options: Any) -> AsyncIterator[Projector]:
    projector = Projector(settings, **options)
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(stop))
    try:
        yield projector
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def snapshot(
    conn: Any, schema: str = "public", tables: Sequence[str] = ALL_TABLES
) -> dict[str, tuple[str, int]]:
    return {t: await table_hash(conn, schema, t) for t in tables}


# --- the rollups recomputed from the actuations, in SQL ------------------------------------

_INTERVALS = """
WITH changes AS (
    SELECT a.tenant_id, a.space_id, s.site_id, s.time_zone, a.occurred_at AS since,
           a.from_state, a.to_state,
           lead(a.occurred_at) OVER (
               PARTITION BY a.tenant_id, a.space_id
               ORDER BY a.occurred_at, a.src_partition, a.src_offset) AS until
    FROM actuations a JOIN space_states s USING (tenant_id, space_id)
    WHERE a.type = 'space.state_changed'),
intervals AS (
    SELECT *, CASE
        WHEN to_state IN ('FREE', 'RESERVED_SOON') THEN 'free'
        WHEN to_state = 'OCCUPIED' THEN 'occupied'
        WHEN to_state = 'RESERVED' THEN 'reserved'
        WHEN to_state = 'UNKNOWN' THEN 'unknown'
        WHEN to_state IN ('OUT_OF_ORDER', 'MAINTENANCE', 'BLOCKED') THEN 'unavailable'
    END AS class
    FROM changes WHERE until > since)
"""

_SUMS = """
    coalesce(sum(secs) FILTER (WHERE class = 'free'), 0) AS free_s,
    coalesce(sum(secs) FILTER (WHERE class = 'occupied'), 0) AS occupied_s,
    coalesce(sum(secs) FILTER (WHERE class = 'reserved'), 0) AS reserved_s,
    coalesce(sum(secs) FILTER (WHERE class = 'unknown'), 0) AS unknown_s,
    coalesce(sum(secs) FILTER (WHERE class = 'unavailable'), 0) AS unavailable_s,
    coalesce(sum(arr), 0)::int AS arrivals, coalesce(sum(dep), 0)::int AS departures
"""

RECOMPUTE_HOURLY = (
    _INTERVALS  # noqa: S608 - fixed SQL text
    + """,
pieces AS (
    SELECT tenant_id, space_id, h AS hour, class,
           extract(epoch FROM least(until, h + interval '1 hour') - greatest(since, h)) AS secs,
           0 AS arr, 0 AS dep
    FROM intervals,
         generate_series(date_trunc('hour', since), until - interval '1 microsecond',
                         interval '1 hour') AS h
    WHERE class IS NOT NULL
    UNION ALL
    SELECT tenant_id, space_id, date_trunc('hour', since), NULL, 0,
           (to_state = 'OCCUPIED' AND from_state IS DISTINCT FROM 'OCCUPIED')::int,
           (from_state = 'OCCUPIED' AND to_state <> 'OCCUPIED')::int
    FROM changes)
SELECT tenant_id, space_id, hour,"""
    + _SUMS
    + """FROM pieces GROUP BY 1, 2, 3
HAVING sum(secs) > 0 OR sum(arr) > 0 OR sum(dep) > 0"""
)

RECOMPUTE_DAILY = (
    _INTERVALS  # noqa: S608 - fixed SQL text
    + """,
pieces AS (
    SELECT tenant_id, site_id, d::date AS day, class,
           extract(epoch FROM
               least(until, (d::date + 1)::timestamp AT TIME ZONE time_zone)
               - greatest(since, d::date::timestamp AT TIME ZONE time_zone)) AS secs,
           0 AS arr, 0 AS dep
    FROM intervals,
         generate_series((since AT TIME ZONE time_zone)::date,
                         ((until - interval '1 microsecond') AT TIME ZONE time_zone)::date,
                         interval '1 day') AS d
    WHERE class IS NOT NULL
    UNION ALL
    SELECT tenant_id, site_id, (since AT TIME ZONE time_zone)::date, NULL, 0,
           (to_state = 'OCCUPIED' AND from_state IS DISTINCT FROM 'OCCUPIED')::int,
           (from_state = 'OCCUPIED' AND to_state <> 'OCCUPIED')::int
    FROM changes)
SELECT tenant_id, site_id, day,"""
    + _SUMS
    + """FROM pieces GROUP BY 1, 2, 3
HAVING sum(secs) > 0 OR sum(arr) > 0 OR sum(dep) > 0"""
)

_VALUES = "free_s, occupied_s, reserved_s, unknown_s, unavailable_s, arrivals, departures"


async def rollup_mismatches(conn: Any) -> dict[str, list[Any]]:
    """Rows where the rollup tables and the recomputation disagree (both directions)."""
    found: dict[str, list[Any]] = {}
    for table, keys, sql in (
        ("utilization_hourly", "tenant_id, space_id, hour", RECOMPUTE_HOURLY),
        ("utilization_daily", "tenant_id, site_id, day", RECOMPUTE_DAILY),
    ):
        stored = f"SELECT {keys}, {_VALUES} FROM {table}"  # noqa: S608 - fixed names
        diff = await conn.fetch(
            f"(({stored}) EXCEPT ({sql})) UNION ALL (({sql}) EXCEPT ({stored})) LIMIT 20"
        )
        found[table] = list(diff)
    return found


async def assert_rollups_exact(conn: Any) -> None:
    """The rollups hold rows, exactly the recomputation's."""
    for table, sql in (
        ("utilization_hourly", RECOMPUTE_HOURLY),
        ("utilization_daily", RECOMPUTE_DAILY),
    ):
        stored = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
        recomputed = await conn.fetchval(f"SELECT count(*) FROM ({sql}) r")  # noqa: S608 - fixed SQL
        assert stored == recomputed > 0, (table, stored, recomputed)
    assert await rollup_mismatches(conn) == {"utilization_hourly": [], "utilization_daily": []}
