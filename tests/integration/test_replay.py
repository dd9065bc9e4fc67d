"""Rebuilds into shadow tables: identical to the live tables, differences named, swapped in."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

import pytest

from parkstream.cli import replay as replay_cli
from parkstream.config import Settings
from parkstream.projector.replay import SHADOW, rebuild, swap, verify
from parkstream.topics_admin import apply_topics
from tests.integration.test_projector_support import (
    assert_rollups_exact,
    caught_up,
    connect,
    fresh_database,
    produce,
    running_projector,
    snapshot,
)
from tests.unit.projector.lot import Lot, scripted

pytestmark = pytest.mark.integration


async def test_a_rebuild_equals_the_live_tables_and_swaps_in_under_a_running_projector(
    settings: Settings,
) -> None:
    await apply_topics(settings)
    lot = scripted(bays=10, hours=72)
    records = lot.records()
    async with fresh_database(settings) as db, connect(db) as conn:
        expected = await produce(db, records)
        async with running_projector(db, batch_size=250):
            await caught_up(db, expected)
            live = await snapshot(conn)
            progress = io.StringIO()
            report = await rebuild(db, progress=progress, batch_size=1000)
            assert report.records == len(records)
            assert "100%" in progress.getvalue()
            assert await snapshot(conn, SHADOW) == live
            result = await verify(conn)
            assert result.same
            assert result.positions_match

            tables = await swap(conn)
            assert "actuations" in tables
            assert await snapshot(conn) == live
            assert await conn.fetchval("SELECT to_regnamespace($1)", SHADOW) is None
            # The projector goes on with the swapped-in tables.
            lot.advance(hours=2)
            for bay in list(lot.bays)[:5]:
                lot.reading(bay, not lot.bays[bay].occupied)
                lot.txack(bay)
            more = await produce(db, lot.records()[len(records) :])
            await caught_up(
                db, {p: max(more.get(p, 0), expected.get(p, 0)) for p in {*more, *expected}}
            )
            await assert_rollups_exact(conn)
        assert await conn.fetchval("SELECT count(*) FROM actuations_default") == 0
        await rebuild(db, progress=io.StringIO())
        assert (await verify(conn)).same


async def test_verify_names_the_tables_and_keys_that_differ(settings: Settings) -> None:
    await apply_topics(settings)
    lot = Lot()
    for n in range(3):
        lot.add_bay(f"bay-{n}")
    lot.advance(minutes=30).reading("bay-1", True)
    async with fresh_database(settings) as db, connect(db) as conn:
        expected = await produce(db, lot.records())
        async with running_projector(db):
            await caught_up(db, expected)
        await conn.execute("UPDATE spaces SET name = 'tampered' WHERE space_id = 'bay-2'")
        await conn.execute("DELETE FROM utilization_hourly WHERE space_id = 'bay-1'")
        await rebuild(db, progress=io.StringIO())
        result = await verify(conn)
        assert not result.same
        differing = {t.table: t.differing_keys for t in result.tables if not t.same}
        assert differing["spaces"] == [("t-acme", "bay-2")]
        assert [k[:2] for k in differing["utilization_hourly"]] == [("t-acme", "bay-1")]
        assert set(differing) == {"spaces", "utilization_hourly"}


async def test_the_replay_command_rebuilds_one_projection_verifies_and_swaps(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await apply_topics(settings)
    lot = scripted(bays=4, hours=24)
    async with fresh_database(settings) as db, connect(db) as conn:
        expected = await produce(db, lot.records())
        async with running_projector(db):
            await caught_up(db, expected)
        before = await snapshot(conn)
        await conn.execute("UPDATE space_states SET summary = 'stale' WHERE space_id = 'bay-001'")
        for name, value in {
            "PARKSTREAM_PROFILE": "test",
            "PARKSTREAM_KAFKA_BOOTSTRAP": db.kafka_bootstrap,
            "PARKSTREAM_TOPIC_PREFIX": db.topic_prefix,
            "PARKSTREAM_DATABASE_URL": db.database_url.get_secret_value(),
        }.items():
            monkeypatch.setenv(name, value)

        code = await asyncio.to_thread(replay_cli.main, ["--projection", "activity", "--verify"])
        out = capsys.readouterr()
        assert code == 1
        assert "space_states" in out.out
        assert "DIFFERENT" in out.out
        assert "('t-globex', 'bay-001')" in out.out
        assert "events/s" in out.err  # the progress bar

        code = await asyncio.to_thread(replay_cli.main, ["--projection", "activity", "--swap"])
        out = capsys.readouterr()
        assert code == 0, out
        assert (
            "swapped in: actuations, space_states, utilization_hourly, utilization_daily" in out.out
        )
        assert await snapshot(conn) == before


async def test_a_rebuild_from_a_time_starts_at_the_records_written_since(
    settings: Settings,
) -> None:
    await apply_topics(settings)
    lot = scripted(bays=2, hours=6)
    async with fresh_database(settings) as db:
        await produce(db, lot.records())
        later = await rebuild(
            db, since=datetime.now(UTC) + timedelta(hours=1), progress=io.StringIO()
        )
        assert later.records == 0
        everything = await rebuild(
            db, since=datetime.now(UTC) - timedelta(hours=1), progress=io.StringIO()
        )
        assert everything.records == len(lot.events)
