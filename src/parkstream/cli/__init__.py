"""The ``parkstream`` command line: one entry point, one module per subcommand.

Each subcommand module exposes ``register(subparsers)``; it imports its heavy
dependencies inside the handler so ``parkstream --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules under parkstream.cli that add subcommands, in --help order.
COMMAND_MODULES: tuple[str, ...] = (
    "dev",
    "version",
    "services",
    "topics",
    "bridge",
    "worker",
    "migrate",
    "projector",
    "api",
    "tenant",
    "replay",
    "refold",
    "simulate",
    "events",
    "ingest",
    "display",
    "schemas",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parkstream",
        description="Event-sourced LoRaWAN smart parking.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"parkstream.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours.
        sys.stderr.close()
        return 0
    return result
