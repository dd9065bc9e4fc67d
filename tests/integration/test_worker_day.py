"""A scripted day in one lot, through the worker and the Kafka-protocol broker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from parkstream.config import Settings
from parkstream.domain import cloudevents
from parkstream.domain import commands as cmd
from parkstream.domain.contract import decode, encode
from parkstream.domain.envelope import Source
from parkstream.topics_admin import apply_topics
from parkstream.worker.fold import fold_batch
from tests.support.kafka import read_all, read_records
from tests.support.stack import Collector, Driver, running_worker

pytestmark = pytest.mark.integration

DAY = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
BAYS = {
    "A1": ("a100000000000001", "2020204100000001"),
    "A2": ("a200000000000002", "2020204100000002"),
    "A3": ("a300000000000003", "2020204100000003"),
}
ORPHAN = "ffff000000000001"


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


async def test_a_scripted_day_yields_the_expected_events_and_downlinks(
    settings: Settings, tmp_path: Path
) -> None:
    await apply_topics(settings)
    out = Collector(settings, ("space-events.v1", "downlinks.v1"))
    await out.start()
    acked: set[str] = set()
    missed: set[str] = set()

    async def ack_downlinks(
        drv: Driver, when: datetime = DAY, skip_light: str | None = None
    ) -> None:
        """Every light confirms the downlinks it got, except one that misses a txack."""
        for d in out.of("downlinks.v1"):
            cid = d.data.command_id
            if cid in acked or cid in missed:
                continue
            if d.dev_eui == skip_light:
                missed.add(cid)
                continue
            acked.add(cid)
            # A gateway sends a Class C downlink within seconds of its request.
            await drv.txack(d.dev_eui, cid, max(when, d.occurred_at + timedelta(seconds=2)))

    def count(type_: str, space_id: str | None = None) -> int:
        return len(out.of("space-events.v1", type_, space_id))

    async def confirm_all(drv: Driver) -> None:
        """Lights answer every downlink they get until each confirmed its last one."""
        for _ in range(300):
            await ack_downlinks(drv)
            if lights_show_their_last_command():
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the lights never confirmed their last downlinks")

    def lights_show_their_last_command() -> bool:
        """Every light confirmed the last downlink it got (earlier ones were superseded)."""
        confirmed = {
            e.data.command_id for e in out.of("space-events.v1", "display.change_confirmed")
        }
        last = {d.dev_eui: d.data.command_id for d in out.of("downlinks.v1")}
        return bool(last) and all(cid in confirmed for cid in last.values())

    try:
        async with running_worker(settings, tmp_path / "worker") as worker, Driver(settings) as drv:
            for code, (sensor, light) in BAYS.items():
                # A2's sensor has a 1 h heartbeat (silent after 3 h); the others 6 h.
                config = cmd.SpaceConfig(heartbeat_s=3600 if code == "A2" else 6 * 3600)
                await drv.command(
                    cmd.RegisterSpace,
                    code,
                    cmd.RegisterSpaceData(
                        site_id="north", name=f"Bay {code}", code=code, config=config
                    ),
                    at(0),
                )
                await drv.command(
                    cmd.AssignDevice,
                    code,
                    cmd.AssignDeviceData(dev_eui=sensor, role="sensor"),
                    at(0),
                )
                await drv.command(
                    cmd.AssignDevice,
                    code,
                    cmd.AssignDeviceData(dev_eui=light, role="display"),
                    at(0),
                )
            await out.until("bays registered", lambda: count("space.device_assigned") == 6)
            await out.until("registry propagated", lambda: len(worker.registry) == 6)

            # 07:00:30 every sensor reports an empty bay; the lights confirm their colours.
            for sensor, _ in BAYS.values():
                await drv.reading(sensor, False, at(0.5 / 60))
            await out.until("bays free", lambda: count("space.state_changed") >= 6)
            await out.until("free colours requested", lambda: len(out.of("downlinks.v1")) >= 6)
            await confirm_all(drv)

            # An unknown device speaks: an orphan the API can list.
            await drv.reading(ORPHAN, True, at(0.1))
            await out.until("orphan seen", lambda: count("device.orphan_seen") == 1)

            # Reservations: A2 09:00-11:00 (car comes), A3 12:00-13:00 (nobody comes).
            await drv.command(
                cmd.CreateReservation,
                "A2",
                cmd.CreateReservationData(
                    reservation_id="r-a2", request_id="k-a2", starts_at=at(2), ends_at=at(4)
                ),
                at(0.2),
            )
            await drv.command(
                cmd.CreateReservation,
                "A3",
                cmd.CreateReservationData(
                    reservation_id="r-a3",
                    request_id="k-a3",
                    starts_at=at(5),
                    ends_at=at(6),
                    grace_s=900,
                ),
                at(0.2),
            )
            await out.until("reservations confirmed", lambda: count("reservation.confirmed") == 2)

            # 08:00 a car parks in A1 and its light misses the txack: resent a minute later.
            await drv.reading(BAYS["A1"][0], True, at(1))
            await out.until("A1 occupied", lambda: len(out.of("downlinks.v1")) >= 7)
            await ack_downlinks(drv, skip_light=BAYS["A1"][1])
            await drv.tick("A1", at(1) + timedelta(seconds=61))
            await out.until("A1 resent", lambda: count("display.resend_scheduled", "A1") >= 1)
            await out.until("A1 resend downlink", lambda: len(out.of("downlinks.v1")) >= 8)
            await confirm_all(drv)

            # 08:45 A2 shows reserved-soon, 09:00 reserved, 09:05 its car arrives.
            await drv.tick("A2", at(1.75))
            await drv.tick("A2", at(2))
            await drv.reading(BAYS["A2"][0], True, at(2 + 5 / 60))
            await out.until("A2 checked in", lambda: count("reservation.fulfilled", "A2") == 1)
            await confirm_all(drv)

            # 10:00 A1 leaves; 10:30 A2's car leaves early: reservation completed.
            await drv.reading(BAYS["A1"][0], False, at(3))
            await drv.reading(BAYS["A2"][0], False, at(3.5))
            await out.until("A2 completed", lambda: count("reservation.completed", "A2") == 1)
            await confirm_all(drv)

            # 12:15 A3's reservation is a no-show.
            await drv.tick("A3", at(5.25))
            await out.until("A3 no-show", lambda: count("reservation.no_show", "A3") == 1)
            await confirm_all(drv)

            # 13:00 A1 out of order until 14:00; the override ends by itself.
            await drv.command(
                cmd.SetOverride, "A1", cmd.SetOverrideData(state="OUT_OF_ORDER", until=at(7)), at(6)
            )
            await drv.tick("A1", at(7.01))
            await out.until("A1 override over", lambda: count("override.cleared", "A1") == 1)
            await confirm_all(drv)

            # A2's sensor (last heard 10:30) falls silent at 13:30 and comes back at 15:00.
            await drv.tick("A2", at(6.6))
            await out.until("A2 silent", lambda: count("space.sensor_went_silent", "A2") == 1)
            await drv.reading(BAYS["A2"][0], False, at(8))
            await out.until("A2 back", lambda: count("space.sensor_recovered", "A2") == 1)
            await confirm_all(drv)

            # A3's light rejoins and gets its colour again.
            await drv.join(BAYS["A3"][1], at(9))
            await out.until(
                "A3 rejoin resend",
                lambda: any(
                    e.data.reason == "rejoin"
                    for e in out.of("space-events.v1", "display.change_requested", "A3")
                ),
            )
            await confirm_all(drv)

            fold_topic = settings.topic("worker-space-inputs.v1")

            def fold_lag() -> dict[str, float]:
                worker.report_lag()
                return {
                    s.labels["partition"]: s.value
                    for metric in worker.metrics.lag.collect()
                    for s in metric.samples
                    if s.labels["topic"] == fold_topic
                }

            await out.until(
                "lag reported, caught up",
                lambda: bool(fold_lag()) and not any(fold_lag().values()),
            )
            lag = fold_lag()
        inputs = await read_records(
            settings, settings.topic("worker-space-inputs.v1"), 1, timeout=10
        )
        total_inputs = len(inputs)
        inputs = await read_records(
            settings, settings.topic("worker-space-inputs.v1"), total_inputs, timeout=10
        )
    finally:
        await out.stop()

    events = out.of("space-events.v1")
    downlinks = out.of("downlinks.v1")

    # What each bay went through, in order.
    def states(space: str) -> list[str]:
        return [
            e.data.to_state
            for e in events
            if e.type == "space.state_changed" and e.space_id == space
        ]

    assert states("A1") == ["UNKNOWN", "FREE", "OCCUPIED", "FREE", "OUT_OF_ORDER", "FREE"]
    assert states("A2") == [
        "UNKNOWN",
        "FREE",
        "RESERVED_SOON",
        "RESERVED",
        "OCCUPIED",
        "FREE",
        "UNKNOWN",
        "FREE",
    ]
    assert states("A3") == ["UNKNOWN", "FREE", "RESERVED_SOON", "RESERVED", "FREE"]
    assert count("reservation.started") == 2
    assert [d.dev_eui for d in downlinks if d.dev_eui == BAYS["A1"][1]]
    assert all(d.data.f_port == 15 for d in downlinks)

    # The worker did exactly what the pure fold of its inputs does.
    expected = fold_batch(
        (
            (r.value, Source(kind="kafka", topic=r.topic, partition=r.partition, offset=r.offset))
            for r in inputs
        ),
        lambda _space: None,
    )
    want = sorted(o.value for o in expected.outputs if o.topic == "space-events.v1")
    got = sorted(encode(e) for e in events if e.type != "device.orphan_seen")
    assert got == want
    want_down = sorted(o.value for o in expected.outputs if o.topic == "downlinks.v1")
    assert sorted(encode(d) for d in downlinks) == want_down

    # Every record the worker wrote carries its CloudEvents attributes as headers.
    for topic in ("space-events.v1", "downlinks.v1"):
        written = await read_all(settings, settings.topic(topic))
        assert written
        for r in written:
            record = decode(r.value)
            attrs = cloudevents.attributes(r.headers)
            assert cloudevents.check(attrs, record) == [], (topic, record.type)
            assert attrs["subject"] == (record.space_id or record.dev_eui)
            assert attrs["dataschema"].endswith(f"/{topic}/{record.type}.v1.json")

    # The consumer lag was reported for every fold partition with inputs.
    assert set(lag) >= {str(r.partition) for r in inputs}
