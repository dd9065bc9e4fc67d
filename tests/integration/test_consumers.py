"""The example consumers of examples/consumers/ against a worker's real space-events.

A few bays go through a morning on the broker; then the Python (aiokafka + jsonschema)
and the Node.js (kafkajs + Ajv) consumers read ``<prefix>.space-events.v1`` from the
beginning as another team would. Every record they read must validate against its
schema and carry the right CloudEvents headers (the worker sets them on every record),
and the states they derive from space-events alone must be those of the pure fold of
the worker's inputs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from parkstream.config import Settings
from parkstream.domain import cloudevents
from parkstream.domain import commands as cmd
from parkstream.domain.contract import decode
from parkstream.domain.envelope import Source
from parkstream.topics_admin import apply_topics
from parkstream.worker.app import Worker
from parkstream.worker.fold import fold_batch
from tests.support.kafka import read_all
from tests.support.stack import Collector, Driver, running_worker

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"
CONSUMERS = REPO / "examples" / "consumers"
IDLE_EXIT_S = 3
DAY = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
BAYS = {
    "A1": ("a100000000000011", "2020204100000011"),
    "A2": ("a200000000000012", "2020204100000012"),
    "A3": ("a300000000000013", "2020204100000013"),
    "B1": ("b100000000000014", "2020204100000014"),
}
ORPHAN = "ffff000000000011"
FINAL = {"A1": "OCCUPIED", "A2": "OCCUPIED", "A3": "OUT_OF_ORDER", "B1": "ARCHIVED"}


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


@dataclass
class Run:
    """What one consumer printed: its bay changes, its summary, its complaints."""

    name: str
    changes: list[dict[str, Any]]
    summary: dict[str, Any]
    stderr: str


async def run_consumer(name: str, argv: list[str], settings: Settings) -> Run:
    process = await asyncio.create_subprocess_exec(
        *argv,
        "--bootstrap",
        settings.kafka_bootstrap,
        "--prefix",
        settings.topic_prefix,
        "--idle-exit",
        str(IDLE_EXIT_S),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"the {name} consumer did not finish within 90 s") from None
    stderr = err.decode()
    assert process.returncode == 0, f"{name} consumer exited {process.returncode}:\n{stderr}"
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert lines, f"{name} consumer printed nothing:\n{stderr}"
    return Run(name, lines[:-1], lines[-1], stderr)


def node_consumer() -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Node.js example consumer cannot run")
    if not (CONSUMERS / "node" / "node_modules" / "kafkajs").is_dir():
        pytest.fail(
            "the Node.js example consumer's packages are not installed: "
            "run `npm ci --prefix examples/consumers/node` (CI does)"
        )
    return [node, str(CONSUMERS / "node" / "consume.mjs")]


async def drive_a_morning(worker: Worker, drv: Driver, out: Collector) -> None:
    def count(type_: str, space_id: str | None = None) -> int:
        return len(out.of("space-events.v1", type_, space_id))

    for code, (sensor, light) in BAYS.items():
        await drv.command(
            cmd.RegisterSpace,
            code,
            cmd.RegisterSpaceData(site_id="north", name=f"Bay {code}", code=code),
            at(0),
        )
        for eui, role in ((sensor, "sensor"), (light, "display")):
            await drv.command(
                cmd.AssignDevice, code, cmd.AssignDeviceData(dev_eui=eui, role=role), at(0)
            )
    await out.until("devices assigned", lambda: count("space.device_assigned") == 2 * len(BAYS))
    await out.until("registry propagated", lambda: len(worker.registry) == 2 * len(BAYS))
    for sensor, _ in BAYS.values():
        await drv.reading(sensor, False, at(0.01))
    await out.until("bays free", lambda: count("space.state_changed") >= 2 * len(BAYS))
    # An unassigned device: a record of the bay topic without a bay or a tenant.
    await drv.reading(ORPHAN, True, at(0.1))
    # A1 is taken; A2 is reserved 09:00-11:00 and its car comes; A3 goes out of order.
    await drv.reading(BAYS["A1"][0], True, at(1))
    await drv.command(
        cmd.CreateReservation,
        "A2",
        cmd.CreateReservationData(
            reservation_id="r-a2", request_id="k-a2", starts_at=at(2), ends_at=at(4)
        ),
        at(0.5),
    )
    await out.until("reservation confirmed", lambda: count("reservation.confirmed", "A2") == 1)
    await drv.tick("A2", at(1.75))
    await drv.tick("A2", at(2))
    await drv.reading(BAYS["A2"][0], True, at(2 + 5 / 60))
    await drv.command(
        cmd.SetOverride, "A3", cmd.SetOverrideData(state="OUT_OF_ORDER", reason="repair"), at(3)
    )
    await drv.command(cmd.ArchiveSpace, "B1", cmd.ArchiveSpaceData(reason="closed"), at(3))

    def settled() -> bool:
        last: dict[str, str] = {}
        for e in out.of("space-events.v1", "space.state_changed"):
            last[e.space_id] = e.data.to_state
        return last == FINAL

    await out.until("the morning is over", settled)
    await out.until("orphan seen", lambda: count("device.orphan_seen") == 1)


async def test_example_consumers_validate_every_record_and_fold_the_bays_like_the_worker(
    settings: Settings, tmp_path: Path
) -> None:
    node = node_consumer()
    await apply_topics(settings)
    out = Collector(settings, ("space-events.v1",))
    await out.start()
    try:
        async with running_worker(settings, tmp_path / "worker") as worker, Driver(settings) as drv:
            await drive_a_morning(worker, drv, out)
    finally:
        await out.stop()
    inputs = await read_all(settings, settings.topic("worker-space-inputs.v1"))
    events = await read_all(settings, settings.topic("space-events.v1"))

    # The pure fold of the worker's inputs, and what it says each bay is.
    folded = fold_batch(
        (
            (r.value, Source(kind="kafka", topic=r.topic, partition=r.partition, offset=r.offset))
            for r in inputs
        ),
        lambda _space: None,
    )
    fold_states = {space: str(state.state) for space, state in folded.states.items()}
    assert fold_states == FINAL

    # What the consumers must see: every record valid against its schema file and its
    # AsyncAPI message, with the CloudEvents headers the producer sets on every record.
    contract = json.loads((SCHEMAS / "asyncapi.json").read_text())
    for r in events:
        record = json.loads(r.value)
        mid = f"{record['type']}.v{record['version']}"
        schema = json.loads((SCHEMAS / f"space-events.v1/{mid}.json").read_text())
        assert Draft202012Validator(schema).is_valid(record), record
        headers = {key: value.decode() for key, value in r.headers or ()}
        assert headers, f"no CloudEvents headers on {mid} at offset {r.offset}"
        assert cloudevents.check(cloudevents.attributes(r.headers), decode(r.value)) == []
        assert headers["ce_dataschema"] == schema["$id"]
        assert mid in contract["channels"]["space-events.v1"]["messages"]
        for part, value in (("payload", record), ("headers", headers)):
            pointer = f"#/components/messages/{mid}/{part}"
            assert Draft202012Validator({**contract, "$ref": pointer}).is_valid(value), pointer

    runs = await asyncio.gather(
        run_consumer(
            "python", [sys.executable, str(CONSUMERS / "python" / "consume.py")], settings
        ),
        run_consumer("node", node, settings),
    )

    state_changes = [
        json.loads(r.value) for r in events if json.loads(r.value)["type"] == "space.state_changed"
    ]
    for run in runs:
        summary = run.summary
        assert summary["states"] == fold_states, run.name
        assert summary["records"] == len(events), run.name
        assert summary["invalid"] == 0, f"{run.name}:\n{run.stderr}"
        assert summary["headers_wrong"] == 0, f"{run.name}:\n{run.stderr}"
        assert summary["headers_missing"] == 0, run.name
        by_bay = {
            space: [c["state"] for c in run.changes if c["space_id"] == space] for space in BAYS
        }
        assert by_bay == {
            space: [e["data"]["to_state"] for e in state_changes if e["space_id"] == space]
            for space in BAYS
        }, run.name

    # And the API, reading the read model the projector builds from the same topic,
    # says the same of every bay.
    assert await api_states(settings, "t-1") == fold_states


async def api_states(settings: Settings, tenant: str) -> dict[str, str]:
    from tests.integration.test_projector_support import fresh_database, running_projector
    from tests.support.api import api_stack_for_database, until

    async with (
        fresh_database(settings) as db,
        running_projector(db),
        api_stack_for_database(db) as stack,
    ):
        await stack.tenant(tenant)
        key = await stack.key(tenant, "read")
        async with stack.client(key) as client:

            async def states() -> dict[str, str] | None:
                page = (await client.get("/v1/spaces", params={"limit": 500})).json()
                found = {s["space_id"]: s["state"] for s in page["items"]}
                return found if len(found) == len(FINAL) else None

            # The projector catches up with the topic: wait for the last bay's state.
            async def settled() -> dict[str, str] | None:
                found = await states()
                return found if found == FINAL else None

            try:
                return dict(await until("the API shows every bay", settled, timeout=30))
            except AssertionError:
                return (await states()) or {}
