"""``parkstream refold``: the worker's inputs folded again outside Faust give its space events."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from parkstream.cli import refold as cli
from parkstream.config import Settings
from parkstream.domain import commands as cmd
from parkstream.refold import RefoldError, RefoldOptions, output_topic, refold
from parkstream.topics_admin import apply_topics
from tests.support.kafka import read_all, read_records, wait_for
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


def inputs_folded(worker: Any) -> int:
    return int(
        sum(
            s.value
            for family in worker.metrics.inputs.collect()
            for s in family.samples
            if s.name.endswith("_total")
        )
    )


async def drive_a_morning(settings: Settings, tmp_path: Path) -> tuple[int, datetime]:
    """Three bays through the real worker; returns the number of fold inputs and a moment
    (wall clock) between the set-up phase and the day's traffic."""
    out = Collector(settings, ("space-events.v1", "downlinks.v1"))
    await out.start()
    sent = 0  # inputs that reach the fold: every command and every routed device event

    def count(type_: str, space_id: str | None = None) -> int:
        return len(out.of("space-events.v1", type_, space_id))

    async def ack_downlinks(drv: Driver, acked: set[str]) -> None:
        nonlocal sent
        for d in out.of("downlinks.v1"):
            if d.data.command_id not in acked:
                acked.add(d.data.command_id)
                await drv.txack(d.dev_eui, d.data.command_id, d.occurred_at + timedelta(seconds=2))
                sent += 1

    try:
        async with running_worker(settings, tmp_path / "worker") as worker, Driver(settings) as drv:
            acked: set[str] = set()
            for code, (sensor, light) in BAYS.items():
                await drv.command(
                    cmd.RegisterSpace,
                    code,
                    cmd.RegisterSpaceData(site_id="north", name=f"Bay {code}", code=code),
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
                sent += 3
            await out.until("registry propagated", lambda: len(worker.registry) == 6)
            for sensor, _ in BAYS.values():
                await drv.reading(sensor, False, at(1 / 60))
                sent += 1
            await out.until("colours requested", lambda: len(out.of("downlinks.v1")) >= 3)
            await ack_downlinks(drv, acked)
            await wait_for(lambda: inputs_folded(worker) == sent, timeout=30)
            between = datetime.now(UTC)

            await drv.reading(ORPHAN, True, at(0.1))  # an orphan: the router reports it
            await drv.command(
                cmd.CreateReservation,
                "A2",
                cmd.CreateReservationData(
                    reservation_id="r-a2", request_id="k-a2", starts_at=at(2), ends_at=at(4)
                ),
                at(0.2),
            )
            await drv.reading(BAYS["A1"][0], True, at(1))
            await drv.tick("A2", at(1.75))
            await drv.tick("A2", at(2))
            await drv.reading(BAYS["A2"][0], True, at(2 + 5 / 60))
            await drv.command(
                cmd.SetOverride, "A3", cmd.SetOverrideData(state="OUT_OF_ORDER", until=at(4)), at(3)
            )
            await drv.tick("A3", at(4.01))
            sent += 7
            await out.until("A2 checked in", lambda: count("reservation.fulfilled", "A2") == 1)
            await out.until("A3 override over", lambda: count("override.cleared", "A3") == 1)
            await out.until("orphan seen", lambda: count("device.orphan_seen") == 1)
            await ack_downlinks(drv, acked)
            await wait_for(lambda: inputs_folded(worker) == sent, timeout=30)
    finally:
        await out.stop()
    return sent, between


async def test_refold_reproduces_the_worker_space_events_and_is_idempotent(
    settings: Settings, tmp_path: Path
) -> None:
    await apply_topics(settings)
    inputs, between = await drive_a_morning(settings, tmp_path)
    folded = await read_records(settings, settings.topic("worker-space-inputs.v1"), inputs)
    assert len(folded) == inputs
    live = await read_all(settings, settings.topic("space-events.v1"), quiet=1.0)
    # Orphan reports come from the router, not from the fold of a bay's inputs.
    worker_events = [r for r in live if b'"device.orphan_seen"' not in r.value]
    assert len(worker_events) == len(live) - 1
    expected = {(r.key, r.value) for r in worker_events}
    assert len(expected) == len(worker_events)

    target = output_topic(settings, "space-events.v2-refold")
    assert target == f"{settings.topic_prefix}.space-events.v2-refold"
    report = await refold(settings, RefoldOptions(to_topic=target))
    assert report.created
    assert (report.inputs, report.skipped, report.rejected) == (inputs, 0, 0)
    assert report.events == len(worker_events)
    assert report.bays == len(BAYS)
    assert sum(report.ends.values()) - sum(report.starts.values()) == inputs
    refolded = await read_records(settings, target, report.events)
    assert {(r.key, r.value) for r in refolded} == expected
    # Same partitions as the live topic (same count, default partitioner, same keys).
    live_partition = {r.value: r.partition for r in worker_events}
    assert all(live_partition[r.value] == r.partition for r in refolded)

    # Twice into the same topic: the same records again, same ids; nothing else.
    again = await refold(settings, RefoldOptions(to_topic=target))
    assert not again.created
    assert (again.inputs, again.events) == (report.inputs, report.events)
    both = await read_records(settings, target, 2 * report.events)
    assert sorted(r.value for r in both) == sorted([r.value for r in refolded] * 2)

    # From a time: only the inputs the broker timestamped since then. offsets_for_times
    # only positions the consumer (the test broker answers with the first offset of the
    # record batch holding the time); the timestamp filter decides.
    since = [r for r in folded if r.timestamp >= int(between.timestamp() * 1000)]
    assert 0 < len(since) < inputs
    later = await refold(
        settings,
        RefoldOptions(to_topic=output_topic(settings, "space-events.v2-later"), from_time=between),
    )
    assert later.inputs == len(since)
    assert later.skipped <= inputs - len(since)

    # Until offsets: nothing of a partition stopped at its start.
    first = dict.fromkeys(report.ends, 0)
    none = await refold(
        settings,
        RefoldOptions(to_topic=output_topic(settings, "space-events.v2-none"), until_offsets=first),
    )
    assert (none.inputs, none.events) == (0, 0)


async def test_the_command_refuses_live_topics_and_refolds_into_a_new_one(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    await apply_topics(settings)
    args = parser.parse_args(["--to-topic", "space-events.v1"])
    assert await cli.refold_main(settings, args) == 1
    assert "is a topic of the catalogue" in capsys.readouterr().err
    with pytest.raises(RefoldError):
        await refold(settings, RefoldOptions(to_topic=settings.topic("worker-space-inputs.v1")))

    # An empty inputs topic: nothing to do, the target is created all the same.
    args = parser.parse_args(
        ["--to-topic", "space-events.v2-empty", "--from-time", "2026-01-01T00:00:00Z"]
    )
    assert await cli.refold_main(settings, args) == 0
    captured = capsys.readouterr()
    assert "refolded 0 inputs of 12 partitions" in captured.out
    assert f"{settings.topic_prefix}.space-events.v2-empty (created)" in captured.out

    with pytest.raises(SystemExit):
        parser.parse_args(["--to-topic", "x", "--until-offsets", "0:5"])
    assert cli.partition_offsets("0=5, 3=7") == {0: 5, 3: 7}
    assert cli.iso_time("2026-03-02T07:00:00").tzinfo is UTC
