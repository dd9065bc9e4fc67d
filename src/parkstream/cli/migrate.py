"""``parkstream migrate``: apply the read model's SQL migrations (``projections/``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from parkstream.config import load_settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "migrate", help="apply the read model's SQL migrations to PostgreSQL"
    )
    p.add_argument("--schema", default="public", help="schema of the read model")
    p.add_argument(
        "--months-ahead",
        type=int,
        default=3,
        help="also create actuations partitions for this many months after the current one",
    )
    p.add_argument("--status", action="store_true", help="only list applied and pending migrations")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    import asyncpg

    from parkstream.projector.migrate import MigrationError, load_migrations, migrate, recorded
    from parkstream.projector.partitions import Partitions, months_ahead

    settings = load_settings()
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        if args.status:
            done = await recorded(conn, args.schema)
            for m in load_migrations():
                state = "applied" if m.version in done else "pending"
                print(f"{m.version:04d}_{m.name}: {state}")
            return 0
        try:
            report = await migrate(conn, args.schema)
        except MigrationError as exc:
            print(f"parkstream migrate: {exc}", file=sys.stderr)
            return 1
        for m in report.applied:
            print(f"applied {m.version:04d}_{m.name}")
        if not report.applied:
            print(f"schema {args.schema!r} is up to date ({len(report.present)} migrations)")
        from datetime import UTC, datetime

        partitions = Partitions(args.schema)
        await partitions.load(conn)
        created = await partitions.ensure(
            conn, months_ahead(datetime.now(UTC).date(), args.months_ahead)
        )
        for month in created:
            print(f"created partition actuations {month:%Y-%m}")
        return 0
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``parkstream migrate`` without the top-level command."""
    parser = argparse.ArgumentParser(prog="parkstream")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["migrate", *(sys.argv[1:] if argv is None else argv)])
    result: int = args.handler(args)
    return result
