"""``parkstream dev``: services, topics, bridge, worker, projector, API and a simulated lot,
in one command."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from types import FrameType
from typing import Any

API_START_S = 30.0


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "dev", help="run the whole system with embedded services and a simulated lot"
    )
    p.add_argument("--bays", type=int, default=24, help="bays in the simulated lot (default 24)")
    p.add_argument(
        "--speed", type=float, default=60.0, help="simulated seconds per real second (default 60)"
    )
    p.add_argument("--no-simulator", action="store_true", help="do not run the simulated lot")
    p.add_argument(
        "--api-port",
        type=int,
        default=8000,
        help="the API's port on 127.0.0.1 (default 8000; a free one if that is taken)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from parkstream.config import Settings
    from parkstream.dev.access import answers, demo_key, loopback_port
    from parkstream.dev.seed import DEMO_TENANT, seed_commands, send_seed
    from parkstream.dev.supervisor import Supervisor
    from parkstream.harness import ServicesHarness
    from parkstream.simulate.lot import LotConfig
    from parkstream.topics_admin import apply_topics

    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    say = _printer()
    harness = ServicesHarness(os.environ)
    say("starting services ...")
    services = harness.start()
    supervisor: Supervisor | None = None
    try:
        workdir = services.workdir or harness.services.workdir
        assert workdir is not None
        env = {**os.environ, **services.as_env()}
        env.setdefault("PARKSTREAM_PROFILE", "dev")
        env.setdefault("PARKSTREAM_STATE_DIR", str(workdir / "state"))
        env.setdefault("PARKSTREAM_LOG_FORMAT", "json")
        settings = Settings(
            profile=env["PARKSTREAM_PROFILE"],
            kafka_bootstrap=services.kafka_bootstrap,
            topic_prefix=env.get("PARKSTREAM_TOPIC_PREFIX", "parkstream"),
        )
        report = asyncio.run(apply_topics(settings))
        say(f"topics ready ({len(report.created)} created)")
        if not args.no_simulator:
            lot = LotConfig(bays=args.bays, speed=args.speed)
            asyncio.run(send_seed(settings, seed_commands(lot, datetime.now(UTC))))
            say(f"demo tenant {DEMO_TENANT!r}: {args.bays} bays with a sensor and a light")
        migrated = subprocess.run(
            [sys.executable, "-m", "parkstream", "migrate"], env=env, check=False
        )
        if migrated.returncode != 0:
            say("migrations failed; see above")
            return 1
        key = asyncio.run(demo_key(services.database_url))
        api_port = loopback_port(args.api_port)
        if api_port != args.api_port:
            say(f"port {args.api_port} is taken; the API listens on {api_port}")
        supervisor = Supervisor(workdir=workdir, env=env, report=say)
        # Each process's metrics on its usual port, or on a free one if that is taken (by
        # another copy of the system, say), so that nothing fails to start.
        for name, port in (("bridge", 9101), ("worker", 9102), ("projector", 9103)):
            metrics = {}
            if "PARKSTREAM_METRICS_PORT" not in env:
                metrics["PARKSTREAM_METRICS_PORT"] = str(loopback_port(port))
            supervisor.add(name, name, env=metrics)
        # Loopback only, whatever PARKSTREAM_API_HOST says: the demo key is an admin key.
        supervisor.add("api", "api", "--host", "127.0.0.1", "--port", str(api_port))
        if not args.no_simulator:
            supervisor.add(
                "simulator", "simulate", "--bays", str(args.bays), "--speed", str(args.speed)
            )
        supervisor.start_all()
        # The banner's URLs work once it shows: wait (a while) for the API to answer.
        api_deadline = time.monotonic() + API_START_S
        while not stopping and not answers(api_port) and time.monotonic() < api_deadline:
            supervisor.poll()
            time.sleep(0.2)
        say(
            _banner(
                services.as_env(),
                workdir,
                [c.name for c in supervisor.children],
                f"http://127.0.0.1:{api_port}",
                key,
            )
        )
        while not stopping:
            supervisor.poll()
            time.sleep(0.5)
        say("stopping ...")
    finally:
        if supervisor is not None:
            supervisor.stop_all()
        harness.stop()
    say("stopped")
    return 0


def _printer() -> Any:
    def say(text: str) -> None:
        print(f"parkstream dev: {text}", file=sys.stderr, flush=True)

    return say


def _banner(env: dict[str, str], workdir: Any, children: list[str], api: str, key: str) -> str:
    lines = ["running " + ", ".join(children), ""]
    lines += [f"  export {k}={v}" for k, v in sorted(env.items())]
    lines += [
        "",
        f"  dashboard: {api}/dashboard#key={key}",
        f"  API:       {api}/docs",
        f"  API key:   {key}   (admin key of the demo tenant; header X-API-Key)",
        f"  logs:      {workdir}/logs/",
        "  watch:     parkstream events tail --topic space-events.v1   (with the exports above)",
        "  Ctrl-C stops everything.",
    ]
    return "\n".join(lines)
