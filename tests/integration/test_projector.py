"""The projector against the real broker and PostgreSQL: idempotent batches, exact rollups."""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from parkstream.cli import migrate as migrate_cli
from parkstream.config import Settings
from parkstream.domain.cloudevents import attributes, check
from parkstream.domain.contract import decode, encode
from parkstream.domain.states import SpaceState
from parkstream.projector import DEVICE_EVENTS, NOTIFY_CHANNEL, PROJECTIONS
from parkstream.projector.migrate import MigrationError, load_migrations, migrate
from parkstream.projector.partitions import months_ahead, partition_name
from parkstream.projector.replay import rebuild, verify
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
from tests.support.kafka import read_records, wait_for
from tests.unit.projector.lot import Lot, scripted

pytestmark = pytest.mark.integration


async def test_a_stream_applied_twice_changes_nothing(settings: Settings) -> None:
    await apply_topics(settings)
    lot = scripted(bays=8, hours=48)
    records = lot.records()
    async with fresh_database(settings) as db:
        expected = await produce(db, records)
        async with running_projector(db, batch_size=300) as projector:
            await caught_up(db, expected)
            async with connect(db) as conn:
                once = await snapshot(conn)
                assert once["actuations"][1] > 500
                assert once["utilization_hourly"][1] > 0
                await assert_rollups_exact(conn)
                # The same events again (as a worker redelivers them), and a part a third time.
                again = await produce(db, records + records[:400])
                await caught_up(db, again)
                assert await snapshot(conn) == once
                await wait_for(lambda: projector.lag_total() == 0)


async def test_the_tables_say_what_the_bays_did(settings: Settings) -> None:
    await apply_topics(settings)
    lot = Lot(now=datetime(2026, 3, 2, 8, tzinfo=UTC))
    lot.add_bay("bay-1", tenant="t-a", site="north", time_zone="Europe/Amsterdam")
    lot.add_bay("bay-2", tenant="t-b", site="north", time_zone="Europe/Amsterdam")
    lot.advance(minutes=30).reading("bay-1", True)
    lot.txack("bay-1")
    lot.reserve("bay-2", "r-1", timedelta(minutes=10), timedelta(hours=1))
    lot.reserve("bay-2", "r-2", timedelta(minutes=20), timedelta(hours=1))  # overlap
    lot.advance(minutes=20).tick("bay-2")
    lot.override("bay-1", SpaceState.MAINTENANCE, hours=2)
    lot.orphan("ffff000000000009")
    async with fresh_database(settings) as db:
        expected = await produce(db, lot.records())
        async with running_projector(db):
            await caught_up(db, expected)
        async with connect(db) as conn:
            a = await conn.fetchrow(
                "SELECT s.*, st.state, st.layer, st.explanation FROM spaces s "
                "JOIN space_states st USING (tenant_id, space_id) WHERE tenant_id = $1",
                "t-a",
            )
            assert a["override_state"] == "MAINTENANCE"
            assert a["state"] == "MAINTENANCE"
            assert a["layer"] == "override"
            assert a["explanation"]["summary"]
            b = await conn.fetchrow("SELECT * FROM space_states WHERE tenant_id = 't-b'")
            assert b["state"] == "RESERVED"
            assert b["confirmed_evidence"] is None or b["desired_command_id"]
            r = await conn.fetch(
                "SELECT reservation_id, status FROM reservations WHERE tenant_id = 't-b'"
            )
            assert [(x["reservation_id"], x["status"]) for x in r] == [("r-1", "started")]
            rejected = await conn.fetchrow("SELECT * FROM reservation_rejections")
            assert rejected["reason"] == "overlap"
            # Tenants see only their rows; the site's day exists per tenant.
            days = await conn.fetch("SELECT tenant_id, site_id FROM utilization_daily")
            assert {(d["tenant_id"], d["site_id"]) for d in days} == {
                ("t-a", "north"),
                ("t-b", "north"),
            }
            orphan = await conn.fetchrow("SELECT * FROM orphan_devices")
            assert orphan["dev_eui"] == "ffff000000000009"
            confirmed = await conn.fetchval(
                "SELECT count(*) FROM actuations WHERE type = 'display.change_requested' "
                "AND confirmed_evidence = 'txack'"
            )
            assert confirmed >= 2


async def test_utilisation_across_daylight_saving_changes(settings: Settings) -> None:
    """Amsterdam: 2026-03-29 has 23 hours, 2026-10-25 has 25."""
    await apply_topics(settings)
    bays = ("bay-1", "bay-2", "bay-3")
    records: list[tuple[bytes, bytes]] = []
    for start, end in (
        (datetime(2026, 3, 27, 12, tzinfo=UTC), datetime(2026, 3, 31, 12, tzinfo=UTC)),
        (datetime(2026, 10, 23, 12, tzinfo=UTC), datetime(2026, 10, 27, 12, tzinfo=UTC)),
    ):
        lot = Lot(now=start)
        for n, bay in enumerate(bays):
            lot.add_bay(
                bay,
                tenant=f"t-{start.month}",
                site="ams",
                time_zone="Europe/Amsterdam",
                sensor=f"a1{start.month:02d}00000000000{n}",
            )
        occupied = False
        while lot.now < end:
            # A reading every 40 minutes keeps the sensors trusted (1 h heartbeat).
            lot.advance(minutes=40)
            occupied = not occupied
            for bay in bays:
                lot.reading(bay, occupied if bay != "bay-3" else not occupied)
                lot.txack(bay)
        records += lot.records()
    async with fresh_database(settings) as db:
        expected = await produce(db, records)
        async with running_projector(db, batch_size=97):
            await caught_up(db, expected)
        async with connect(db) as conn:
            await assert_rollups_exact(conn)
            total = (
                "SELECT free_s + occupied_s + reserved_s + unknown_s + unavailable_s "
                "FROM utilization_daily WHERE tenant_id = $1 AND site_id = 'ams' AND day = $2"
            )
            for tenant, day, hours in (
                ("t-3", datetime(2026, 3, 28).date(), 24),
                ("t-3", datetime(2026, 3, 29).date(), 23),
                ("t-3", datetime(2026, 3, 30).date(), 24),
                ("t-10", datetime(2026, 10, 24).date(), 24),
                ("t-10", datetime(2026, 10, 25).date(), 25),
                ("t-10", datetime(2026, 10, 26).date(), 24),
            ):
                assert await conn.fetchval(total, tenant, day) == hours * 3600 * len(bays), day
            hours_of_day = await conn.fetchval(
                "SELECT count(DISTINCT hour) FROM utilization_hourly WHERE tenant_id = 't-10' "
                "AND hour >= '2026-10-24 22:00+00' AND hour < '2026-10-25 23:00+00'"
            )
            assert hours_of_day == 25  # the local day 25 October, in UTC hours


async def test_a_backfilled_month_gets_its_own_partition_and_nonsense_is_dead_lettered(
    settings: Settings,
) -> None:
    await apply_topics(settings)
    lot = Lot(now=datetime(2024, 5, 14, 9, tzinfo=UTC))
    lot.add_bay("bay-1")
    lot.advance(hours=3).reading("bay-1", True)
    backfill = lot.records()
    bad_past = lot.events[-1].model_copy(
        update={"event_id": "too-old", "occurred_at": datetime(1999, 12, 31, tzinfo=UTC)}
    )
    bad_future = lot.events[-1].model_copy(
        update={"event_id": "too-new", "occurred_at": lot.now + timedelta(days=400)}
    )
    odd = [(b"bay-1", encode(bad_past)), (b"bay-1", encode(bad_future)), (b"bay-1", b"{oops")]
    async with fresh_database(settings) as db:
        async with connect(db) as conn:
            before = {r["relname"] for r in await conn.fetch("SELECT relname FROM pg_class")}
        assert partition_name(datetime(2024, 5, 1).date()) not in before
        expected = await produce(db, backfill + odd)
        async with running_projector(db):
            await caught_up(db, expected)
        async with connect(db) as conn:
            where = await conn.fetch(
                "SELECT tableoid::regclass::text AS part, count(*) FROM actuations GROUP BY 1"
            )
            assert {r["part"] for r in where} == {"actuations_p2024_05"}
            assert await conn.fetchval("SELECT count(*) FROM actuations_default") == 0
            ahead = {partition_name(m) for m in months_ahead(datetime.now(UTC).date(), 3)}
            present = {r["relname"] for r in await conn.fetch("SELECT relname FROM pg_class")}
            assert ahead <= present
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM actuations WHERE event_id IN ('too-old', 'too-new')"
                )
                == 0
            )
        found = await read_records(db, db.topic("deadletter.v1"), 3)
        letters = [decode(r.value) for r in found]
        reasons = sorted(letter.data.reason for letter in letters)  # type: ignore[attr-defined]
        assert reasons == ["invalid_json", "timestamp_out_of_range", "timestamp_out_of_range"]
        assert {letter.data.stage for letter in letters} == {"projector"}  # type: ignore[attr-defined]
        for record, letter in zip(found, letters, strict=True):  # CloudEvents binary mode
            assert check(attributes(record.headers), letter) == []


async def test_device_health_is_kept_by_eui_and_read_with_a_tenants_devices(
    settings: Settings,
) -> None:
    await apply_topics(settings)
    lot = scripted(bays=4, hours=12)
    for bay in lot.bays:
        lot.advance(minutes=1).status(bay, 80.0)
    lot.advance(minutes=1).status("bay-003", None, margin=3)
    async with fresh_database(settings) as db, connect(db) as conn:
        heard: list[str] = []
        await conn.add_listener(NOTIFY_CHANNEL, lambda *args: heard.append(args[3]))
        async with running_projector(db, batch_size=50):
            # The health arrives before anything says which tenant uses the devices.
            devices = await produce(db, lot.device_records(), topic=DEVICE_EVENTS)
            await caught_up(db, devices, topic=DEVICE_EVENTS)
            assert await conn.fetchval("SELECT count(*) FROM device_health") == len(lot.bays)
            assert await conn.fetchval("SELECT count(*) FROM devices") == 0
            await caught_up(db, await produce(db, lot.records()))
            rows = await conn.fetch(
                "SELECT d.dev_eui, d.role, d.space_id, h.battery_pct, h.battery_source, "
                "h.rssi, h.snr, h.gateway_count, h.f_cnt, h.last_uplink_at, h.margin "
                "FROM devices d LEFT JOIN device_health h USING (dev_eui) "
                "WHERE d.tenant_id = $1 ORDER BY d.space_id, d.role",
                "t-acme",
            )
            sensors = [r for r in rows if r["role"] == "sensor"]
            assert [r["space_id"] for r in sensors] == ["bay-000", "bay-002"]
            for r in sensors:
                bay = lot.bays[r["space_id"]]
                assert (r["dev_eui"], r["f_cnt"]) == (bay.sensor, bay.f_cnt)
                assert (r["battery_pct"], r["battery_source"]) == (80.0, "status")
                assert r["rssi"] < 0
                assert r["gateway_count"] >= 1
                assert r["last_uplink_at"] is not None
            # The lights only had their downlinks sent: no health of their own.
            assert all(r["battery_pct"] is None for r in rows if r["role"] == "display")
            globex = await conn.fetchrow(
                "SELECT h.* FROM devices d JOIN device_health h USING (dev_eui) "
                "WHERE d.tenant_id = 't-globex' AND d.space_id = 'bay-003' AND d.role = 'sensor'"
            )
            assert (globex["battery_pct"], globex["battery_source"]) == (80.0, "status")
            assert (globex["margin"], globex["battery_level_unavailable"]) == (3, True)

            once = await snapshot(conn)
            again = await produce(db, lot.device_records(), topic=DEVICE_EVENTS)
            await caught_up(db, again, topic=DEVICE_EVENTS)
            assert await snapshot(conn) == once
        await wait_for(lambda: set(heard) >= set(PROJECTIONS))
        await rebuild(db, progress=io.StringIO())
        result = await verify(conn)
        assert result.same, [t.table for t in result.tables if not t.same]
        assert result.positions_match


async def test_migrations_are_tracked_applied_once_and_never_edited(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with fresh_database(settings, migrated=False) as db, connect(db) as conn:
        monkeypatch.setenv("PARKSTREAM_DATABASE_URL", db.database_url.get_secret_value())
        assert await asyncio.to_thread(migrate_cli.main, ["--months-ahead", "1"]) == 0
        first = capsys.readouterr().out
        assert "applied 0001_registry" in first
        assert "applied 0004_offsets" in first
        assert "created partition actuations" in first
        assert await asyncio.to_thread(migrate_cli.main, []) == 0
        assert "is up to date" in capsys.readouterr().out
        versions = await conn.fetch("SELECT version FROM projection_migrations ORDER BY 1")
        assert [v["version"] for v in versions] == [m.version for m in load_migrations()]
        edited = [replace(m, sql=m.sql + "\n-- edited") for m in load_migrations()]
        with pytest.raises(MigrationError, match="was changed after it was applied"):
            await migrate(conn, migrations=edited)
        # Tables, keys and the indexes the API needs, tenant first.
        indexes = {
            r["indexname"]: r["indexdef"]
            for r in await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            )
        }
        for name in (
            "spaces_pkey",
            "actuations_pkey",
            "utilization_daily_pkey",
            "actuations_by_time",
        ):
            assert "(tenant_id," in indexes[name], indexes[name]
