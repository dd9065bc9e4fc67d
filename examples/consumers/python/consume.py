"""Follow the live state of every bay from parkstream's space-events topic.

A consumer another team could write: it reads ``<prefix>.space-events.v1`` from the
beginning with aiokafka, validates every record against the JSON Schema of its type and
version (chosen by the record's ``ce_dataschema`` header, or else its ``type`` and
``version``) with jsonschema, checks its CloudEvents headers, and folds
``space.state_changed`` records into the state of each bay. It needs nothing of
parkstream but the ``schemas/`` directory.

Output, one JSON object a line on stdout:

- ``{"space_id": ..., "state": ..., "from_state": ..., "at": ..., "event_id": ...}`` for
  every change of a bay;
- with ``--idle-exit SECONDS``, after that long without a record (or on Ctrl-C), a last line
  ``{"states": {space_id: state}, "records": n, "invalid": n, "duplicates": n,
  "headers_missing": n, "headers_wrong": n}`` and exit (1 if a record was invalid).

Problems (a record that does not validate, wrong or missing headers) go to stderr.

    python consume.py --bootstrap localhost:9092 --prefix parkstream --idle-exit 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from jsonschema import Draft202012Validator

TOPIC = "space-events.v1"
DEFAULT_SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
REQUIRED_HEADERS = (
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_dataschema",
    "ce_schemaversion",
    "content-type",
)


class Schemas:
    """Every JSON Schema of ``schemas/``: the current ones, and published older versions."""

    def __init__(self, root: Path) -> None:
        index = json.loads((root / "index.json").read_text(encoding="utf-8"))
        paths: dict[tuple[str, int], str] = {}
        for types in index["topics"].values():
            for type_name, entry in types.items():
                # Older versions are read from their latest published revision ...
                for pub in sorted(entry["published"], key=lambda p: p["revision"]):
                    paths[(type_name, pub["version"])] = pub["path"]
                # ... the current version from its current file.
                if entry["current"] is not None:
                    paths[(type_name, entry["current"]["version"])] = entry["current"]["path"]
        self.by_type: dict[tuple[str, int], Draft202012Validator] = {}
        self.by_id: dict[str, tuple[str, int]] = {}
        for key, path in paths.items():
            schema = json.loads((root / path).read_text(encoding="utf-8"))
            self.by_type[key] = Draft202012Validator(schema)
            self.by_id[schema["$id"]] = key

    def validator(
        self, record: dict[str, Any], dataschema: str | None
    ) -> tuple[Draft202012Validator | None, str | None]:
        """The validator of ``record``, or None and why there is none."""
        version = record.get("version")
        if not isinstance(version, int):
            return None, f"version {version!r} is not an integer"
        key = (str(record.get("type")), version)
        if dataschema is not None:
            by_header = self.by_id.get(dataschema)
            if by_header is None:
                return None, f"unknown ce_dataschema {dataschema}"
            if by_header != key:
                return None, f"ce_dataschema {dataschema} is not the schema of {key}"
        found = self.by_type.get(key)
        if found is None:
            return None, f"no schema for type {key[0]!r} version {key[1]!r}"
        return found, None


def header_problems(headers: dict[str, str], record: dict[str, Any]) -> list[str]:
    """What in the CloudEvents headers disagrees with the record."""
    problems = [f"{name} missing" for name in REQUIRED_HEADERS if name not in headers]
    expected = {
        "ce_specversion": "1.0",
        "ce_id": record.get("event_id"),
        "ce_type": f"dev.parkstream.{record.get('type')}.v{record.get('version')}",
        "ce_schemaversion": str(record.get("version")),
        "content-type": "application/json",
    }
    tenant = record.get("tenant_id")
    expected["ce_source"] = f"urn:parkstream:tenant:{tenant}" if tenant else "urn:parkstream:ingest"
    subject = record.get("space_id") or record.get("dev_eui")
    if subject:
        expected["ce_subject"] = subject
    for name, want in expected.items():
        if name in headers and headers[name] != want:
            problems.append(f"{name} is {headers[name]!r}, expected {want!r}")
    if "ce_time" in headers and _instant(headers["ce_time"]) != _instant(record["occurred_at"]):
        problems.append(f"ce_time {headers['ce_time']} is not occurred_at {record['occurred_at']}")
    return problems


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def emit(line: dict[str, Any], stream: Any = sys.stdout) -> None:
    stream.write(json.dumps(line, sort_keys=True) + "\n")
    stream.flush()


async def consume(args: argparse.Namespace) -> int:
    schemas = Schemas(args.schemas)
    topic = f"{args.prefix}.{TOPIC}"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=args.group is not None,
    )
    states: dict[str, str] = {}
    seen: set[str] = set()
    counts = dict.fromkeys(
        ("records", "invalid", "duplicates", "headers_missing", "headers_wrong"), 0
    )
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while args.idle_exit is None or loop.time() - last < args.idle_exit:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for message in records:
                    last = loop.time()
                    handle(message, schemas, states, seen, counts)
    finally:  # idle, or Ctrl-C: the summary either way
        await consumer.stop()
        emit({"states": dict(sorted(states.items())), **counts})
    return 1 if counts["invalid"] else 0


def handle(
    message: Any,
    schemas: Schemas,
    states: dict[str, str],
    seen: set[str],
    counts: dict[str, int],
) -> None:
    counts["records"] += 1
    where = f"{message.topic}[{message.partition}]@{message.offset}"
    headers = {key: value.decode("utf-8", "replace") for key, value in message.headers or ()}
    try:
        record = json.loads(message.value)
    except ValueError as exc:
        counts["invalid"] += 1
        emit({"problem": "not JSON", "at": where, "detail": str(exc)}, sys.stderr)
        return
    validator, why = schemas.validator(record, headers.get("ce_dataschema"))
    errors = (
        [why]
        if validator is None
        else [f"{e.json_path}: {e.message}" for e in validator.iter_errors(record)]
    )
    if errors:
        counts["invalid"] += 1
        emit({"problem": "invalid record", "at": where, "errors": errors[:5]}, sys.stderr)
        return
    if not any(key.startswith("ce_") for key in headers):
        counts["headers_missing"] += 1
    else:
        problems = header_problems(headers, record)
        if problems:
            counts["headers_wrong"] += 1
            emit({"problem": "CloudEvents headers", "at": where, "errors": problems}, sys.stderr)
    if record["event_id"] in seen:  # delivery is at least once: a repeat has the same id
        counts["duplicates"] += 1
        return
    seen.add(record["event_id"])
    if record["type"] == "space.state_changed":
        data = record["data"]
        states[record["space_id"]] = data["to_state"]
        emit(
            {
                "space_id": record["space_id"],
                "state": data["to_state"],
                "from_state": data["from_state"],
                "at": record["occurred_at"],
                "event_id": record["event_id"],
            }
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get(
            "KAFKA_BOOTSTRAP", os.environ.get("PARKSTREAM_KAFKA_BOOTSTRAP", "localhost:9092")
        ),
        help="bootstrap servers, host:port[,host:port] "
        "(env KAFKA_BOOTSTRAP, else PARKSTREAM_KAFKA_BOOTSTRAP)",
    )
    parser.add_argument(
        "--prefix",
        default=os.environ.get("PARKSTREAM_TOPIC_PREFIX", "parkstream"),
        help="the deployment's topic prefix (env PARKSTREAM_TOPIC_PREFIX, default parkstream)",
    )
    parser.add_argument(
        "--schemas",
        type=Path,
        default=Path(os.environ.get("PARKSTREAM_SCHEMAS", DEFAULT_SCHEMAS)),
        help="parkstream's schemas/ directory (env PARKSTREAM_SCHEMAS)",
    )
    parser.add_argument(
        "--group",
        default=None,
        help="consumer group to commit offsets in (default: none, always from the beginning)",
    )
    parser.add_argument(
        "--idle-exit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="print the summary and exit after SECONDS without a record",
    )
    args = parser.parse_args(argv)
    try:
        return asyncio.run(consume(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
