"""A bridge killed with SIGKILL mid-stream loses no uplink the MQTT broker accepted."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest

from parkstream.bridge.mqtt import parse_mqtt_url
from parkstream.config import Settings
from parkstream.domain.contract import encode
from parkstream.simulate.messages import SimDevice, uplink
from parkstream.topics_admin import apply_topics
from tests.support.kafka import read_records, read_until

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
TOTAL = 1500
PROBE = "00000000000cffff"


def start_bridge(settings: Settings, state_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKSTREAM_")}
    env.update(
        PARKSTREAM_PROFILE="test",
        PARKSTREAM_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        PARKSTREAM_MQTT_URL=settings.mqtt_url,
        PARKSTREAM_TOPIC_PREFIX=settings.topic_prefix,
        PARKSTREAM_MQTT_CLIENT_ID=f"{settings.topic_prefix}-bridge",
        PARKSTREAM_MQTT_SUBSCRIPTIONS=f'["{settings.topic_prefix}/application/+/device/+/event/+"]',
        PARKSTREAM_STATE_DIR=str(state_dir),
        PARKSTREAM_METRICS_PORT="0",
    )
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "parkstream", "bridge"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def count_device_events(settings: Settings, at_least: int, timeout: float) -> int:
    records = await read_records(settings, settings.topic("device-events.v1"), at_least, timeout)
    return len(records)


async def test_sigkill_mid_stream_loses_no_uplink(settings: Settings, tmp_path: Path) -> None:
    await apply_topics(settings)
    prefix = settings.topic_prefix
    log = tmp_path / "bridge.log"
    devices = [SimDevice(f"00000000000c00{i:02x}") for i in range(10)]
    bridge = start_bridge(settings, tmp_path / "state", log)
    endpoint = parse_mqtt_url(settings.mqtt_url)
    try:
        # Wait until the bridge's session exists: a probe uplink comes out in Kafka.
        async with aiomqtt.Client(endpoint.host, endpoint.port, identifier=f"{prefix}-pub") as pub:
            probe = SimDevice(PROBE)
            probes = 0
            while True:
                body = uplink(probe, f_port=1, payload=b"\x01", f_cnt=probes, time=T0)
                await pub.publish(probe.topic("up", prefix), body, qos=1)
                probes += 1
                try:
                    await count_device_events(settings, 1, timeout=1)
                    break
                except AssertionError:
                    assert probes < 60, "the bridge did not subscribe within a minute"

            async def publish_all() -> None:
                for n in range(TOTAL):
                    dev = devices[n % len(devices)]
                    body = uplink(
                        dev,
                        f_port=1,
                        payload=bytes([n % 2]),
                        f_cnt=n,
                        time=T0 + timedelta(seconds=n),
                    )
                    await pub.publish(dev.topic("up", prefix), body, qos=1)

            publisher = asyncio.create_task(publish_all())
            # Kill the bridge once part of the stream went through.
            await count_device_events(settings, TOTAL // 4, timeout=60)
            bridge.send_signal(signal.SIGKILL)
            bridge.wait(10)
            await publisher  # the broker accepted every message (QoS 1 PUBACK)
        bridge = start_bridge(settings, tmp_path / "state", log)
        events = await read_until(
            settings,
            lambda events: (
                {e.data.f_cnt for e in events if e.dev_eui != PROBE} >= set(range(TOTAL))
            ),  # type: ignore[attr-defined]
            timeout=90,
        )
    finally:
        bridge.send_signal(signal.SIGTERM)
        try:
            assert bridge.wait(30) == 0, log.read_text()[-3000:]
        finally:
            if bridge.poll() is None:
                bridge.kill()
    by_id: dict[str, bytes] = {}
    for event in events:
        # A repeat has the same id and content; only its ingest time may differ.
        body = encode(event.model_copy(update={"recorded_at": T0}))
        assert by_id.setdefault(event.event_id, body) == body, "a repeat must be identical"
    f_cnts = sorted(e.data.f_cnt for e in events if e.dev_eui != PROBE)  # type: ignore[attr-defined]
    assert sorted(set(f_cnts)) == list(range(TOTAL)), "every uplink arrived"
    per_device: dict[str, list[int]] = {}
    for e in events:
        per_device.setdefault(e.dev_eui or "", []).append(e.data.f_cnt)  # type: ignore[attr-defined]
    for dev in devices:
        seen = per_device[dev.dev_eui]
        firsts = list(dict.fromkeys(seen))
        assert firsts == sorted(firsts), "first deliveries stay in order per device"
