"""``parkstream replay``: rebuild projections from their topics, verify, swap them in."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from parkstream.config import load_settings

PROJECTION_CHOICES = ("registry", "reservations", "activity", "device_health", "all")


def _time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "replay",
        help="rebuild projections from their topics into shadow tables, verify, swap",
        description=(
            "Rebuild the read model (or some projections) from space-events and "
            "device-events into the schema parkstream_shadow, with the projector's own "
            "code. --verify compares the rebuild with the live tables (content hash per "
            "table, differing keys); "
            "--swap moves the rebuild in, atomically."
        ),
    )
    p.add_argument(
        "--projection",
        action="append",
        choices=PROJECTION_CHOICES,
        help="projection to rebuild (repeatable; default all)",
    )
    p.add_argument(
        "--from",
        dest="since",
        type=_time,
        help="start at the first record written to the topic at or after this time "
        "(ISO 8601; the Kafka record time)",
    )
    p.add_argument("--verify", action="store_true", help="compare the rebuild with the live tables")
    p.add_argument(
        "--swap", action="store_true", help="swap the rebuild in (after --verify, only if same)"
    )
    p.add_argument(
        "--keep-shadow", action="store_true", help="keep the shadow schema after --verify"
    )
    p.add_argument(
        "--keep-retired", action="store_true", help="keep the old tables in parkstream_retired"
    )
    p.add_argument("--schema", default="public", help="schema of the live read model")
    p.add_argument("--batch-size", type=int, default=20_000, help="records per transaction")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    import asyncpg

    from parkstream.projector import PROJECTIONS
    from parkstream.projector.replay import SHADOW, describe, rebuild, swap, verify

    settings = load_settings()
    chosen = args.projection or ["all"]
    projections = PROJECTIONS if "all" in chosen else tuple(p for p in PROJECTIONS if p in chosen)
    report = await rebuild(
        settings,
        projections=projections,
        live=args.schema,
        since=args.since,
        batch_size=args.batch_size,
        progress=sys.stderr,
    )
    print(
        f"rebuilt {', '.join(report.projections)} into {SHADOW}: {report.records:,} records "
        f"in {report.seconds:.1f} s ({report.rate:,.0f} records/s), "
        f"{report.rejected} rejected"
    )
    status = 0
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        if args.verify:
            result = await verify(conn, projections=projections, live=args.schema)
            describe(result, print)
            if not result.same:
                status = 1
        if args.swap and status == 0:
            tables = await swap(
                conn,
                projections=projections,
                live=args.schema,
                keep_retired=args.keep_retired,
            )
            print(f"swapped in: {', '.join(tables)}")
        elif args.verify and not args.keep_shadow:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{SHADOW}" CASCADE')
    finally:
        await conn.close()
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``parkstream replay`` without the top-level command."""
    parser = argparse.ArgumentParser(prog="parkstream")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["replay", *(sys.argv[1:] if argv is None else argv)])
    result: int = args.handler(args)
    return result
