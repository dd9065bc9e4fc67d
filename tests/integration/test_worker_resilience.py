"""Workers killed with SIGKILL, and workers sharing partitions, end where a pure fold ends."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from parkstream.config import Settings
from parkstream.domain import commands as cmd
from parkstream.domain.contract import encode
from parkstream.domain.envelope import Envelope, Source
from parkstream.domain.evolve import fold
from parkstream.topics_admin import apply_topics
from parkstream.worker.app import EXIT_INCONSISTENT
from parkstream.worker.fold import fold_batch
from tests.support.kafka import read_all, read_records
from tests.support.stack import Collector, Driver

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
BAYS = 12
READINGS = 40  # per bay


def start_worker(settings: Settings, workdir: Path, name: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKSTREAM_")}
    env.update(
        PARKSTREAM_PROFILE="test",
        PARKSTREAM_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        PARKSTREAM_TOPIC_PREFIX=settings.topic_prefix,
        PARKSTREAM_STATE_DIR=str(workdir / name),
        PARKSTREAM_METRICS_PORT="0",
    )
    with (workdir / f"{name}.log").open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "parkstream", "worker", "--no-ticks"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


class Keeper:
    """Restarts a worker that stopped itself on a consumer anomaly (exit status 70), as any
    supervisor does; any other exit fails the test."""

    def __init__(self, settings: Settings, workdir: Path, name: str) -> None:
        self.settings, self.workdir, self.name = settings, workdir, name
        self.process = start_worker(settings, workdir, name)
        self.restarts = 0

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def check(self) -> None:
        code = self.process.poll()
        if code is None:
            return
        assert code == EXIT_INCONSISTENT, (
            f"worker exited with {code}: {self.log.read_text()[-3000:]}"
        )
        self.restarts += 1
        self.process = start_worker(self.settings, self.workdir, self.name)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = start_worker(self.settings, self.workdir, self.name)

    def stop(self) -> None:
        stop(self.process, self.log)


async def watch(keepers: list[Keeper]) -> None:
    while True:
        for k in keepers:
            k.check()
        await asyncio.sleep(0.2)


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(
                f"worker did not stop on SIGTERM: {log.read_text()[-2000:]}"
            ) from None


async def drive(settings: Settings, out: Collector) -> None:
    """Register bays with sensors, wait for routing, then stream readings."""
    async with Driver(settings) as drv:
        for b in range(BAYS):
            space = f"bay-{b:02d}"
            await drv.command(
                cmd.RegisterSpace,
                space,
                cmd.RegisterSpaceData(site_id="s", name=space, code=f"B{b:02d}"),
                T0,
            )
            await drv.command(
                cmd.AssignDevice,
                space,
                cmd.AssignDeviceData(dev_eui=f"{b:016x}", role="sensor"),
                T0,
            )
        await out.until(
            "assignments",
            lambda: len(out.of("space-events.v1", "space.device_assigned")) == BAYS,
            120,
        )

        # The registry is fed by the worker's own outputs: until the router has seen an
        # assignment, the device's readings are orphans. Repeat a first reading until
        # every bay has one.
        def heard() -> set[str]:
            return {e.space_id for e in out.of("space-events.v1", "space.sensor_reading_accepted")}

        for attempt in range(60):
            for b in range(BAYS):
                if f"bay-{b:02d}" not in heard():
                    await drv.reading(f"{b:016x}", False, T0 + timedelta(seconds=attempt))
            try:
                await out.until("first readings", lambda: len(heard()) == BAYS, 2)
                break
            except AssertionError:
                continue
        else:
            raise AssertionError("the router never learnt the assignments")
        for n in range(READINGS):
            for b in range(BAYS):
                at = T0 + timedelta(minutes=n + 1, seconds=b)
                await drv.reading(f"{b:016x}", (n + b) % 3 == 0, at)


async def check_against_pure_fold(settings: Settings, out: Collector, logs: list[Path]) -> None:
    inputs_topic = settings.topic("worker-space-inputs.v1")
    expected_count = BAYS * 2 + BAYS + READINGS * BAYS
    await read_records(settings, inputs_topic, expected_count, timeout=120)
    # Read again to the end: routed repeats of the first readings may be there too.
    inputs = await read_all(settings, inputs_topic)
    reference = fold_batch(
        (
            (r.value, Source(kind="kafka", topic=r.topic, partition=r.partition, offset=r.offset))
            for r in inputs
        ),
        lambda _s: None,
    )
    want = {o.value for o in reference.outputs if o.topic == "space-events.v1"}

    def missing() -> list[bytes]:
        return sorted(want - {encode(e) for e in out.of("space-events.v1")})

    try:
        await out.until("every expected event", lambda: not missing(), 180)
    except AssertionError:
        lost = missing()
        got = {e.event_id: encode(e) for e in out.of("space-events.v1")}
        first = orjson.loads(lost[0])
        other = got.get(first["event_id"])
        causes = {e.causation_id for e in out.of("space-events.v1")}
        detail = [
            (
                d["type"],
                d["space_id"],
                d["causation_id"],
                d["source"]["partition"],
                d["source"]["offset"],
                d["causation_id"] in causes,
            )
            for d in map(orjson.loads, lost)
        ]
        tails = "\n".join(f"--- {log}:\n{log.read_text()[-4000:]}" for log in logs)
        raise AssertionError(
            f"{len(lost)} of {len(want)} expected events missing: {detail[:20]}; "
            f"the worker's event with the first id: {other[:600] if other else None!r}\n{tails}"
        ) from None
    # Orphan reports come from the router, not the fold (readings sent before routing).
    events = [e for e in out.of("space-events.v1") if e.type != "device.orphan_seen"]
    by_id: dict[str, bytes] = {}
    for e in events:
        body = encode(e)
        assert by_id.setdefault(e.event_id, body) == body, "a repeat carries an identical event"
    assert set(by_id.values()) == want, "no event that the pure fold does not make"
    per_space: dict[str, list[Envelope]] = {}
    seen: set[str] = set()
    for e in events:
        if e.event_id not in seen:
            seen.add(e.event_id)
            per_space.setdefault(e.space_id or "", []).append(e)
    for space_id, state in reference.states.items():
        assert fold(per_space[space_id], space_id=space_id) == state


async def test_a_worker_killed_and_restarted_loses_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    await apply_topics(settings)
    out = Collector(settings, ("space-events.v1",))
    await out.start()
    worker = Keeper(settings, tmp_path, "w1")
    watcher = asyncio.create_task(watch([worker]))
    try:
        driver = asyncio.create_task(drive(settings, out))
        await out.until(
            "a third of the stream",
            lambda: (
                len(out.of("space-events.v1", "space.sensor_reading_accepted"))
                > READINGS * BAYS // 3
            ),
            180,
        )
        worker.kill()
        await driver
        await check_against_pure_fold(settings, out, [worker.log])
    finally:
        watcher.cancel()
        worker.stop()
        await out.stop()


async def test_two_workers_sharing_partitions_end_as_a_pure_fold(
    settings: Settings, tmp_path: Path
) -> None:
    await apply_topics(settings)
    out = Collector(settings, ("space-events.v1",))
    await out.start()
    workers = [Keeper(settings, tmp_path, "w1"), Keeper(settings, tmp_path, "w2")]
    watcher = asyncio.create_task(watch(workers))
    try:
        await drive(settings, out)
        await check_against_pure_fold(settings, out, [w.log for w in workers])
    finally:
        watcher.cancel()
        for w in workers:
            w.stop()
        await out.stop()
