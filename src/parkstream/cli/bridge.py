from __future__ import annotations

import argparse
import asyncio
from typing import Any

from parkstream.config import load_settings

DEFAULT_METRICS_PORT = 9101


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "bridge", help="run the ChirpStack MQTT <-> Kafka bridge"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from parkstream.bridge.app import Bridge
    from parkstream.runtime import run_until_signal, serve_metrics

    settings = load_settings()

    async def main(stop: asyncio.Event) -> None:
        bridge = Bridge(settings)
        serve_metrics(settings, bridge.metrics.registry, DEFAULT_METRICS_PORT)
        waiter = asyncio.create_task(_forward(stop, bridge.stop))
        try:
            await bridge.run()
        finally:
            waiter.cancel()

    return run_until_signal(settings, main)


async def _forward(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()
