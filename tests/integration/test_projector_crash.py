"""A projector killed mid-stream resumes where its last transaction ended: same tables."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parkstream.config import Settings
from parkstream.projector.records import Incoming
from parkstream.projector.replay import rebuild, verify
from parkstream.projector.store import Rejection, Store
from parkstream.topics_admin import apply_topics
from tests.integration.test_projector_support import (
    caught_up,
    connect,
    fresh_database,
    positions,
    produce,
    snapshot,
)
from tests.unit.projector.lot import scripted

pytestmark = pytest.mark.integration


def start_projector(settings: Settings, log: Path, batch: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKSTREAM_")}
    env.update(
        PARKSTREAM_PROFILE="test",
        PARKSTREAM_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        PARKSTREAM_TOPIC_PREFIX=settings.topic_prefix,
        PARKSTREAM_DATABASE_URL=settings.database_url.get_secret_value(),
        PARKSTREAM_METRICS_PORT="0",
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "parkstream.projector", "--batch-size", str(batch)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def applied(found: dict[str, dict[int, int]]) -> int:
    """Records every projection has applied (offsets are per partition, from 0)."""
    return min(sum(max(0, o) for o in by_partition.values()) for by_partition in found.values())


async def test_sigkill_mid_stream_then_restart_yields_identical_tables(
    settings: Settings, tmp_path: Path
) -> None:
    await apply_topics(settings)
    records = scripted(bays=40, hours=24 * 4).records()
    total = len(records)
    log = tmp_path / "projector.log"
    async with fresh_database(settings) as db:
        expected = await produce(db, records)
        projector = start_projector(db, log, batch=50)
        try:
            async with connect(db) as conn:
                deadline = time.monotonic() + 90
                while applied(await positions(conn, db)) < total // 4:
                    assert projector.poll() is None, log.read_text()[-3000:]
                    assert time.monotonic() < deadline, log.read_text()[-3000:]
                    await asyncio.sleep(0.02)
                projector.send_signal(signal.SIGKILL)
                projector.wait(10)
                at_kill = applied(await positions(conn, db))
                assert 0 < at_kill < total, "killed in the middle of the stream"
                # Every stored offset is the end of a committed batch: no half batch shows.
                half = await conn.fetchval(
                    "SELECT count(*) FROM actuations a JOIN projector_offsets o "
                    "ON o.projection = 'activity' AND o.partition = a.src_partition "
                    "WHERE a.src_offset >= o.next_offset"
                )
                assert half == 0
            projector = start_projector(db, log, batch=50)
            await caught_up(db, expected, within=120)
        finally:
            projector.send_signal(signal.SIGTERM)
            try:
                assert projector.wait(30) == 0, log.read_text()[-3000:]
            finally:
                if projector.poll() is None:
                    projector.kill()
        report = await rebuild(db, progress=io.StringIO())
        assert report.records == total
        async with connect(db) as conn:
            result = await verify(conn)
            assert result.positions_match
            assert [t.table for t in result.tables if not t.same] == []


async def test_a_failure_before_commit_leaves_no_row_and_no_offset(settings: Settings) -> None:
    records = scripted(bays=3, hours=6).records()
    batch = [Incoming(0, n, key, value) for n, (key, value) in enumerate(records)]
    batch.append(Incoming(0, len(batch), b"x", b"{broken"))

    async def crash(rejected: list[Rejection]) -> None:
        assert rejected  # the rows of the batch are written by now, not yet committed
        raise RuntimeError("the process dies here")

    async with fresh_database(settings) as db, connect(db) as conn:
        store = Store(conn, topic="space-events")
        await store.setup()
        empty = await snapshot(conn)
        with pytest.raises(RuntimeError):
            await store.apply(batch, on_rejected=crash)
        assert await snapshot(conn) == empty
        assert await conn.fetchval("SELECT count(*) FROM projector_offsets") == 0
        done = await store.apply(batch)
        assert done.positions == {0: len(batch)}
        assert [r.error.reason for r in done.rejected] == ["invalid_json"]
        assert await snapshot(conn) != empty
