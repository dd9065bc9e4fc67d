"""``parkstream services``: the Kafka-protocol broker, PostgreSQL and MQTT for development.

``parkstream services up`` starts whatever ``PARKSTREAM_KAFKA_BOOTSTRAP``,
``PARKSTREAM_DATABASE_URL`` and ``PARKSTREAM_MQTT_URL`` do not already name
(see :mod:`parkstream.harness`), prints the three as ``export`` lines on stdout
(``eval "$(parkstream services up &)"``-friendly; details go to stderr), then
runs until Ctrl-C or SIGTERM and stops everything it started (exit 0).

``parkstream services status`` checks that the three configured services answer.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from types import FrameType
from typing import Any, Literal

# Kept here (not imported from the harness) so `parkstream --help` stays fast.
_SERVICES: tuple[Literal["kafka", "postgres", "mqtt"], ...] = ("kafka", "postgres", "mqtt")
_POSTGRES_MODES = ("auto", "server", "embedded", "pgserver")
_MQTT_MODES = ("auto", "mosquitto", "amqtt")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "services",
        help="run the Kafka-protocol broker, PostgreSQL and MQTT for development",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="services_action", metavar="ACTION", required=True)

    up = actions.add_parser(
        "up",
        help="start what is not configured, print export lines, run until Ctrl-C/SIGTERM",
    )
    up.add_argument(
        "--only",
        action="append",
        choices=_SERVICES,
        metavar="SERVICE",
        help="provide only this service (repeatable; default: all three)",
    )
    up.add_argument(
        "--postgres",
        choices=_POSTGRES_MODES,
        default=None,
        help="how to provide PostgreSQL (default: $PARKSTREAM_HARNESS_POSTGRES or auto)",
    )
    up.add_argument(
        "--mqtt",
        choices=_MQTT_MODES,
        default=None,
        help="which MQTT broker to run (default: $PARKSTREAM_HARNESS_MQTT or auto)",
    )
    up.set_defaults(handler=run_up)

    status = actions.add_parser("status", help="check that the configured services answer")
    status.add_argument("--timeout", type=float, default=2.0, help="seconds per check")
    status.set_defaults(handler=run_status)


def run_up(args: argparse.Namespace) -> int:
    from parkstream.harness import HarnessError, ServicesHarness

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, on_signal) for sig in handled}
    try:
        harness = ServicesHarness(
            os.environ,
            args.only or _SERVICES,
            postgres=args.postgres,
            mqtt=args.mqtt,
        )
        try:
            services = harness.start()
        except HarnessError as exc:
            print(f"parkstream services: {exc}", file=sys.stderr)
            return 1
        try:
            for name, value in services.as_env().items():
                print(f"export {name}={shlex.quote(value)}")
            sys.stdout.flush()
            for service in services.started:
                print(
                    f"parkstream services: {service}: {services.descriptions[service]}",
                    file=sys.stderr,
                )
            print(
                "parkstream services: running; Ctrl-C or SIGTERM stops them",
                file=sys.stderr,
                flush=True,
            )
            while not stop.wait(0.5):
                exited = harness.exited()
                if exited:
                    print(
                        f"parkstream services: exited unexpectedly: {', '.join(exited)}",
                        file=sys.stderr,
                    )
                    return 1
        finally:
            harness.stop()
        print("parkstream services: stopped", file=sys.stderr)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_status(args: argparse.Namespace) -> int:
    from parkstream.harness import ENV_VARS, check_services
    from parkstream.harness.process import redact_url

    answers = check_services(os.environ, timeout=args.timeout)
    defaults = {
        "kafka": "127.0.0.1:9092",
        "postgres": "postgresql://127.0.0.1:5432/parkstream",
        "mqtt": "mqtt://127.0.0.1:1883",
    }
    for service, ok in answers.items():
        url = os.environ.get(ENV_VARS[service]) or defaults[service]
        print(f"{service:<9} {'ok' if ok else 'unreachable':<12} {redact_url(url)}")
    return 0 if all(answers.values()) else 1
