"""``parkstream api``: serve the HTTP API (uvicorn)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Iterator
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
    from parkstream.runtime import run_until_signal

    settings = load_settings()

    class Server(uvicorn.Server):
        # Signals are ours (run_until_signal): uvicorn would re-raise SIGTERM after its
        # graceful shutdown, so the process would not exit 0.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    async def main(stop: asyncio.Event) -> None:
        app = create_app(settings)
        config = uvicorn.Config(
            app,
            host=args.host or settings.api_host,
            port=args.port if args.port is not None else settings.api_port,
            log_level=settings.log_level.lower(),
            log_config=None,  # our structured logging, configured by run_until_signal
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=10,
        )
        server = Server(config)
        serving = asyncio.create_task(server.serve())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        # On SIGTERM/SIGINT: stop accepting, finish the requests in flight, run the
        # lifespan shutdown (producer flushed, pool closed), then exit 0.
        app.state.draining = True  # live streams end; plain requests finish
        server.should_exit = True
        await serving
        stopping.cancel()
        if not server.started:
            raise SystemExit("parkstream api: the server did not start (see the log above)")

    return run_until_signal(settings, main)
