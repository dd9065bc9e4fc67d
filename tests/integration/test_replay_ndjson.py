"""``parkstream events export`` / ``import``: a topic to NDJSON and back, byte for byte."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from parkstream.cli import events as events_cli
from parkstream.config import Settings
from parkstream.domain.cloudevents import attributes, check
from parkstream.domain.contract import decode
from parkstream.projector.replay import rebuild, table_hash
from parkstream.topics_admin import apply_topics
from tests.integration.test_projector_support import (
    ALL_TABLES,
    caught_up,
    connect,
    fresh_database,
    produce,
    running_projector,
    snapshot,
)
from tests.support.kafka import read_all, read_records
from tests.unit.projector.lot import scripted

pytestmark = pytest.mark.integration


def use(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    for name, value in {
        "PARKSTREAM_PROFILE": "test",
        "PARKSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "PARKSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "PARKSTREAM_DATABASE_URL": settings.database_url.get_secret_value(),
    }.items():
        monkeypatch.setenv(name, value)


def by_partition(records: list[object]) -> dict[int, list[tuple[bytes, bytes]]]:
    found: dict[int, list[tuple[bytes, bytes]]] = {}
    for r in records:
        found.setdefault(r.partition, []).append((r.key, r.value))  # type: ignore[attr-defined]
    return found


async def test_export_then_import_into_another_cluster_prefix_is_the_same_stream(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    await apply_topics(settings)
    lot = scripted(bays=6, hours=24)
    records = lot.records()
    await produce(settings, records)
    export = tmp_path / "space-events.ndjson"
    use(monkeypatch, settings)
    assert await asyncio.to_thread(events_cli.main, ["export", "-o", str(export)]) == 0
    lines = export.read_bytes().splitlines()
    assert len(lines) == len(records)

    target = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}-b"})
    await apply_topics(target)
    with export.open("ab") as out:
        out.write(b'{"key": "bay-x", "record": {"type": "space.exploded"}}\n')
    use(monkeypatch, target)
    assert await asyncio.to_thread(events_cli.main, ["import", "-i", str(export)]) == 1

    original = await read_records(settings, settings.topic("space-events.v1"), len(records))
    copied = await read_all(target, target.topic("space-events.v1"))
    assert by_partition(copied) == by_partition(original)  # same keys, bytes and order
    for record in copied:  # with CloudEvents headers (binary mode)
        assert check(attributes(record.headers), decode(record.value)) == []
    (letter,) = await read_records(target, target.topic("deadletter.v1"), 1)
    assert decode(letter.value).data.stage == "import"  # type: ignore[attr-defined]
    assert check(attributes(letter.headers), decode(letter.value)) == []

    # The imported stream rebuilds the same read model as the original one.
    async with fresh_database(settings) as a, fresh_database(target) as b:
        ends = {r.partition: r.offset + 1 for r in original}
        async with running_projector(a):
            await caught_up(a, ends)
        await rebuild(b, progress=io.StringIO())
        async with connect(a) as conn_a, connect(b) as conn_b:
            shadow = {t: await table_hash(conn_b, "parkstream_shadow", t) for t in ALL_TABLES}
            assert await snapshot(conn_a) == shadow
