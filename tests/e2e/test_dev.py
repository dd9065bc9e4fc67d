"""`parkstream dev` as a user runs it: bays change state (in the read model and through the
API with the key it prints), lights get downlinks, Ctrl-C ends all."""

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
import httpx
import orjson
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


def printed_access(log: Path) -> tuple[str, str]:
    """The API's base URL and the key from the banner's dashboard line."""
    found = re.search(r"dashboard: (http://[^/\s]+)/dashboard#key=(psk_\S+)", log.read_text())
    assert found, f"no dashboard line:\n{log.read_text()[-3000:]}"
    return found[1], found[2]


def sensor_state_change(api: str, key: str, timeout: float) -> tuple[str, str, str]:
    """Follow the dashboard's event stream until a bay goes from FREE or OCCUPIED to
    another state; returns (space id, before, after)."""
    deadline = time.monotonic() + timeout
    states: dict[str, str | None] = {}
    with httpx.stream(
        "GET",
        f"{api}/dashboard/stream",
        headers={"X-API-Key": key},
        timeout=httpx.Timeout(10, read=30),
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            assert time.monotonic() < deadline, f"no bay changed state within {timeout}s"
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and name in ("snapshot", "bays"):
                data = orjson.loads(line.removeprefix("data: "))
                for bay in data["bays" if name == "snapshot" else "changed"]:
                    before = states.get(bay["space_id"])
                    if before in ("FREE", "OCCUPIED") and bay["state"] != before:
                        return bay["space_id"], before, bay["state"]
                    states[bay["space_id"]] = bay["state"]
    raise AssertionError("the event stream ended")


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
        api, key = printed_access(log)
        assert api.startswith("http://127.0.0.1:")
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
        # ... and through the API, with the key it printed: the bays and their lights ...
        bays = httpx.get(f"{api}/dashboard/bays", headers={"X-API-Key": key}, timeout=10).json()
        assert bays["tenant_id"] == "demo"
        assert len(bays["bays"]) == BAYS
        assert all(b["light"]["wants"] for b in bays["bays"]), bays
        spaces = httpx.get(f"{api}/v1/spaces", headers={"X-API-Key": key}, timeout=10)
        assert spaces.status_code == 200, spaces.text
        assert {s["space_id"] for s in spaces.json()["items"]} == {
            b["space_id"] for b in bays["bays"]
        }
        assert httpx.get(f"{api}/dashboard/bays", timeout=10).status_code == 401
        # ... and live: a bay that reported FREE or OCCUPIED changes again.
        space_id, before, after = sensor_state_change(api, key, timeout=180)
        bay = httpx.get(f"{api}/dashboard/bays/{space_id}", headers={"X-API-Key": key}).json()
        assert {"from": before, "to": after} in [
            {"from": c["from"], "to": c["to"]} for c in bay["changes"]
        ], bay
        assert bay["explanation"]["cause_event_ids"], bay
        # The API listens on loopback only.
        port = int(api.rsplit(":", 1)[1])
        listening = [
            c.laddr.ip
            for c in psutil.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        ]
        assert listening, f"nothing listens on {port}"
        assert set(listening) == {"127.0.0.1"}, listening
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
