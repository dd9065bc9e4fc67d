"""Monthly partitions of ``actuations``: named ``actuations_pYYYY_MM``, bounds in UTC.

Created ahead (the current month and the next N) when the projector starts and when
a month turns, and on demand before a batch that holds events of a month without one
(a backfill), each in its own short transaction under an advisory lock, so the DEFAULT
partition never receives a row.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from parkstream.projector.tables import qualified

TABLE = "actuations"
_CHILD = re.compile(r"^actuations_p(\d{4})_(\d{2})$")


def month_of(at: datetime) -> date:
    at = at.astimezone(UTC)
    return date(at.year, at.month, 1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def months_ahead(today: date, ahead: int) -> list[date]:
    """The current month and the ``ahead`` months after it."""
    first = date(today.year, today.month, 1)
    return [add_months(first, n) for n in range(ahead + 1)]


def partition_name(month: date) -> str:
    return f"{TABLE}_p{month.year:04d}_{month.month:02d}"


def create_sql(schema: str, month: date) -> str:
    start, end = month, add_months(month, 1)
    return (
        f"CREATE TABLE IF NOT EXISTS {qualified(schema, partition_name(month))} "
        f"PARTITION OF {qualified(schema, TABLE)} "
        f"FOR VALUES FROM ('{start.isoformat()} 00:00:00+00') TO ('{end.isoformat()} 00:00:00+00')"
    )


def _lock_key(schema: str) -> int:
    digest = hashlib.sha256(f"parkstream.projector.partitions:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


async def existing(conn: Any, schema: str) -> set[date]:
    """Months that have a partition in ``schema`` (the DEFAULT partition is not one)."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent "
        "JOIN pg_namespace n ON n.oid = p.relnamespace "
        "WHERE n.nspname = $1 AND p.relname = $2",
        schema,
        TABLE,
    )
    months = set()
    for row in rows:
        match = _CHILD.match(row["relname"])
        if match:
            months.add(date(int(match[1]), int(match[2]), 1))
    return months


class Partitions:
    """Creates missing monthly partitions (what exists is read again on every call:
    a swapped-in rebuild brings its own)."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.known: set[date] = set()

    async def load(self, conn: Any) -> None:
        self.known = await existing(conn, self.schema)

    async def ensure(self, conn: Any, months: Iterable[date]) -> list[date]:
        """Create partitions for ``months`` that have none; returns the ones created."""
        wanted = set(months)
        if not wanted:
            return []
        self.known = await existing(conn, self.schema)
        missing = sorted(wanted - self.known)
        if not missing:
            return []
        created = []
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(self.schema))
            present = await existing(conn, self.schema)
            for month in missing:
                if month not in present:
                    await conn.execute(create_sql(self.schema, month))
                    created.append(month)
        self.known.update(missing)
        return created
