from __future__ import annotations

import argparse
import asyncio
from typing import Any

from parkstream.config import load_settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("topics", help="manage the Kafka topics")
    topics = p.add_subparsers(dest="topics_command", metavar="ACTION", required=True)
    apply = topics.add_parser(
        "apply", help="create the catalogue's topics (streams/topics.toml) and report drift"
    )
    apply.add_argument("--check", action="store_true", help="exit 1 when an existing topic drifted")
    apply.set_defaults(handler=run_apply)
    listing = topics.add_parser("list", help="print the catalogue")
    listing.set_defaults(handler=run_list)


def run_apply(args: argparse.Namespace) -> int:
    from parkstream.topics_admin import apply_topics

    settings = load_settings()
    report = asyncio.run(apply_topics(settings))
    for name in report.created:
        print(f"created  {name}")
    for name in report.existing:
        print(f"exists   {name}")
    for line in report.drift:
        print(f"DRIFT    {line}")
    return 1 if (args.check and not report.ok) else 0


def run_list(args: argparse.Namespace) -> int:
    from parkstream.catalogue import load_catalogue

    settings = load_settings()
    for spec in load_catalogue():
        print(
            f"{spec.full_name(settings)}\tkey={spec.key}\tpartitions={spec.partitions}\t{spec.description}"
        )
    return 0
