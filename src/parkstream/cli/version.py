from __future__ import annotations

import argparse
import platform
from typing import Any

from parkstream import __version__


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("version", help="print the parkstream version")
    p.add_argument("--verbose", action="store_true", help="also print Python and platform")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.verbose:
        print(f"parkstream {__version__} (Python {platform.python_version()}, {platform.system()})")
    else:
        print(f"parkstream {__version__}")
    return 0
