"""``parkstream schemas generate|check|publish``: the JSON Schemas and AsyncAPI document."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path("schemas")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "schemas",
        help="generate, check and publish the JSON Schemas and AsyncAPI document of the topics",
        description="JSON Schemas of every public record type and the AsyncAPI document of "
        "the public topics (see docs/compatibility.md).",
    )
    actions = p.add_subparsers(dest="schemas_action", metavar="ACTION", required=True)
    for name, handler, text in (
        (
            "generate",
            run_generate,
            "write the current schemas, index.json and asyncapi.json "
            "from the models and the topic catalogue",
        ),
        (
            "check",
            run_check,
            "exit 1 if the files drifted from the models or the topic catalogue, "
            "a published file changed, or the models break a published schema",
        ),
        (
            "publish",
            run_publish,
            "publish each current schema not yet published (refused when incompatible)",
        ),
    ):
        action: argparse.ArgumentParser = actions.add_parser(name, help=text, description=text)
        action.add_argument(
            "--dir",
            type=Path,
            default=DEFAULT_DIR,
            help="the schemas directory (default: ./schemas)",
        )
        action.set_defaults(handler=handler)


def run_generate(args: argparse.Namespace) -> int:
    from parkstream.schemas.generate import SchemaStore, SchemaStoreError

    try:
        changed = SchemaStore(args.dir).generate()
    except SchemaStoreError as exc:
        print(f"parkstream schemas generate: {exc}", file=sys.stderr)
        return 1
    for path in changed:
        print(f"wrote {path}")
    if not changed:
        print(f"{args.dir}: up to date")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from parkstream.schemas.generate import SchemaStore

    problems = SchemaStore(args.dir).check()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(
            f"{len(problems)} problem(s); `parkstream schemas generate` fixes drift, "
            "see docs/compatibility.md for the rest",
            file=sys.stderr,
        )
        return 1
    print(
        f"{args.dir}: in step with the models and the topic catalogue, "
        "and compatible with every published schema"
    )
    return 0


def run_publish(args: argparse.Namespace) -> int:
    from parkstream.schemas.generate import PublishError, SchemaStore

    try:
        published = SchemaStore(args.dir).publish()
    except PublishError as exc:
        print(f"parkstream schemas publish: refused:\n{exc}", file=sys.stderr)
        return 1
    for path in published:
        print(f"published {path}")
    if not published:
        print("nothing new to publish")
    return 0
