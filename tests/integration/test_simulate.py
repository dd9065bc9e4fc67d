"""The simulated lot against a real MQTT broker: ChirpStack v4 traffic, answers to commands.

Traffic is isolated by the test's unique topic prefix. The lot runs at high speed
(hundreds of simulated seconds per real second); conditions are polled with a deadline.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from parkstream.bridge.mqtt import parse_mqtt_url
from parkstream.config import Settings
from parkstream.decoders.registry import DecoderRegistry
from parkstream.domain.device_events import DownlinkTransmitted, UplinkObserved
from parkstream.domain.kuando import colour_frame
from parkstream.harness.mqtt import mosquitto_binary, mosquitto_config, mqtt_connack
from parkstream.harness.process import ManagedProcess, free_port, minimal_env, spawn
from parkstream.ingest.parse import parse_message
from parkstream.simulate.lot import Lot, LotConfig
from parkstream.simulate.runner import LotRunner, run_lot

pytestmark = pytest.mark.integration

REGISTRY = DecoderRegistry.default()


class Recorder:
    """Every message a subscriber receives, in order."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[tuple[str, bytes]] = []

    async def run(self) -> None:
        async for message in self.client.messages:
            payload = message.payload
            assert isinstance(payload, bytes)
            self.messages.append((message.topic.value, payload))

    def events(self, kind: str) -> list[tuple[str, bytes]]:
        return [(t, p) for t, p in self.messages if t.endswith(f"/event/{kind}")]


async def wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def recording(url: str, topic_filter: str, client_id: str) -> AsyncIterator[Recorder]:
    endpoint = parse_mqtt_url(url)
    async with aiomqtt.Client(endpoint.host, endpoint.port, identifier=client_id) as client:
        await client.subscribe(topic_filter, qos=1)
        recorder = Recorder(client)
        task = asyncio.create_task(recorder.run())
        try:
            yield recorder
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def subscriber(settings: Settings) -> AsyncIterator[Recorder]:
    prefix = settings.topic_prefix
    filter_ = f"{prefix}/application/+/device/+/event/+"
    async with recording(settings.mqtt_url, filter_, f"{prefix}-sub") as recorder:
        yield recorder


def parse(topic: str, payload: bytes) -> object:
    result = parse_message(topic, payload, recorded_at=datetime.now(UTC), decoders=REGISTRY)
    assert result.outcome == "accepted", (topic, result)
    (event,) = result.events
    return event


def fast_lot(prefix: str, **fields: Any) -> Lot:
    config: dict[str, Any] = {
        "bays": 4,
        "seed": 11,
        "speed": 600.0,
        "topic_prefix": prefix,
        "miss_rate": 0.0,
        "malformed_rate": 0.0,
        **fields,
    }
    return Lot(LotConfig(**config))


async def test_the_lot_publishes_parsable_uplinks_and_answers_a_colour_command(
    settings: Settings, subscriber: Recorder
) -> None:
    lot = fast_lot(settings.topic_prefix)
    stop, ready = asyncio.Event(), asyncio.Event()
    run = asyncio.create_task(run_lot(settings, lot, stop, ready=ready))
    try:
        await wait_until(ready.is_set, "the lot subscribed to commands")
        everyone = set(lot.sensors) | set(lot.lights)

        def heard() -> set[str]:
            return {t.split("/device/")[1].split("/")[0] for t, _ in subscriber.events("up")}

        await wait_until(lambda: heard() >= everyone, "an uplink of every device")
        for topic, payload in subscriber.events("up"):
            event = parse(topic, payload)
            assert isinstance(event, UplinkObserved)
            assert event.data.reading is not None, event.data.decode_error
            if event.dev_eui in lot.sensors:
                assert event.data.reading.occupied is not None

        light = lot.bays[0].light_eui
        device = lot.lights[light].device
        command_id = str(uuid.uuid4())
        green = colour_frame(0, 255, 0).payload
        command = {
            "id": command_id,
            "devEui": light,
            "confirmed": False,
            "fPort": 15,
            "data": base64.b64encode(green).decode(),
        }
        endpoint = parse_mqtt_url(settings.mqtt_url)
        async with aiomqtt.Client(
            endpoint.host, endpoint.port, identifier=f"{settings.topic_prefix}-cmd"
        ) as publisher:
            await publisher.publish(
                device.command_topic(settings.topic_prefix), orjson.dumps(command), qos=1
            )

        def txacks() -> list[DownlinkTransmitted]:
            events = [parse(t, p) for t, p in subscriber.events("txack")]
            return [e for e in events if isinstance(e, DownlinkTransmitted)]

        def shown() -> list[str]:
            ups = [parse(t, p) for t, p in subscriber.events("up") if f"/{light}/" in t]
            return [
                u.data.reading.display.frame_hex
                for u in ups
                if isinstance(u, UplinkObserved) and u.data.reading and u.data.reading.display
            ]

        await wait_until(lambda: bool(txacks()), "a txack of the command")
        (txack,) = txacks()
        assert (txack.dev_eui, txack.data.queue_item_id) == (light, command_id)
        await wait_until(lambda: green.hex() in shown(), "a status uplink showing green")
        assert lot.lights[light].frame == green
    finally:
        stop.set()
        summary = await asyncio.wait_for(run, 30)
    assert (summary.downlinks_received, summary.answered, summary.missed) == (1, 1, 0)
    assert summary.published["join"] == 8
    assert summary.published["txack"] == 1


async def test_the_lot_stops_by_itself_after_its_duration(
    settings: Settings, subscriber: Recorder
) -> None:
    lot = fast_lot(
        settings.topic_prefix, speed=3600.0, duration_minutes=180.0, heartbeat_minutes=30
    )
    summary = await asyncio.wait_for(run_lot(settings, lot, asyncio.Event()), 30)
    assert summary.simulated_minutes == 180
    assert summary.published["join"] == 8
    assert summary.published["up"] >= 8 + 4 * 5 + 4 * 5  # startups, heartbeats, keep-alives
    assert summary.dropped == 0
    await wait_until(
        lambda: len(subscriber.messages) == sum(summary.published.values()),
        "every published message at the subscriber",
    )


async def broker_on(port: int, workdir: Path, attempt: int) -> ManagedProcess:
    binary = mosquitto_binary()
    if binary is not None:
        config = workdir / f"mosquitto-{attempt}.conf"
        config.write_text(mosquitto_config(port, workdir), encoding="utf-8")
        argv = [binary, "-c", str(config)]
    else:
        argv = [sys.executable, "-m", "parkstream.harness.amqtt_broker", str(port)]
    process = spawn(
        "broker", argv, cwd=workdir, log_path=workdir / f"broker-{attempt}.log", env=minimal_env()
    )
    await wait_until(lambda: mqtt_connack("127.0.0.1", port, 0.2) == 0, "the broker answers")
    return process


async def test_the_lot_waits_for_the_broker_and_reconnects_after_a_restart(
    tmp_path: Path, unique_topic_prefix: str
) -> None:
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    lot = fast_lot(unique_topic_prefix, bays=2, heartbeat_minutes=5, silent_bay=0)
    runner = LotRunner(Settings(mqtt_url=url), lot)
    run = asyncio.create_task(runner.run())
    broker: ManagedProcess | None = None
    try:
        await wait_until(lambda: runner.reconnects >= 2, "failed attempts while no broker runs")
        assert not runner.ready.is_set()

        broker = await broker_on(port, tmp_path, 0)
        filter_ = f"{unique_topic_prefix}/application/+/device/+/event/up"
        async with recording(url, filter_, f"{unique_topic_prefix}-sub-0") as recorder:
            await wait_until(lambda: len(recorder.messages) >= 3, "uplinks after the broker came")
        failures = runner.reconnects

        await asyncio.to_thread(broker.stop)
        await wait_until(lambda: runner.reconnects > failures, "the lot noticed the broker left")
        broker = await broker_on(port, tmp_path, 1)
        every_event = f"{unique_topic_prefix}/application/+/device/+/event/+"
        async with recording(url, every_event, f"{unique_topic_prefix}-sub-1") as recorder:

            def uplinks() -> list[tuple[str, bytes]]:
                return [(t, p) for t, p in recorder.messages if t.endswith("/event/up")]

            await wait_until(lambda: len(uplinks()) >= 3, "uplinks after the restart")
            # The same device sessions go on after a broker restart: nobody rejoins.
            joins = [t for t, _ in recorder.messages if t.endswith("/event/join")]
            assert joins == []
    finally:
        runner.stop.set()
        await asyncio.wait_for(run, 30)
        if broker is not None:
            await asyncio.to_thread(broker.stop)


async def run_cli(settings: Settings, *argv: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PARKSTREAM_MQTT_URL": settings.mqtt_url, "PARKSTREAM_LOG_LEVEL": "INFO"}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "parkstream.cli.simulate",
        "--bays=2",
        f"--topic-prefix={settings.topic_prefix}",
        *argv,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_the_command_exits_0_after_its_duration(
    settings: Settings, subscriber: Recorder
) -> None:
    process = await run_cli(settings, "--speed=3600", "--duration=30")
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    assert b"lot stopped" in stderr
    # The broker forwards to the subscriber after it acknowledged the publisher: await it.
    await wait_until(lambda: bool(subscriber.events("up")), "the uplinks at the subscriber")


async def test_the_command_stops_cleanly_on_sigterm(
    settings: Settings, subscriber: Recorder
) -> None:
    process = await run_cli(settings, "--speed=60")
    try:
        await wait_until(lambda: bool(subscriber.events("up")), "the first uplink", timeout=30)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert b"lot stopped" in stderr
