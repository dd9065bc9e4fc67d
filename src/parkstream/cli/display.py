"""``parkstream display encode``: the downlink frame for a Kuando Busylight, as JSON.

One frame per call: a colour (``--color RRGGBB`` with ``--on``/``--off`` blink times)
or one command (keep-alive interval, status request, ADR, auto uplink, watchdog,
light off). Prints ``{"f_port": 15, "hex": ..., "base64": ...}`` on one line.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from parkstream.domain.kuando import Frame

PROG = "parkstream display encode"


class OneLineErrors(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {text} (see --help)\n")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("display", help="Kuando Busylight display frames")
    actions = p.add_subparsers(
        dest="display_action", metavar="ACTION", required=True, parser_class=OneLineErrors
    )
    encode: argparse.ArgumentParser = actions.add_parser(
        "encode",
        help="print the downlink frame for a colour or a command as JSON",
        description="Print one JSON line {f_port, hex, base64} for a Kuando Busylight IoT "
        "downlink. Give exactly one frame option.",
    )
    frame = encode.add_mutually_exclusive_group(required=True)
    frame.add_argument(
        "--color",
        "--colour",
        dest="color",
        metavar="RRGGBB",
        help="colour frame [R, B, G, on, off], e.g. 00FF00 for green",
    )
    frame.add_argument(
        "--keepalive-minutes",
        type=int,
        metavar="N",
        help="command 04 NN: a status uplink every N minutes (1..255)",
    )
    frame.add_argument(
        "--status-request", action="store_true", help="command 05 00: a status uplink now"
    )
    frame.add_argument("--adr", choices=("on", "off"), help="commands 01 00 / 02 00")
    frame.add_argument(
        "--auto-uplink",
        choices=("on", "off"),
        help="command 06 01 / 06 00: an uplink after every downlink",
    )
    frame.add_argument(
        "--watchdog-uplinks",
        type=int,
        metavar="N",
        help="command 03 NN: rejoin after N uplinks without a downlink (1..255)",
    )
    frame.add_argument(
        "--off-light", action="store_true", help="colour frame 00 00 00 00 00: light off"
    )
    encode.add_argument(
        "--on", type=int, metavar="N", help="with --color: on time in 100 ms steps (default 255)"
    )
    encode.add_argument(
        "--off",
        type=int,
        metavar="N",
        help="with --color: off time in 100 ms steps, 0 = solid (default 0)",
    )
    encode.set_defaults(handler=run_encode)


def run_encode(args: argparse.Namespace) -> int:
    from parkstream.domain import kuando

    try:
        frame = _frame(args)
    except (kuando.KuandoError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    out = {
        "f_port": frame.f_port,
        "hex": frame.hex,
        "base64": base64.b64encode(frame.payload).decode("ascii"),
    }
    print(json.dumps(out))
    return 0


def _frame(args: argparse.Namespace) -> Frame:
    from parkstream.domain import kuando

    if args.color is None and (args.on is not None or args.off is not None):
        raise ValueError("--on and --off apply only to --color")
    if args.color is not None:
        on = kuando.SOLID_ON if args.on is None else args.on
        off = 0 if args.off is None else args.off
        return kuando.colour_frame_hex(args.color, on, off)
    if args.keepalive_minutes is not None:
        return kuando.keepalive_interval(args.keepalive_minutes)
    if args.status_request:
        return kuando.status_request()
    if args.adr is not None:
        return kuando.adr(args.adr == "on")
    if args.auto_uplink is not None:
        return kuando.auto_uplink(args.auto_uplink == "on")
    if args.watchdog_uplinks is not None:
        return kuando.uplink_watchdog(args.watchdog_uplinks)
    return kuando.light_off()
