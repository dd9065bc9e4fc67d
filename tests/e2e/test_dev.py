"""`parkstream dev` as a user runs it: bays change state, lights get downlinks, Ctrl-C ends all."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiomqtt
import asyncpg
import psutil
import pytest

from parkstream.bridge.mqtt import parse_mqtt_url

pytestmark = pytest.mark.e2e

BAYS = 6


def wait_for_exports(
    process: subprocess.Popen[str], log: Path, timeout: float = 120
) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        if "Ctrl-C stops everything" in text:
            return dict(re.findall(r"export (PARKSTREAM_[A-Z_]+)=(\S+)", text))
        assert process.poll() is None, f"parkstream dev exited early:\n{text[-3000:]}"
        time.sleep(0.2)
    raise AssertionError(f"parkstream dev not ready within {timeout}s:\n{log.read_text()[-3000:]}")


async def bays_with_sensor_state(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(
            await connection.fetchval(
                "select count(*) from space_states where state in ('FREE', 'OCCUPIED')"
            )
        )
    finally:
        await connection.close()


async def first_downlink(mqtt_url: str, timeout: float) -> str:
    endpoint = parse_mqtt_url(mqtt_url)
    async with aiomqtt.Client(endpoint.host, endpoint.port, identifier="e2e-watch") as client:
        await client.subscribe("application/+/device/+/command/down", qos=1)
        message = await asyncio.wait_for(anext(aiter(client.messages)), timeout)
        return message.topic.value


def test_parkstream_dev_runs_the_lot_and_stops_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKSTREAM_")}
    log = tmp_path / "dev.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "parkstream", "dev", "--bays", str(BAYS), "--speed", "120"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    family: list[psutil.Process] = []
    try:
        exports = wait_for_exports(process, log)
        database_url = exports["PARKSTREAM_DATABASE_URL"]
        # Lights receive downlinks over MQTT (a change of colour after an arrival or a departure).
        topic = asyncio.run(first_downlink(exports["PARKSTREAM_MQTT_URL"], timeout=120))
        assert topic.endswith("/command/down")
        # Bays change state in the read model, from the simulated sensors through the pipeline.
        deadline = time.monotonic() + 120
        while asyncio.run(bays_with_sensor_state(database_url)) < BAYS:
            assert time.monotonic() < deadline, (
                f"bays never all reported:\n{log.read_text()[-3000:]}"
            )
            time.sleep(1)
        family = [
            psutil.Process(process.pid),
            *psutil.Process(process.pid).children(recursive=True),
        ]
        assert len(family) >= 6, "dev runs brokers and the parkstream processes"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(90) == 0, log.read_text()[-3000:]
        finally:
            if process.poll() is None:
                process.kill()
    _, alive = psutil.wait_procs(family, timeout=10)
    left = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"still running after Ctrl-C: {[(p.pid, p.name()) for p in left]}"
