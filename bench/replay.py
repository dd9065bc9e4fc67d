"""Replay: events/s of ``parkstream replay`` rebuilding every projection from the topic.

The workload is the projector benchmark's (the decider benchmark's car park, decided;
see ``bench.projector``), produced to a fresh ``space-events`` topic before timing.
:func:`parkstream.projector.replay.rebuild` then reads it from the start into the shadow
schema of a fresh database, exactly as ``parkstream replay`` does; timed from its first
fetch to the commit of its last batch (the progress bar goes to stderr).

The goal (issue "5 · Projections and replay") is >= 100,000 events/s on this machine; the
table shows the goal as the baseline, so the ratio is the share of it reached.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bench.common import Result
from bench.projector import fresh_database, produce, services, space_events, workload_frozen
from parkstream.config import Settings

NAME = "replay"
GOAL_RATE = 100_000
UNIT = "events/s"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inputs", type=int, default=140_000, help="decider inputs (about 1.45 events each)"
    )
    parser.add_argument("--batch", type=int, default=20_000, help="records per transaction")
    parser.add_argument("--rounds", type=int, default=2, help="rebuilds (the best one counts)")


async def _run(
    settings: Settings, records: list[tuple[bytes, bytes]], args: argparse.Namespace
) -> Result:
    from parkstream.projector.replay import rebuild

    await produce(settings, records)
    rates = []
    for _ in range(args.rounds):
        async with fresh_database(settings) as db:
            with workload_frozen():
                report = await rebuild(db, batch_size=args.batch, progress=sys.stderr)
        assert report.records == len(records), (report.records, len(records))
        rates.append(report.rate)
        print(
            f"rebuild: {report.records:,} events in {report.seconds:.1f} s, "
            f"{report.rate:,.0f} events/s"
        )
    note = (
        f"{len(records):,} events, every projection, batches of {args.batch}; "
        f"baseline = the goal ({GOAL_RATE:,} events/s); runs: "
        + ", ".join(f"{r:,.0f}" for r in rates)
    )
    return Result(NAME, max(rates), UNIT, GOAL_RATE, 1.0, note)


def run(args: argparse.Namespace) -> list[Result]:
    from parkstream.logging import configure_logging

    configure_logging("WARNING", "console")
    print(f"building the workload ({args.inputs:,} decider inputs) ...")
    records = space_events(args.inputs)
    with services() as settings:
        return [asyncio.run(_run(settings, records, args))]
