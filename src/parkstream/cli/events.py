"""``parkstream events``: read parkstream's topics as JSON lines; export and import NDJSON."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from parkstream.config import load_settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("events", help="read parkstream's topics")
    actions = p.add_subparsers(dest="events_action", metavar="ACTION", required=True)
    tail = actions.add_parser("tail", help="print the records of a topic as JSON lines")
    tail.add_argument("--topic", default="space-events.v1", help="catalogue name of the topic")
    tail.add_argument(
        "--from-beginning", action="store_true", help="start at the oldest record, not the newest"
    )
    tail.add_argument("--type", action="append", help="only records of this type (repeatable)")
    tail.set_defaults(handler=run_tail)

    export = actions.add_parser(
        "export", help="write every record of a topic to NDJSON (one record a line, with its key)"
    )
    export.add_argument("--topic", default="space-events.v1", help="catalogue name of the topic")
    export.add_argument("--output", "-o", default="-", help="file to write ('-': stdout)")
    export.set_defaults(handler=run_export)

    imp = actions.add_parser(
        "import", help="produce the records of an NDJSON export to a topic, keyed as before"
    )
    imp.add_argument("--topic", default="space-events.v1", help="catalogue name of the topic")
    imp.add_argument("--input", "-i", default="-", help="file to read ('-': stdin)")
    imp.set_defaults(handler=run_import)


def run_tail(args: argparse.Namespace) -> int:
    from aiokafka import AIOKafkaConsumer

    from parkstream.kafka_profile import aiokafka_consumer_kwargs
    from parkstream.runtime import run_until_signal

    settings = load_settings()
    wanted = set(args.type or ())

    async def main(stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            settings.topic(args.topic),
            **aiokafka_consumer_kwargs(
                settings,
                group_id=None,
                auto_offset_reset="earliest" if args.from_beginning else "latest",
            ),
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for record in records:
                        line = bytes(record.value or b"")
                        if wanted and not any(f'"type":"{t}"'.encode() in line for t in wanted):
                            continue
                        sys.stdout.buffer.write(line + b"\n")
                sys.stdout.flush()
        finally:
            await consumer.stop()

    return run_until_signal(settings, main)


def run_export(args: argparse.Namespace) -> int:
    from parkstream.projector.ndjson import export_topic

    settings = load_settings()
    if args.output == "-":
        report = asyncio.run(export_topic(settings, args.topic, sys.stdout.buffer))
    else:
        with open(args.output, "wb") as out:
            report = asyncio.run(export_topic(settings, args.topic, out))
    print(f"exported {report.records:,} records in {report.seconds:.1f} s", file=sys.stderr)
    return 0


def run_import(args: argparse.Namespace) -> int:
    from parkstream.projector.ndjson import import_topic, read_lines

    settings = load_settings()
    if args.input == "-":
        report = asyncio.run(
            import_topic(settings, args.topic, read_lines(sys.stdin.buffer), "<stdin>")
        )
    else:
        with open(args.input, "rb") as source:
            report = asyncio.run(import_topic(settings, args.topic, read_lines(source), args.input))
    print(
        f"imported {report.records:,} records in {report.seconds:.1f} s, "
        f"{report.rejected} to the dead-letter topic",
        file=sys.stderr,
    )
    return 1 if report.rejected else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``parkstream events`` without the top-level command."""
    parser = argparse.ArgumentParser(prog="parkstream")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["events", *(sys.argv[1:] if argv is None else argv)])
    result: int = args.handler(args)
    return result
