"""Rebuild projections from ``space-events`` into shadow tables, verify them, swap them in.

- :func:`rebuild` creates the schema ``parkstream_shadow`` with the migrations, reads the
  topics of the chosen projections (``space-events``, ``device-events``) from the start
  (or from a time) up to the fetch high-watermarks seen when it starts (and at least to
  where the live projector is) and applies them with the same
  :class:`~parkstream.projector.store.Store` as the projector, offsets included.
- :func:`verify` compares each table of the chosen projections in the two schemas: a
  content hash per table, and the keys of the rows that differ.
- :func:`swap` moves the live tables out and the shadow tables in (partitions too) and
  replaces the projections' offsets, in one transaction: readers see the old tables or
  the new ones, never a mix. A projector running meanwhile notices the changed offsets
  on its next batch and re-reads from them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from parkstream.config import Settings
from parkstream.projector import (
    PROJECTION_TABLES,
    PROJECTIONS,
    SPACE_EVENTS,
    projections_of,
    topics_of,
)
from parkstream.projector.collector import fewer_collections
from parkstream.projector.migrate import MigrationError, migrate, recorded
from parkstream.projector.partitions import Partitions, months_ahead
from parkstream.projector.records import Incoming
from parkstream.projector.store import (
    OFFSETS_TABLE,
    Applied,
    Prepared,
    Store,
    prepare_connection,
)
from parkstream.projector.tables import qualified, quote_ident

SHADOW = "parkstream_shadow"
RETIRED = "parkstream_retired"
TOPIC = SPACE_EVENTS
DEFAULT_BATCH = 20_000
SWITCH_INTERVAL = 0.0005  # seconds, while a rebuild prepares batches in a thread

# The key of each table (what a difference is reported by).
KEYS: dict[str, tuple[str, ...]] = {
    "sites": ("tenant_id", "site_id"),
    "spaces": ("tenant_id", "space_id"),
    "devices": ("tenant_id", "dev_eui"),
    "orphan_devices": ("dev_eui",),
    "reservations": ("tenant_id", "space_id", "reservation_id"),
    "reservation_rejections": ("tenant_id", "event_id"),
    "actuations": ("tenant_id", "space_id", "occurred_at", "event_id"),
    "space_states": ("tenant_id", "space_id"),
    "utilization_hourly": ("tenant_id", "space_id", "hour"),
    "utilization_daily": ("tenant_id", "site_id", "day"),
    "device_health": ("dev_eui",),
}


class ReplayError(RuntimeError):
    """A rebuild, verification or swap that cannot go on."""


def tables_of(projections: Sequence[str]) -> list[str]:
    return [t for p in PROJECTIONS if p in projections for t in PROJECTION_TABLES[p]]


# --- progress --------------------------------------------------------------------------------


class Progress:
    """A one-line textual progress bar (rewritten in place on a terminal)."""

    def __init__(self, total: int, stream: IO[str] | None = None, width: int = 30) -> None:
        self.total = max(total, 0)
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.started = time.monotonic()
        self._last = 0.0

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.5:
            return
        self._last = now
        share = min(1.0, done / self.total) if self.total else 1.0
        filled = int(share * self.width)
        rate = done / max(now - self.started, 1e-9)
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {share:4.0%} "
            f"{done:,}/{self.total:,} events, {rate:,.0f} events/s"
        )
        end = "\r" if self.stream.isatty() and not force else "\n"
        self.stream.write(line + end)
        self.stream.flush()


# --- rebuild ---------------------------------------------------------------------------------


@dataclass
class RebuildReport:
    schema: str
    projections: tuple[str, ...]
    records: int = 0
    events: int = 0
    rejected: int = 0
    seconds: float = 0.0
    positions: dict[str, dict[int, int]] = field(
        default_factory=dict
    )  # topic -> partition -> offset

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


async def live_positions(conn: Any, schema: str, topic: str) -> dict[int, int]:
    """partition -> the furthest next offset of any projection in ``schema``."""
    if await conn.fetchval("SELECT to_regclass($1)", f"{schema}.{OFFSETS_TABLE}") is None:
        return {}
    rows = await conn.fetch(
        f"SELECT partition, max(next_offset) AS o FROM {qualified(schema, OFFSETS_TABLE)} "  # noqa: S608 - quoted identifier
        "WHERE topic = $1 GROUP BY partition",
        topic,
    )
    return {r["partition"]: r["o"] for r in rows}


async def create_shadow(conn: Any, shadow: str = SHADOW) -> None:
    await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(shadow)} CASCADE")
    await migrate(conn, shadow)


async def rebuild(
    settings: Settings,
    *,
    projections: Sequence[str] = PROJECTIONS,
    live: str = "public",
    shadow: str = SHADOW,
    since: datetime | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: IO[str] | None = None,
    idle_timeout: float = 30.0,
) -> RebuildReport:
    """Rebuild ``projections`` into ``shadow`` from their topics (see the module docstring)."""
    import asyncpg
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from parkstream.kafka_profile import aiokafka_consumer_kwargs

    report = RebuildReport(shadow, tuple(p for p in PROJECTIONS if p in projections))
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        await create_shadow(conn, shadow)
        stores: dict[str, Store] = {}
        at_least: dict[tuple[str, int], int] = {}
        for catalogue in topics_of(report.projections):
            topic = settings.topic(catalogue)
            stores[topic] = Store(
                conn,
                schema=shadow,
                topic=topic,
                projections=projections_of(catalogue, report.projections),
            )
            await stores[topic].setup(months=0)
            for partition, offset in (await live_positions(conn, live, topic)).items():
                at_least[(topic, partition)] = offset
        consumer = AIOKafkaConsumer(
            **aiokafka_consumer_kwargs(
                settings,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_partition_fetch_bytes=8 * 1024 * 1024,
                fetch_max_bytes=64 * 1024 * 1024,
            )
        )
        await consumer.start()
        try:
            everything = [
                TopicPartition(topic, p)
                for topic in stores
                for p in await _partitions(consumer, topic)
            ]
            tps = await _start(consumer, everything, since)
            report.seconds = await _drain(
                consumer, stores, tps, at_least, batch_size, report, progress, idle_timeout
            )
        finally:
            await consumer.stop()
        for topic, store in stores.items():
            partitions = sorted(tp.partition for tp in everything if tp.topic == topic)
            report.positions[topic] = {
                p: min(o.values()) for p, o in (await store.positions(partitions)).items()
            }
    finally:
        await conn.close()
    return report


async def _partitions(consumer: Any, topic: str, within: float = 30.0) -> list[int]:
    import asyncio

    deadline = time.monotonic() + within
    while True:
        if topic in await consumer.topics():
            found = consumer.partitions_for_topic(topic)
            if found:
                return sorted(found)
        if time.monotonic() > deadline:
            raise ReplayError(f"topic {topic} has no partitions (does it exist?)")
        await asyncio.sleep(0.2)


async def _start(consumer: Any, tps: list[Any], since: datetime | None) -> list[Any]:
    """Assign and seek to the beginning, or to the first record at or after ``since``;
    returns the partitions to read (those with such a record)."""
    if since is None:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        return tps
    ms = int(since.astimezone(UTC).timestamp() * 1000)
    found = await consumer.offsets_for_times(dict.fromkeys(tps, ms))
    # Nothing at or after that time: None from Kafka; the test broker (Tansu) answers
    # offset 0 with timestamp -1 instead. Such partitions are not read at all (seeking to
    # their end would ask ListOffsets, which that broker gets wrong).
    starts = {
        tp: hit.offset
        for tp, hit in found.items()
        if hit is not None and hit.offset >= 0 and hit.timestamp >= 0
    }
    chosen = [tp for tp in tps if tp in starts]
    consumer.assign(chosen)
    for tp in chosen:
        consumer.seek(tp, starts[tp])
    return chosen


async def _drain(
    consumer: Any,
    stores: dict[str, Store],
    tps: list[Any],
    at_least: dict[tuple[str, int], int],
    batch_size: int,
    report: RebuildReport,
    stream: IO[str] | None,
    idle_timeout: float,
) -> float:
    """Apply batches until every partition reached its target; returns the seconds.

    A partition's target is its fetch high-watermark when first seen (not
    ``end_offsets()``, which the test broker gets wrong), or the live projector's
    position if that is further. The records of each topic go to that topic's store;
    while one batch is written, the next one is read and prepared.
    """

    started = time.monotonic()
    begin = {tp: await consumer.position(tp) for tp in tps}
    switching = sys.getswitchinterval()
    # The event loop must get the GIL back soon after PostgreSQL answers, not after the
    # preparing thread's default 5 ms slice.
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        with fewer_collections():
            await _drain_loop(
                consumer, stores, tps, at_least, batch_size, report, stream, idle_timeout, begin
            )
    finally:
        sys.setswitchinterval(switching)
    return time.monotonic() - started


async def _drain_loop(
    consumer: Any,
    stores: dict[str, Store],
    tps: list[Any],
    at_least: dict[tuple[str, int], int],
    batch_size: int,
    report: RebuildReport,
    stream: IO[str] | None,
    idle_timeout: float,
    begin: dict[Any, int],
) -> None:
    import asyncio

    writing: asyncio.Task[list[Applied]] | None = None
    targets: dict[Any, int] = {}
    progress: Progress | None = None
    idle_since = time.monotonic()
    while True:
        for tp in tps:
            high = consumer.highwater(tp)
            if tp not in targets and high is not None:
                targets[tp] = max(high, at_least.get((tp.topic, tp.partition), 0))
        if len(targets) == len(tps):
            if progress is None:
                total = sum(max(0, targets[tp] - begin[tp]) for tp in targets)
                progress = Progress(total, stream or sys.stderr)
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(positions[tp] >= targets[tp] for tp in targets):
                break
        batch = await consumer.getmany(timeout_ms=200, max_records=batch_size)
        by_topic: dict[str, list[Incoming]] = {}
        for tp, messages in batch.items():
            by_topic.setdefault(tp.topic, []).extend(messages)
        if not by_topic:
            if time.monotonic() - idle_since > idle_timeout:
                raise ReplayError(f"no records for {idle_timeout:.0f}s before reaching {targets}")
            continue
        idle_since = time.monotonic()
        # Prepare this batch (pure Python) while the previous one is being written.
        prepared = [
            (stores[topic], await asyncio.to_thread(stores[topic].prepare, records))
            for topic, records in by_topic.items()
        ]
        if writing is not None:
            _account(report, await writing, progress)
        writing = asyncio.create_task(_apply_all(prepared))
    if writing is not None:
        _account(report, await writing, progress)
    if progress is not None:
        progress.update(report.records, force=True)


async def _apply_all(prepared: list[tuple[Store, Prepared]]) -> list[Applied]:
    return [await store.apply(batch) for store, batch in prepared]


def _account(report: RebuildReport, results: list[Applied], progress: Progress | None) -> None:
    for result in results:
        report.records += result.records
        report.events += result.events
        report.rejected += len(result.rejected)
    if progress is not None:
        progress.update(report.records)


# --- verify ------------------------------------------------------------------------------------


@dataclass
class TableDiff:
    table: str
    live_rows: int
    shadow_rows: int
    live_hash: str
    shadow_hash: str
    differing_keys: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return self.live_hash == self.shadow_hash and self.live_rows == self.shadow_rows


@dataclass
class VerifyReport:
    tables: list[TableDiff]
    live_positions: dict[str, dict[int, int]]
    shadow_positions: dict[str, dict[int, int]]

    @property
    def same(self) -> bool:
        return all(t.same for t in self.tables)

    @property
    def positions_match(self) -> bool:
        return self.live_positions == self.shadow_positions


def _columns_sql(keys: Sequence[str]) -> str:
    return ", ".join(quote_ident(k) for k in keys)


async def table_hash(conn: Any, schema: str, table: str) -> tuple[str, int]:
    """md5 over the md5 of every row's text, in key order, and the row count."""
    keys = _columns_sql(KEYS[table])
    row = await conn.fetchrow(
        f"SELECT coalesce(md5(string_agg(md5(t::text), '' ORDER BY {keys})), md5('')) AS h, "  # noqa: S608 - quoted identifiers
        f"count(*) AS n FROM {qualified(schema, table)} t"
    )
    return row["h"], row["n"]


async def differing_keys(
    conn: Any, table: str, live: str, shadow: str, limit: int = 20
) -> list[tuple[Any, ...]]:
    keys = _columns_sql(KEYS[table])
    rows = await conn.fetch(
        f"SELECT {keys} FROM "  # noqa: S608 - quoted identifiers
        f"(SELECT {keys}, md5(t::text) AS h FROM {qualified(live, table)} t) l "
        f"FULL JOIN (SELECT {keys}, md5(t::text) AS h FROM {qualified(shadow, table)} t) s "
        f"USING ({keys}) WHERE l.h IS DISTINCT FROM s.h ORDER BY {keys} LIMIT {int(limit)}"
    )
    return [tuple(r.values()) for r in rows]


async def offsets_of(
    conn: Any, schema: str, projections: Sequence[str]
) -> dict[str, dict[int, int]]:
    rows = await conn.fetch(
        f"SELECT projection, partition, next_offset FROM {qualified(schema, OFFSETS_TABLE)} "  # noqa: S608 - quoted identifier
        "WHERE projection = ANY($1::text[]) ORDER BY 1, 2",
        list(projections),
    )
    found: dict[str, dict[int, int]] = {p: {} for p in projections}
    for r in rows:
        found[r["projection"]][r["partition"]] = r["next_offset"]
    return found


async def verify(
    conn: Any,
    *,
    projections: Sequence[str] = PROJECTIONS,
    live: str = "public",
    shadow: str = SHADOW,
    limit: int = 20,
) -> VerifyReport:
    """Compare the tables of ``projections`` in ``live`` and ``shadow`` (one snapshot)."""
    await prepare_connection(conn)
    chosen = [p for p in PROJECTIONS if p in projections]
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        diffs = []
        for table in tables_of(chosen):
            live_hash, live_rows = await table_hash(conn, live, table)
            shadow_hash, shadow_rows = await table_hash(conn, shadow, table)
            diff = TableDiff(table, live_rows, shadow_rows, live_hash, shadow_hash)
            if not diff.same:
                diff.differing_keys = await differing_keys(conn, table, live, shadow, limit)
            diffs.append(diff)
        return VerifyReport(
            diffs, await offsets_of(conn, live, chosen), await offsets_of(conn, shadow, chosen)
        )


# --- swap --------------------------------------------------------------------------------------


async def _children(conn: Any, schema: str, table: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT cn.nspname AS schema, c.relname AS name FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace "
        "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace "
        "WHERE pn.nspname = $1 AND p.relname = $2 ORDER BY c.relname",
        schema,
        table,
    )
    return [(r["schema"], r["name"]) for r in rows]


async def _move(conn: Any, schema: str, table: str, to: str) -> None:
    children = await _children(conn, schema, table)
    await conn.execute(f"ALTER TABLE {qualified(schema, table)} SET SCHEMA {quote_ident(to)}")
    for child_schema, child in children:
        if child_schema == schema:
            await conn.execute(
                f"ALTER TABLE {qualified(child_schema, child)} SET SCHEMA {quote_ident(to)}"
            )


async def swap(
    conn: Any,
    *,
    projections: Sequence[str] = PROJECTIONS,
    live: str = "public",
    shadow: str = SHADOW,
    keep_retired: bool = False,
    months: int = 3,
    lock_timeout_s: int = 30,
) -> list[str]:
    """Swap the shadow tables of ``projections`` in (one transaction); returns the tables.

    The old tables end in schema ``parkstream_retired`` (dropped unless ``keep_retired``).
    """
    chosen = [p for p in PROJECTIONS if p in projections]
    tables = tables_of(chosen)
    live_versions = await recorded(conn, live)
    shadow_versions = await recorded(conn, shadow)
    if not shadow_versions:
        raise ReplayError(f"no rebuild in schema {shadow!r}")
    if live_versions != shadow_versions:
        raise MigrationError(
            f"schema {live!r} is at migrations {sorted(live_versions)}, the rebuild at "
            f"{sorted(shadow_versions)}: run 'parkstream migrate' first"
        )
    offsets_live = qualified(live, OFFSETS_TABLE)
    offsets_shadow = qualified(shadow, OFFSETS_TABLE)
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_s)}s'")
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(RETIRED)} CASCADE")
        await conn.execute(f"CREATE SCHEMA {quote_ident(RETIRED)}")
        for table in tables:
            await _move(conn, live, table, RETIRED)
            await _move(conn, shadow, table, live)
        # A projection reads one topic: its offsets are its rows, whatever the topic.
        await conn.execute(
            f"DELETE FROM {offsets_live} WHERE projection = ANY($1::text[])",  # noqa: S608 - quoted identifier
            chosen,
        )
        await conn.execute(
            f"INSERT INTO {offsets_live} (projection, topic, partition, next_offset) "  # noqa: S608 - quoted identifier
            f"SELECT projection, topic, partition, next_offset FROM {offsets_shadow} "
            "WHERE projection = ANY($1::text[])",
            chosen,
        )
        if "activity" in chosen:
            await Partitions(live).ensure(conn, months_ahead(datetime.now(UTC).date(), months))
        if not keep_retired:
            await conn.execute(f"DROP SCHEMA {quote_ident(RETIRED)} CASCADE")
    await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(shadow)} CASCADE")
    return tables


def describe(report: VerifyReport, write: Callable[[str], None]) -> None:
    """The verification as lines of text."""
    for t in report.tables:
        verdict = "same" if t.same else "DIFFERENT"
        write(
            f"{t.table:24} live {t.live_rows:>9,} rows {t.live_hash}  "
            f"rebuild {t.shadow_rows:>9,} rows {t.shadow_hash}  {verdict}"
        )
        for key in t.differing_keys:
            write(f"    differs: {key}")
    if not report.positions_match:
        write(
            "note: the live projections are at other offsets than the rebuild "
            f"(live {report.live_positions}, rebuild {report.shadow_positions}); "
            "stop the projector or let it catch up for an exact comparison"
        )
