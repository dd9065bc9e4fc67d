"""The pure-Python MQTT broker (amqtt) the harness runs when Mosquitto is missing.

Run as ``python -m parkstream.harness.amqtt_broker PORT``; it listens on
127.0.0.1:PORT until SIGTERM/SIGINT. Sessions live in the broker's memory, so a
client with ``clean_session=False`` gets the QoS-1 messages it missed while
disconnected as long as this broker runs.

amqtt keeps such messages only for clients that are *not* marked anonymous,
and its ``AnonymousAuthPlugin`` marks every client anonymous when anonymous
access is allowed. :class:`AcceptAllAuthPlugin` admits every client (with or
without a username) without that mark.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin

from parkstream.harness.process import LOOPBACK


class AcceptAllAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt is untyped here
    """Admit every client, keeping persistent sessions' messages (test broker only)."""

    @dataclass
    class Config:
        """No options."""

    async def authenticate(self, *, session: Any) -> bool:
        return True


def broker_config(port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{LOOPBACK}:{port}"}},
        "plugins": {f"{__name__}.AcceptAllAuthPlugin": {}},
    }


async def serve(port: int) -> None:
    broker = Broker(broker_config(port))
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"amqtt broker listening on {LOOPBACK}:{port}", flush=True)
    await stop.wait()
    await broker.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m parkstream.harness.amqtt_broker PORT", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(int(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
