"""Ordered SQL migrations of the read model (``projections/NNNN_name.sql``).

Each migration runs once per schema, in its own transaction, and is recorded in
``projection_migrations`` (version, name, checksum). Running again applies only what is
missing; a recorded migration whose file changed since is an error (migrations are
append-only: fix forward with a new file). A session advisory lock serialises concurrent
runs. The SQL names no schema: it is applied with ``search_path`` set to the target
schema, so a rebuild can create the same tables in a shadow schema.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from parkstream.projector.tables import qualified, quote_ident

TRACKING_TABLE = "projection_migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """The migrations on disk and the ones recorded in the database disagree."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass
class MigrateReport:
    schema: str
    applied: list[Migration] = field(default_factory=list)
    present: list[int] = field(default_factory=list)


def load_migrations() -> list[Migration]:
    """The migrations shipped with the package (a link to ``projections/``), in order."""
    folder = resources.files("parkstream.projector").joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migrations share a version number")
    if not found:
        raise MigrationError(f"no migrations found in {folder}")
    return found


def lock_key(schema: str) -> int:
    """A stable 63-bit advisory lock key for migrating ``schema``."""
    digest = hashlib.sha256(f"parkstream.projector.migrate:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


async def recorded(conn: Any, schema: str) -> dict[int, tuple[str, str]]:
    """version -> (name, checksum) of the migrations recorded in ``schema``."""
    exists = await conn.fetchval("SELECT to_regclass($1)", f"{schema}.{TRACKING_TABLE}")
    if exists is None:
        return {}
    rows = await conn.fetch(
        f"SELECT version, name, checksum FROM {qualified(schema, TRACKING_TABLE)}"  # noqa: S608 - quoted identifier
    )
    return {r["version"]: (r["name"], r["checksum"]) for r in rows}


async def migrate(
    conn: Any, schema: str = "public", migrations: Sequence[Migration] | None = None
) -> MigrateReport:
    """Apply the missing migrations to ``schema`` (created if needed)."""
    todo = list(migrations) if migrations is not None else load_migrations()
    report = MigrateReport(schema)
    tracking = qualified(schema, TRACKING_TABLE)
    key = lock_key(schema)
    await conn.execute("SELECT pg_advisory_lock($1)", key)
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {tracking} ("
            "version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = await recorded(conn, schema)
        for m in todo:
            if m.version in done:
                name, checksum = done[m.version]
                if checksum != m.checksum:
                    raise MigrationError(
                        f"migration {m.version:04d}_{name} was changed after it was applied "
                        f"to schema {schema!r}: add a new migration instead"
                    )
                report.present.append(m.version)
                continue
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {quote_ident(schema)}")
                await conn.execute(m.sql)
                await conn.execute(
                    f"INSERT INTO {tracking} (version, name, checksum) VALUES ($1, $2, $3)",  # noqa: S608 - quoted identifier
                    m.version,
                    m.name,
                    m.checksum,
                )
            report.applied.append(m)
        unknown = sorted(set(done) - {m.version for m in todo})
        if unknown:
            raise MigrationError(
                f"schema {schema!r} has migrations this version does not know: {unknown}"
            )
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", key)
    return report
