"""``parkstream projector``: keep the PostgreSQL read model in step with space-events and
device-events."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from parkstream.config import load_settings

DEFAULT_METRICS_PORT = 9103


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "projector", help="project space-events and device-events into the PostgreSQL read model"
    )
    p.add_argument("--schema", default="public", help="schema of the read model")
    p.add_argument("--batch-size", type=int, default=5000, help="most records per transaction")
    p.add_argument("--months-ahead", type=int, default=3, help="actuations partitions kept ahead")
    p.add_argument(
        "--migrate", action="store_true", help="apply pending migrations before starting"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from parkstream.projector.app import Projector
    from parkstream.runtime import run_until_signal, serve_metrics

    settings = load_settings()

    async def main(stop: asyncio.Event) -> None:
        if args.migrate:
            await _migrate(settings.database_url.get_secret_value(), args.schema)
        projector = Projector(
            settings,
            schema=args.schema,
            batch_size=args.batch_size,
            months_ahead=args.months_ahead,
        )
        serve_metrics(settings, projector.metrics.registry, DEFAULT_METRICS_PORT)
        await projector.run(stop)

    return run_until_signal(settings, main)


async def _migrate(url: str, schema: str) -> None:
    import asyncpg

    from parkstream.projector.migrate import migrate

    conn = await asyncpg.connect(url)
    try:
        await migrate(conn, schema)
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``parkstream projector`` without the top-level command."""
    parser = argparse.ArgumentParser(prog="parkstream")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["projector", *(sys.argv[1:] if argv is None else argv)])
    result: int = args.handler(args)
    return result
