from __future__ import annotations

import argparse
import asyncio
from typing import Any

from parkstream.config import load_settings

DEFAULT_METRICS_PORT = 9102


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "worker", help="run the stream worker (device events + commands -> space events)"
    )
    p.add_argument(
        "--no-ticks", action="store_true", help="do not emit tick commands (replay tooling)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from parkstream.runtime import run_until_signal, serve_metrics
    from parkstream.worker.app import create_worker

    settings = load_settings()

    async def main(stop: asyncio.Event) -> None:
        datadir = settings.state_dir / "worker"
        datadir.mkdir(parents=True, exist_ok=True)
        worker = create_worker(settings, datadir=datadir, ticks=not args.no_ticks)
        serve_metrics(settings, worker.metrics.registry, DEFAULT_METRICS_PORT)
        await worker.app.start()
        try:
            await stop.wait()
        finally:
            await worker.app.stop()

    return run_until_signal(settings, main)
