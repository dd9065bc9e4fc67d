"""``parkstream ingest check``: run captured MQTT messages through the ingest parser.

Input (stdin): NDJSON, one captured message per line,
``{"topic": "...", "payload_b64": "...", "received_at": "<RFC 3339, optional>"}``.
Output (stdout): one JSON line per non-blank input line, in order, flushed per
line: ``{"outcome": "accepted"|"ignored"|"rejected", "reason": str|null,
"events": [<device event JSON>]}``. A bad line is a ``rejected`` output line,
not a failure of the command; a repeated message (same dedup key) within one run
is ``ignored`` with reason ``duplicate``. Exit 0, or 2 when stdin cannot be read
at all or an option is invalid.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from parkstream.decoders.registry import DecoderRegistry
    from parkstream.ingest.dedup import DedupWindow

MAX_LINE_BYTES = 1024 * 1024  # a 64 KiB payload in base64 plus its topic fits easily

CHECK_DESCRIPTION = """\
Run captured ChirpStack MQTT messages through the ingest parser.

stdin:  one JSON object per line:
        {"topic": "...", "payload_b64": "...", "received_at": "<RFC 3339, optional>"}
stdout: one JSON line per non-blank input line, in order:
        {"outcome": "accepted"|"ignored"|"rejected", "reason": ..., "events": [...]}

A bad line gives a "rejected" output line; a message repeated within the run is
"ignored" with reason "duplicate". Exit status 0, or 2 if stdin cannot be read
or an option is invalid.
"""


def register(sub: Any) -> None:
    group: argparse.ArgumentParser = sub.add_parser(
        "ingest", help="ChirpStack ingest tools", description="ChirpStack ingest tools."
    )
    commands = group.add_subparsers(dest="ingest_command", metavar="SUBCOMMAND", required=True)
    check = commands.add_parser(
        "check",
        help="parse captured MQTT messages (NDJSON on stdin) and print each outcome",
        description=CHECK_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "--decoder-override",
        action="append",
        default=[],
        type=_override,
        metavar="DEVEUI=NAME",
        help="decode this device with the named decoder (repeatable)",
    )
    check.set_defaults(handler=run_check)


def _override(text: str) -> tuple[str, str]:
    eui, sep, name = text.partition("=")
    if not sep or not eui.strip() or not name.strip():
        raise argparse.ArgumentTypeError(f"expected DEVEUI=NAME, got {text!r}")
    return eui.strip(), name.strip()


class UnreadableInput(Exception):
    """stdin itself failed (not a bad line): the command cannot go on."""


def run_check(args: argparse.Namespace) -> int:
    from parkstream.decoders.registry import DecoderConfigError, DecoderRegistry
    from parkstream.ingest.dedup import DedupWindow

    try:
        registry = DecoderRegistry.default().with_overrides(dict(args.decoder_override))
    except DecoderConfigError as exc:
        print(f"parkstream ingest check: {exc}", file=sys.stderr)
        return 2
    window = DedupWindow(max_entries=1_000_000, max_age_s=None)
    out = sys.stdout.buffer
    try:
        for line in _lines(sys.stdin.buffer, MAX_LINE_BYTES):
            out.write(orjson.dumps(check_line(line, registry, window)) + b"\n")
            out.flush()
    except UnreadableInput as exc:
        print(f"parkstream ingest check: cannot read stdin: {exc}", file=sys.stderr)
        return 2
    return 0


def _lines(stream: IO[bytes], limit: int) -> Iterator[bytes | None]:
    """Non-blank lines of ``stream``; None stands for a line longer than ``limit``."""
    while True:
        line = _read(stream, limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            while (rest := _read(stream, limit + 1)) and not rest.endswith(b"\n"):
                pass  # skip the rest of the oversized line
            yield None
        elif line.strip():
            yield line


def _read(stream: IO[bytes], size: int) -> bytes:
    try:
        return stream.readline(size)
    except OSError as exc:
        raise UnreadableInput(exc.strerror or str(exc)) from exc


def check_line(
    line: bytes | None, registry: DecoderRegistry, window: DedupWindow
) -> dict[str, Any]:
    """The output object of one input line (see the module docstring)."""
    from parkstream.domain.contract import to_dict
    from parkstream.ingest.parse import parse_message

    if line is None:
        return _rejected("too_large")
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError:
        return _rejected("invalid_line")
    if not isinstance(item, dict):
        return _rejected("invalid_line")
    topic, payload_b64 = item.get("topic"), item.get("payload_b64")
    if not isinstance(topic, str):
        return _rejected("missing_field:topic")
    if not isinstance(payload_b64, str):
        return _rejected("missing_field:payload_b64")
    try:
        payload = base64.b64decode(payload_b64, validate=True)
    except (binascii.Error, ValueError):
        return _rejected("bad_base64")
    recorded_at = _recorded_at(item.get("received_at"))
    if recorded_at is None:
        return _rejected("bad_field:received_at")
    result = parse_message(topic, payload, recorded_at=recorded_at, decoders=registry)
    if result.outcome != "rejected" and result.dedup_key and window.seen(result.dedup_key, 0.0):
        return {"outcome": "ignored", "reason": "duplicate", "events": []}
    return {
        "outcome": result.outcome,
        "reason": result.reason,
        "events": [to_dict(event) for event in result.events],
    }


def _recorded_at(received: object) -> datetime | None:
    """The line's ``received_at`` (RFC 3339), the current time when absent, None when bad."""
    from parkstream.ingest.rfc3339 import parse_rfc3339

    if received is None:
        return datetime.now(UTC)  # the shell may read the clock; the parser never does
    if not isinstance(received, str):
        return None
    try:
        return parse_rfc3339(received).at
    except ValueError:
        return None


def _rejected(reason: str) -> dict[str, Any]:
    return {"outcome": "rejected", "reason": reason, "events": []}
