"""A topic to and from NDJSON: backups, moving between clusters, feeding tests.

Each line is one record: ``{"key": "<key>", "record": <the record's JSON, as written>}``
(``"value_b64"`` instead of ``"record"`` for a value that is not JSON, ``"key_b64"`` for a
key that is not UTF-8). Export reads every partition from the start up to the fetch
high-watermarks seen when it starts, partition after partition, so each key's records
stay in their order. Import produces the lines in file order with their keys (so the
same partitions as before with the same partition count); each record is checked with the
contract's decoder first, and one that fails goes to the dead-letter topic (stage
``import``) instead. Every record produced carries its CloudEvents headers (binary mode,
:mod:`parkstream.domain.cloudevents`).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from parkstream.config import Settings
from parkstream.domain.cloudevents import headers
from parkstream.domain.contract import ContractError, decode, encode
from parkstream.domain.deadletter import dead_letter
from parkstream.domain.envelope import Source


class NdjsonError(ValueError):
    """A line of an NDJSON file that is not a record line."""


def to_line(key: bytes | None, value: bytes | None) -> bytes:
    """One NDJSON line (with its newline) for a record."""
    line: dict[str, Any] = {}
    if key is not None:
        try:
            line["key"] = key.decode("utf-8")
        except UnicodeDecodeError:
            line["key_b64"] = base64.b64encode(key).decode("ascii")
    raw = value or b""
    try:
        orjson.loads(raw)
        line["record"] = orjson.Fragment(raw)
    except orjson.JSONDecodeError:
        line["value_b64"] = base64.b64encode(raw).decode("ascii")
    return orjson.dumps(line) + b"\n"


def from_line(line: bytes) -> tuple[bytes | None, bytes]:
    """(key, value) of an NDJSON line written by :func:`to_line`."""
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise NdjsonError(f"not JSON: {exc}") from exc
    if not isinstance(item, dict):
        raise NdjsonError("a line must be a JSON object")
    key: bytes | None = None
    if isinstance(item.get("key"), str):
        key = item["key"].encode()
    elif isinstance(item.get("key_b64"), str):
        key = base64.b64decode(item["key_b64"])
    if "record" in item:
        return key, orjson.dumps(item["record"])
    if isinstance(item.get("value_b64"), str):
        return key, base64.b64decode(item["value_b64"])
    raise NdjsonError("a line needs 'record' or 'value_b64'")


def read_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(stream, 1):
        if line.strip():
            yield number, line


@dataclass
class ExportReport:
    records: int = 0
    seconds: float = 0.0


async def export_topic(settings: Settings, topic: str, out: IO[bytes]) -> ExportReport:
    """Write every record of ``topic`` (a catalogue name) to ``out`` as NDJSON."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from parkstream.kafka_profile import aiokafka_consumer_kwargs
    from parkstream.projector.replay import _partitions

    full = settings.topic(topic)
    report = ExportReport()
    started = time.monotonic()
    consumer = AIOKafkaConsumer(
        **aiokafka_consumer_kwargs(
            settings, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
        )
    )
    await consumer.start()
    try:
        for partition in await _partitions(consumer, full):
            tp = TopicPartition(full, partition)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            target: int | None = None
            while True:
                high = consumer.highwater(tp)
                if target is None and high is not None:
                    target = high
                if target is not None and await consumer.position(tp) >= target:
                    break
                batch = await consumer.getmany(tp, timeout_ms=200, max_records=10_000)
                for message in batch.get(tp, []):
                    out.write(to_line(message.key, message.value))
                    report.records += 1
    finally:
        await consumer.stop()
    out.flush()
    report.seconds = time.monotonic() - started
    return report


@dataclass
class ImportReport:
    records: int = 0
    rejected: int = 0
    seconds: float = 0.0


async def import_topic(
    settings: Settings, topic: str, lines: Iterable[tuple[int, bytes]], source_name: str
) -> ImportReport:
    """Produce the records of NDJSON ``lines`` to ``topic`` (a catalogue name)."""
    from aiokafka import AIOKafkaProducer

    from parkstream.kafka_profile import aiokafka_producer_kwargs

    full = settings.topic(topic)
    deadletter = settings.topic("deadletter.v1")
    report = ImportReport()
    started = time.monotonic()
    producer = AIOKafkaProducer(**aiokafka_producer_kwargs(settings, linger_ms=5))
    await producer.start()
    try:
        pending = []
        for number, line in lines:
            try:
                key, value = from_line(line)
                record = decode(value)
            except (NdjsonError, ContractError, ValueError) as exc:
                reason = "invalid_line" if isinstance(exc, NdjsonError) else "invalid_record"
                letter = dead_letter(
                    stage="import",
                    reason=reason,
                    detail=f"{source_name}:{number}: {exc}",
                    raw=line.rstrip(b"\n"),
                    received_at=datetime.now(UTC),
                    source=Source(kind="cli", topic=full),
                    origin_topic=full,
                )
                pending.append(
                    await producer.send(
                        deadletter,
                        encode(letter),
                        key=b"import",
                        headers=headers(letter, "deadletter.v1"),
                    )
                )
                report.rejected += 1
                continue
            pending.append(
                await producer.send(full, value, key=key, headers=headers(record, topic))
            )
            report.records += 1
            if len(pending) >= 10_000:
                await _settle(pending)
        await _settle(pending)
    finally:
        await producer.stop()
    report.seconds = time.monotonic() - started
    return report


async def _settle(pending: list[Any]) -> None:
    import asyncio

    await asyncio.gather(*pending)
    pending.clear()
