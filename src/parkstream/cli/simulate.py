"""``parkstream simulate``: a simulated lot that speaks ChirpStack v4 over MQTT.

The broker comes from the settings (``PARKSTREAM_MQTT_URL``, ``PARKSTREAM_MQTT_USERNAME``,
...); everything about the lot from the options. Stops on Ctrl-C / SIGTERM (exit 0)
or after ``--duration`` simulated minutes.

Also runnable on its own: ``python -m parkstream.cli.simulate --bays 4 --duration 60``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import time
from typing import Any

from parkstream.simulate.lot import DEFAULT_APPLICATION_ID, LotConfig


def _time_of_day(text: str) -> time:
    try:
        hours, minutes = text.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HH:MM, got {text!r}") from None


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number 0..1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number 0..1, got {text!r}")
    return value


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bays", type=_positive(int), default=24, help="number of bays (24)")
    p.add_argument(
        "--speed",
        type=_positive(float),
        default=60.0,
        help="simulated seconds per real second (60: a simulated minute per second)",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of EUIs and schedules (1)")
    p.add_argument(
        "--start", type=_time_of_day, default=time(7, 30), help="simulated start time HH:MM (07:30)"
    )
    p.add_argument(
        "--duration",
        type=_positive(float),
        default=None,
        metavar="SIMULATED_MINUTES",
        help="stop after this many simulated minutes (default: run until stopped)",
    )
    p.add_argument(
        "--topic-prefix", default="", help="MQTT topic prefix: {prefix}/application/... ('')"
    )
    p.add_argument(
        "--application-id",
        default=DEFAULT_APPLICATION_ID,
        help=f"ChirpStack application id ({DEFAULT_APPLICATION_ID})",
    )
    p.add_argument(
        "--miss-rate", type=_rate, default=0.05, help="share of downlinks a light misses (0.05)"
    )
    p.add_argument(
        "--malformed-rate",
        type=_rate,
        default=0.002,
        help="share of uplinks followed by a malformed copy (0.002)",
    )
    p.add_argument(
        "--heartbeat",
        type=_positive(float),
        default=60.0,
        metavar="MIN",
        help="sensor heartbeat period in simulated minutes (60)",
    )
    p.add_argument(
        "--silent-bay",
        type=int,
        default=-1,
        metavar="N",
        help="bay number whose sensor falls silent for 3 simulated hours after 1 hour; "
        "-1 the last (default), 0 none",
    )


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "simulate", help="run a simulated lot that speaks ChirpStack v4 over MQTT"
    )
    add_arguments(p)
    p.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> LotConfig:
    silent: int | None
    if args.silent_bay == 0:
        silent = None
    elif args.silent_bay < 0:
        silent = args.silent_bay
    else:
        silent = args.silent_bay - 1
    return LotConfig(
        bays=args.bays,
        seed=args.seed,
        speed=args.speed,
        start=args.start,
        duration_minutes=args.duration,
        topic_prefix=args.topic_prefix,
        application_id=args.application_id,
        miss_rate=args.miss_rate,
        malformed_rate=args.malformed_rate,
        heartbeat_minutes=args.heartbeat,
        silent_bay=silent,
    )


def run(args: argparse.Namespace) -> int:
    from parkstream.config import load_settings
    from parkstream.runtime import run_until_signal
    from parkstream.simulate.runner import run_lot

    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"parkstream simulate: {exc}", file=sys.stderr)
        return 2
    settings = load_settings()

    async def main(stop: asyncio.Event) -> None:
        await run_lot(settings, config, stop)

    return run_until_signal(settings, main)


def main(argv: Sequence[str] | None = None) -> int:
    """``parkstream simulate`` without the other subcommands."""
    parser = argparse.ArgumentParser(
        prog="parkstream simulate", description="A simulated lot speaking ChirpStack v4 over MQTT."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
