"""The shell of the projector: a batch's row changes and its offsets, in one transaction.

For a batch of records (any partitions, in order per partition) :meth:`Store.apply`:

1. reads the events (:func:`~parkstream.projector.records.read_event`) and runs the pure
   projections on them; records that cannot be projected are *rejected*;
2. creates the ``actuations`` partitions the batch needs (own short transaction);
3. in one transaction: locks the projections' offsets of the batch's partitions, keeps
   for each projection only the records at or after its stored offset (a redelivered
   batch is skipped), copies the row changes into temporary staging tables and merges
   them into the tables (``INSERT ... ON CONFLICT``; new actuations are copied straight
   into their partitions), hands the rejected records to the dead-letter callback, writes
   the new offsets, and notifies ``parkstream_projection`` once per projection.

Notifications: ``NOTIFY parkstream_projection, '<projection>'`` is sent inside the
transaction of every batch that moves a projection's offsets, so PostgreSQL delivers it
when (and only if) the batch commits. A reader waiting for something the read model will
show (an API waiting for a reservation's outcome) runs ``LISTEN parkstream_projection``,
and on each notification with the projection it needs looks again; the payload says which
projection moved, nothing more (a notification may also be missed while the listener
reconnects, so it re-reads after reconnecting as well).

Offsets are per projection and per partition (``projector_offsets``). When a stored
offset is *behind* where the consumer fetched from (a rebuild was swapped in, or another
projector moved it), nothing of that partition is applied and the batch reports where
to seek (``resync``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson

from parkstream.projector import (
    DEVICE_EVENTS,
    NOTIFY_CHANNEL,
    PROJECTION_TOPICS,
    PROJECTIONS,
    activity,
    health,
    registry,
    reservations,
)
from parkstream.projector.partitions import Partitions, months_ahead, partition_name
from parkstream.projector.records import BadRecord, Event, Incoming, explain_rejection, read_event
from parkstream.projector.tables import (
    Changes,
    Spec,
    qualified,
    quote_ident,
    staging_sql,
    upsert_sql,
)

OFFSETS_TABLE = "projector_offsets"
CONFIRMATIONS_STAGE = "stage_confirmations"

SPECS: dict[str, tuple[Spec, ...]] = {
    "registry": registry.SPECS,
    "reservations": reservations.SPECS,
    "activity": activity.SPECS,
    "device_health": health.SPECS,
}


@dataclass(frozen=True)
class Rejection:
    record: Incoming
    error: BadRecord


@dataclass
class Prepared:
    records: list[Incoming]
    events: list[Event]
    rejected: list[Rejection]
    projected: dict[str, Changes | activity.Plan]


@dataclass
class Applied:
    """What one call of :meth:`Store.apply` did."""

    records: int = 0
    events: int = 0  # events applied by at least one projection
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows merged or inserted
    rejected: list[Rejection] = field(default_factory=list)
    resync: dict[int, int] = field(default_factory=dict)  # partition -> offset to seek to
    positions: dict[int, int] = field(default_factory=dict)  # partition -> next offset


async def prepare_connection(conn: Any) -> None:
    """UTC session time zone and jsonb as Python objects (orjson, binary format)."""
    await conn.execute("SET TIME ZONE 'UTC'")
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda value: b"\x01" + orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS),
        decoder=lambda data: orjson.loads(data[1:]),
        format="binary",
    )


def _project(name: str, events: Sequence[Event]) -> Changes | activity.Plan:
    if name == "registry":
        return registry.project(events)
    if name == "reservations":
        return reservations.project(events)
    if name == "device_health":
        return health.project(events)
    return activity.plan(events)


class Store:
    """Applies batches of ``topic`` to the ``projections`` in ``schema`` over ``conn``.

    The projections must all read the same topic (by default: those of ``space-events``).
    """

    def __init__(
        self,
        conn: Any,
        *,
        schema: str = "public",
        topic: str,
        projections: Sequence[str] = ("registry", "reservations", "activity"),
    ) -> None:
        unknown = set(projections) - set(PROJECTIONS)
        if unknown:
            raise ValueError(f"unknown projections: {sorted(unknown)}")
        catalogue = {PROJECTION_TOPICS[p] for p in projections}
        if len(catalogue) != 1:
            raise ValueError(f"projections of one topic, please: {sorted(projections)}")
        self.catalogue_topic = catalogue.pop()
        self._reader: Callable[[Incoming], Event] = (
            health.read_device_event if self.catalogue_topic == DEVICE_EVENTS else read_event
        )
        self.conn = conn
        self.schema = schema
        self.topic = topic
        self.projections = tuple(p for p in PROJECTIONS if p in projections)
        self.partitions = Partitions(schema)
        self._offsets = qualified(schema, OFFSETS_TABLE)
        self._states = qualified(schema, "space_states")
        self._actuations = qualified(schema, "actuations")
        self._pending: list[str] = []  # merges staged in this transaction, not yet sent

    async def setup(self, months: int = 3, today: date | None = None) -> list[date]:
        """Staging tables, known partitions, partitions ahead; returns the ones created."""
        await prepare_connection(self.conn)
        for name in self.projections:
            for spec in SPECS[name]:
                await self.conn.execute(staging_sql(spec, self.schema))
        await self.conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {quote_ident(CONFIRMATIONS_STAGE)} "
            "(tenant_id text, command_id text, confirmed_at timestamptz, evidence text) "
            "ON COMMIT DELETE ROWS"
        )
        if "activity" not in self.projections:
            return []
        await self.partitions.load(self.conn)
        return await self.ensure_ahead(months, today)

    async def ensure_ahead(self, months: int, today: date | None = None) -> list[date]:
        today = today or datetime.now(UTC).date()
        return await self.partitions.ensure(self.conn, months_ahead(today, months))

    # --- offsets ---------------------------------------------------------------------------

    async def positions(self, partitions: Iterable[int]) -> dict[int, dict[str, int]]:
        """partition -> projection -> next offset to apply (-1: nothing applied yet)."""
        parts = sorted(set(partitions))
        rows = await self.conn.fetch(
            f"SELECT projection, partition, next_offset FROM {self._offsets} "  # noqa: S608 - quoted identifier
            "WHERE topic = $1 AND projection = ANY($2::text[]) AND partition = ANY($3::int[])",
            self.topic,
            list(self.projections),
            parts,
        )
        found: dict[int, dict[str, int]] = {p: dict.fromkeys(self.projections, -1) for p in parts}
        for r in rows:
            found[r["partition"]][r["projection"]] = r["next_offset"]
        return found

    async def _lock_offsets(self, partitions: list[int]) -> dict[int, dict[str, int]]:
        """Lock (creating them if needed) and read the offsets rows of the batch, in key
        order, in one statement: ``DO UPDATE`` locks a row as ``FOR UPDATE`` would."""
        rows = await self.conn.fetch(
            f"INSERT INTO {self._offsets} AS t (projection, topic, partition, next_offset) "  # noqa: S608 - quoted identifier
            "SELECT p, $2, n, -1 FROM unnest($1::text[]) p CROSS JOIN unnest($3::int[]) n "
            "ORDER BY 1, 3 ON CONFLICT (projection, topic, partition) "
            "DO UPDATE SET next_offset = t.next_offset "
            "RETURNING projection, partition, next_offset",
            sorted(self.projections),
            self.topic,
            partitions,
        )
        found: dict[int, dict[str, int]] = {p: {} for p in partitions}
        for r in rows:
            found[r["partition"]][r["projection"]] = r["next_offset"]
        return found

    async def _write_offsets(self, stored: Mapping[int, Mapping[str, int]]) -> None:
        names, parts, values = [], [], []
        for partition, by_projection in stored.items():
            for name, offset in by_projection.items():
                names.append(name)
                parts.append(partition)
                values.append(offset)
        await self.conn.execute(
            f"INSERT INTO {self._offsets} AS t (projection, topic, partition, next_offset) "  # noqa: S608 - quoted identifier
            "SELECT p, $2, n, o FROM unnest($1::text[], $3::int[], $4::bigint[]) AS u(p, n, o) "
            "ON CONFLICT (projection, topic, partition) DO UPDATE "
            "SET next_offset = EXCLUDED.next_offset, updated_at = now()",
            names,
            self.topic,
            parts,
            values,
        )

    # --- applying a batch ----------------------------------------------------------------------

    def _read(self, records: Sequence[Incoming]) -> tuple[list[Event], list[Rejection]]:
        events: list[Event] = []
        rejected: list[Rejection] = []
        read = self._reader
        for record in records:
            try:
                events.append(read(record))
            except BadRecord as exc:
                rejected.append(Rejection(record, explain_rejection(record, exc)))
        return events, rejected

    def prepare(self, records: Sequence[Incoming]) -> Prepared:
        """The pure part of a batch: its events, their row changes, the rejected records.

        Touches no connection (a rebuild prepares the next batch in a thread while this
        one is written)."""
        events, rejected = self._read(records)
        projected = {name: _project(name, events) for name in self.projections}
        bad = {key for p in projected.values() for key in p.rejected}
        if bad:
            by_position = {(r.partition, r.offset): r for r in records}
            for key in sorted(bad):
                error = next(p.rejected[key] for p in projected.values() if key in p.rejected)
                record = by_position[key]
                rejected.append(Rejection(record, explain_rejection(record, error)))
            events = [e for e in events if (e.partition, e.offset) not in bad]
            projected = {name: _project(name, events) for name in self.projections}
        return Prepared(list(records), events, rejected, projected)

    async def apply(
        self,
        records: Sequence[Incoming] | Prepared,
        *,
        fetched_from: Mapping[int, int | None] | None = None,
        on_rejected: Callable[[list[Rejection]], Awaitable[None]] | None = None,
    ) -> Applied:
        """Apply ``records`` (see the module docstring); ``fetched_from`` is where the
        consumer started reading each partition of the batch, if known."""
        prepared = records if isinstance(records, Prepared) else self.prepare(records)
        records = prepared.records
        result = Applied(records=len(records))
        if not records:
            return result
        events, rejected, projected = prepared.events, prepared.rejected, prepared.projected
        if "activity" in self.projections:
            kinds = activity.ACTUATION_TYPES
            at = {(e.occurred_at.year, e.occurred_at.month) for e in events if e.type in kinds}
            await self.partitions.ensure(self.conn, {date(y, m, 1) for y, m in at})

        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for r in records:
            first[r.partition] = min(first.get(r.partition, r.offset), r.offset)
            last[r.partition] = max(last.get(r.partition, r.offset), r.offset)
        partitions = sorted(first)
        fetched = fetched_from or {}

        self._pending.clear()
        async with self.conn.transaction():
            stored = await self._lock_offsets(partitions)
            for p in partitions:
                applied = [o for o in stored[p].values() if o >= 0]
                start = fetched.get(p)
                if applied and min(applied) < (start if start is not None else first[p]):
                    result.resync[p] = min(applied)
            live = (
                [e for e in events if e.partition not in result.resync] if result.resync else events
            )
            applied_ids: set[tuple[int, int]] = set()
            applied_all = False
            for name in self.projections:
                if all(stored[p].get(name, -1) <= first[p] for p in partitions):
                    chosen = live  # the usual case: nothing of this batch applied before
                else:
                    chosen = [e for e in live if e.offset >= stored[e.partition].get(name, -1)]
                if not chosen:
                    continue
                if chosen is live:
                    applied_all = True
                elif not applied_all:
                    applied_ids.update((e.partition, e.offset) for e in chosen)
                changes = projected[name] if len(chosen) == len(events) else _project(name, chosen)
                if isinstance(changes, activity.Plan):
                    await self._write_activity(changes, result)
                else:
                    await self._write(changes, result)
            result.events = len(live) if applied_all else len(applied_ids)
            fresh = [
                r
                for r in rejected
                if r.record.partition not in result.resync
                and any(r.record.offset >= o for o in stored[r.record.partition].values())
            ]
            result.rejected = fresh
            if fresh and on_rejected is not None:
                await on_rejected(fresh)
            new_offsets: dict[int, dict[str, int]] = {}
            for p in partitions:
                if p in result.resync:
                    continue
                new_offsets[p] = {
                    name: max(stored[p].get(name, -1), last[p] + 1) for name in self.projections
                }
                result.positions[p] = min(new_offsets[p].values())
            if new_offsets:
                await self._write_offsets(new_offsets)
                await self._flush(*self._notifications())
            else:
                await self._flush()
        return result

    def _notifications(self) -> list[str]:
        return [f"NOTIFY {quote_ident(NOTIFY_CHANNEL)}, '{name}'" for name in self.projections]

    async def _copy(self, spec: Spec, rows: Sequence[Sequence[Any]]) -> None:
        await self.conn.copy_records_to_table(
            spec.staging, records=rows, columns=list(spec.names), schema_name="pg_temp"
        )

    async def _merge(self, spec: Spec, rows: Sequence[Sequence[Any]], result: Applied) -> None:
        """Stage ``rows``; the merge itself waits in ``self._pending`` for :meth:`_flush`."""
        if not rows:
            return
        await self._copy(spec, rows)
        self._pending.append(upsert_sql(spec, self.schema))
        result.rows[spec.table] = result.rows.get(spec.table, 0) + len(rows)

    async def _flush(self, *more: str) -> None:
        """The merges staged so far, and ``more``, in one round trip (in order)."""
        statements = [*self._pending, *more]
        self._pending.clear()
        if statements:
            await self.conn.execute(";\n".join(statements))

    async def _write(self, changes: Changes, result: Applied) -> None:
        for rowset in changes:
            await self._merge(rowset.spec, rowset.values(), result)

    async def _insert_actuations(self, rows: list[list[Any]]) -> set[str]:
        """Insert the actuations that are new; returns their event ids.

        Usually none of them is in the table yet: they are copied straight into their
        monthly partitions. When one is there already (a redelivered event), the copy
        fails on the primary key, is rolled back to its savepoint, and the rows go
        through the staging table and ``INSERT ... ON CONFLICT DO NOTHING`` instead.
        """
        import asyncpg

        spec = activity.ACTUATIONS
        columns = list(spec.names)
        by_month: dict[tuple[int, int], list[list[Any]]] = {}
        for row in rows:
            at = row[2]  # occurred_at, in UTC (read_event)
            by_month.setdefault((at.year, at.month), []).append(row)
        await self._flush("SAVEPOINT actuations")  # with the merges staged so far
        try:
            for (year, month), chunk in sorted(by_month.items()):
                await self.conn.copy_records_to_table(
                    partition_name(date(year, month, 1)),
                    records=chunk,
                    columns=columns,
                    schema_name=self.schema,
                )
        except asyncpg.UniqueViolationError:
            await self.conn.execute("ROLLBACK TO SAVEPOINT actuations")
            await self._copy(spec, rows)
            inserted = await self.conn.fetch(upsert_sql(spec, self.schema))
            return {r["event_id"] for r in inserted}
        return {row[3] for row in rows}

    async def _write_activity(self, plan: activity.Plan, result: Applied) -> None:
        spec = activity.ACTUATIONS
        rows = plan.actuations.of(spec).values()
        new_ids: set[str] = set()
        if rows:
            new_ids = await self._insert_actuations(rows)
            result.rows[spec.table] = result.rows.get(spec.table, 0) + len(new_ids)
        confirmations = plan.confirmation_rows(new_ids)
        if confirmations:
            await self.conn.copy_records_to_table(
                CONFIRMATIONS_STAGE, records=confirmations, schema_name="pg_temp"
            )
            self._pending.append(
                f"UPDATE {self._actuations} a SET confirmed_at = c.confirmed_at, "  # noqa: S608 - quoted identifier
                "confirmed_evidence = c.evidence "
                f"FROM {quote_ident(CONFIRMATIONS_STAGE)} c "
                "WHERE a.tenant_id = c.tenant_id AND a.command_id = c.command_id "
                "AND a.type = 'display.change_requested' AND (a.confirmed_at IS NULL "
                "OR (c.confirmed_at, array_position(ARRAY['status','ack','txack'], c.evidence)) "
                "< (a.confirmed_at, array_position(ARRAY['status','ack','txack'], "
                "a.confirmed_evidence)))"
            )
        bays = plan.bays()
        if not bays:
            return
        tenants, spaces = zip(*sorted(bays), strict=True)
        cols = ", ".join(quote_ident(c) for c in activity.BAY_STATE_COLUMNS)
        found = await self.conn.fetch(
            f"SELECT {cols} FROM {self._states} "  # noqa: S608 - quoted identifiers
            "WHERE (tenant_id, space_id) IN (SELECT * FROM unnest($1::text[], $2::text[])) "
            "ORDER BY tenant_id, space_id FOR UPDATE",
            list(tenants),
            list(spaces),
        )
        stored = {(r["tenant_id"], r["space_id"]): activity.BayState.from_row(r) for r in found}
        step = activity.advance(stored, plan.steps, new_ids)
        await self._merge(
            activity.SPACE_STATES, [bay.as_row() for bay in step.states.values()], result
        )
        await self._merge(activity.HOURLY, step.hourly_rows(), result)
        await self._merge(activity.DAILY, step.daily_rows(), result)
