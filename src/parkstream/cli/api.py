"""``parkstream api``: serve the HTTP API (uvicorn)."""

from __future__ import annotations

import argparse
from typing import Any

from parkstream.config import load_settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("api", help="serve the HTTP API")
    p.add_argument("--host", help="listen address (default PARKSTREAM_API_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default PARKSTREAM_API_PORT, 8000)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from parkstream.api.app import create_app
    from parkstream.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.effective_log_format)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=args.host or settings.api_host,
        port=args.port if args.port is not None else settings.api_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        server_header=False,
        # uvicorn stops accepting, finishes the requests in flight, then runs the lifespan
        # shutdown on SIGTERM/SIGINT, and exits 0.
        timeout_graceful_shutdown=10,
    )
    return 0
