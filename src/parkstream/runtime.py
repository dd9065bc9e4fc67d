"""What every long-running parkstream process shares: logging, signals, metrics endpoint."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from parkstream.config import Settings
from parkstream.logging import configure_logging, get_logger


def serve_metrics(
    settings: Settings, registry: CollectorRegistry, default_port: int | None
) -> None:
    """Expose ``registry`` on ``metrics_host:metrics_port`` (or the process default; 0 = off)."""
    port = settings.metrics_port if settings.metrics_port is not None else default_port
    if port:
        start_http_server(port, addr=settings.metrics_host, registry=registry)
        get_logger("parkstream.metrics").info(
            "metrics endpoint", host=settings.metrics_host, port=port
        )


def run_until_signal(
    settings: Settings, main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
) -> int:
    """Run ``main(stop)``; SIGTERM or SIGINT sets ``stop`` for a graceful exit with status 0."""
    configure_logging(settings.log_level, settings.effective_log_format)

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())
    return 0
