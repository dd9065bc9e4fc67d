"""``parkstream events``: read parkstream's topics as JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import sys
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
