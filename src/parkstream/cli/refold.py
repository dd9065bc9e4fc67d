"""``parkstream refold``: fold the worker's inputs again into a new space-events topic.

See :mod:`parkstream.refold`. Prints the target, progress every few seconds on stderr and
a summary line on stdout. Exit 0, or 1 when the refold could not run (bad target, no
inputs topic, a record that could not be written).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parkstream.refold import RefoldProgress

PROGRESS_EVERY_S = 2.0

DESCRIPTION = """\
Fold a range of the worker's inputs (worker-space-inputs.v1: commands, ticks and routed
device events in their final per-bay order) with the current decider, straight from Kafka,
and write the resulting space events to a new versioned topic (created with the settings
of space-events.v1 if missing). Downlinks, registry changes and dead letters are not
written: a refold never drives the lights.

The inputs are read from the beginning (or --from-time) up to the end they had when the
refold started (the fetch high-watermark of each partition, or --until-offsets). Times are
Kafka record timestamps of the inputs topic. A refold of the whole topic reproduces the
worker's space events exactly, ids included; a refold that starts later treats every bay
as new at that time.

Idempotent: running it twice into the same topic writes the same records (same event ids)
again; consumers of space events drop repeats by event_id.
"""


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "refold",
        help="refold the worker's inputs with the current decider into a new topic",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(handler=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--to-topic",
        required=True,
        metavar="NAME",
        help="target topic, under the topic prefix unless NAME already starts with it "
        "(e.g. space-events.v2-refold -> parkstream.space-events.v2-refold); never a "
        "topic of the catalogue",
    )
    p.add_argument(
        "--output-prefix",
        metavar="PREFIX",
        help="prefix of the target topic (default: PARKSTREAM_TOPIC_PREFIX); the inputs "
        "are always read under PARKSTREAM_TOPIC_PREFIX",
    )
    p.add_argument(
        "--from-time",
        type=iso_time,
        metavar="ISO",
        help="skip inputs timestamped earlier (RFC 3339; no offset means UTC)",
    )
    p.add_argument(
        "--until-time",
        type=iso_time,
        metavar="ISO",
        help="skip inputs timestamped at or after this time",
    )
    p.add_argument(
        "--until-offsets",
        type=partition_offsets,
        metavar="P=OFFSET,...",
        help="stop partition P before OFFSET (partitions not named: their high-watermark)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        metavar="N",
        help="records per fetched batch (default 5000)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def iso_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def partition_offsets(text: str) -> dict[int, int]:
    out: dict[int, int] = {}
    try:
        for item in text.split(","):
            if not item.strip():
                continue
            partition, _, offset = item.partition("=")
            p, o = int(partition), int(offset)
            if p < 0 or o < 0:
                raise ValueError
            out[p] = o
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected PARTITION=OFFSET[,PARTITION=OFFSET...], got {text!r}"
        ) from exc
    return out


def run(args: argparse.Namespace) -> int:
    from parkstream.config import load_settings
    from parkstream.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.effective_log_format)
    return asyncio.run(refold_main(settings, args))


async def refold_main(settings: Any, args: argparse.Namespace) -> int:
    """The command's work, for callers that have their settings and an event loop."""
    from parkstream.refold import (
        BATCH_MAX,
        RefoldError,
        RefoldOptions,
        output_topic,
        refold,
    )

    try:
        target = output_topic(settings, args.to_topic, args.output_prefix)
        options = RefoldOptions(
            to_topic=target,
            from_time=args.from_time,
            until_time=args.until_time,
            until_offsets=args.until_offsets,
            batch_max=args.batch or BATCH_MAX,
        )
        print(
            f"refold {settings.topic('worker-space-inputs.v1')} -> {target}",
            file=sys.stderr,
            flush=True,
        )
        report = await refold(settings, options, None if args.quiet else _Progress())
    except RefoldError as exc:
        print(f"parkstream refold: {exc}", file=sys.stderr)
        return 1
    print(report.summary(), flush=True)
    return 0


class _Progress:
    """A progress line on stderr at most every PROGRESS_EVERY_S seconds."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def __call__(self, p: RefoldProgress) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        rate = p.inputs / p.seconds if p.seconds > 0 else 0.0
        left = "?" if p.remaining is None else f"{p.remaining}"
        print(
            f"  {p.inputs} inputs -> {p.events} events, {rate:,.0f} inputs/s, {left} left",
            file=sys.stderr,
            flush=True,
        )
