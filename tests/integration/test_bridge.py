"""The bridge with a real MQTT broker and the Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import orjson
import pytest

from parkstream.bridge.app import Bridge
from parkstream.bridge.mqtt import parse_mqtt_url
from parkstream.config import Settings
from parkstream.domain import cloudevents
from parkstream.domain.contract import decode, encode
from parkstream.domain.device_events import UplinkObserved
from parkstream.domain.downlinks import DownlinkData, DownlinkRequested
from parkstream.domain.envelope import Envelope, Source
from parkstream.simulate.messages import SimDevice, uplink
from parkstream.topics_admin import apply_topics
from tests.support.kafka import produce, read_events, read_records

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def bridge_settings(settings: Settings, tmp_path: Path) -> Settings:
    prefix = settings.topic_prefix
    return settings.model_copy(
        update={
            "mqtt_subscriptions": [f"{prefix}/application/+/device/+/event/+"],
            "mqtt_client_id": f"{prefix}-bridge",
            "state_dir": tmp_path / "bridge",
        }
    )


@pytest.fixture
async def running_bridge(bridge_settings: Settings) -> AsyncIterator[Bridge]:
    await apply_topics(bridge_settings)
    bridge = Bridge(bridge_settings)
    task = asyncio.create_task(bridge.run())
    ready = asyncio.create_task(bridge.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    assert ready in done, "the bridge did not subscribe within 30 s"
    yield bridge
    bridge.stop.set()
    await asyncio.wait_for(task, 30)


async def read_cloudevents(settings: Settings, catalogue_topic: str, count: int) -> list[Envelope]:
    """``count`` records of a topic, after checking that each carries its CloudEvents headers."""
    records = await read_records(settings, settings.topic(catalogue_topic), count)
    events = [decode(r.value) for r in records]
    for record, event in zip(records, events, strict=True):
        attrs = cloudevents.attributes(record.headers)
        assert cloudevents.check(attrs, event) == [], attrs
        assert attrs["subject"] == event.dev_eui if event.dev_eui else "subject" not in attrs
        schema = f"{catalogue_topic}/{event.type}.v{event.version}.json"
        assert attrs["dataschema"].endswith(schema)
        assert attrs["schemaversion"] == str(event.version)
    return events


def mqtt_client(settings: Settings, client_id: str) -> aiomqtt.Client:
    endpoint = parse_mqtt_url(settings.mqtt_url)
    return aiomqtt.Client(endpoint.host, endpoint.port, identifier=client_id)


async def test_uplinks_arrive_as_device_events_with_cloudevents_headers_in_order_per_device(
    running_bridge: Bridge, bridge_settings: Settings
) -> None:
    prefix = bridge_settings.topic_prefix
    devices = [SimDevice(f"00000000000000{i:02x}") for i in range(1, 4)]
    per_device = 20
    async with mqtt_client(bridge_settings, f"{prefix}-pub") as pub:
        for n in range(per_device):
            for dev in devices:
                body = uplink(
                    dev, f_port=1, payload=bytes([n % 2]), f_cnt=n, time=T0 + timedelta(seconds=n)
                )
                await pub.publish(dev.topic("up", prefix), body, qos=1)
    events = await read_cloudevents(bridge_settings, "device-events.v1", per_device * len(devices))
    assert all(isinstance(e, UplinkObserved) for e in events)
    for dev in devices:
        mine = [e for e in events if e.dev_eui == dev.dev_eui]
        assert [e.data.f_cnt for e in mine] == list(range(per_device))  # type: ignore[attr-defined]
        assert [e.data.reading.occupied for e in mine] == [n % 2 == 1 for n in range(per_device)]  # type: ignore[attr-defined]


async def test_malformed_messages_go_to_dead_letter_with_headers_while_valid_traffic_flows(
    running_bridge: Bridge, bridge_settings: Settings
) -> None:
    prefix = bridge_settings.topic_prefix
    dev = SimDevice("0000000000000a01")
    other = SimDevice("0000000000000a02")
    bad = [
        (dev.topic("up", prefix), b"{not json", "invalid_json"),
        (dev.topic("up", prefix), orjson.dumps({"deviceInfo": {"devEui": dev.dev_eui}}), None),
        (
            other.topic("up", prefix),
            uplink(dev, f_port=1, payload=b"\x01", f_cnt=1, time=T0),
            "eui_mismatch",
        ),
    ]
    async with mqtt_client(bridge_settings, f"{prefix}-pub") as pub:
        await pub.publish(
            dev.topic("up", prefix), uplink(dev, f_port=1, payload=b"\x01", f_cnt=1, time=T0), qos=1
        )
        for topic, body, _ in bad:
            await pub.publish(topic, body, qos=1)
        await pub.publish(
            dev.topic("up", prefix), uplink(dev, f_port=1, payload=b"\x00", f_cnt=2, time=T0), qos=1
        )
    letters = await read_cloudevents(bridge_settings, "deadletter.v1", len(bad))
    # Dead letters are keyed by origin topic: their order across partitions is not fixed.
    by_raw = {base64.b64decode(d.data.raw_b64): d.data for d in letters}  # type: ignore[attr-defined]
    assert set(by_raw) == {body for _, body, _ in bad}
    for topic, body, reason in bad:
        assert by_raw[body].origin_topic == topic
        assert by_raw[body].stage == "bridge"
        if reason:
            assert by_raw[body].reason == reason
        else:
            assert by_raw[body].reason.startswith("missing_field:")
    good = await read_cloudevents(bridge_settings, "device-events.v1", 2)
    assert [e.data.f_cnt for e in good] == [1, 2]  # type: ignore[attr-defined]


async def test_a_redelivered_uplink_is_published_once(
    running_bridge: Bridge, bridge_settings: Settings
) -> None:
    prefix = bridge_settings.topic_prefix
    dev = SimDevice("0000000000000b01")
    body = uplink(dev, f_port=1, payload=b"\x01", f_cnt=7, time=T0)
    async with mqtt_client(bridge_settings, f"{prefix}-pub") as pub:
        for _ in range(3):
            await pub.publish(dev.topic("up", prefix), body, qos=1)
        await pub.publish(
            dev.topic("up", prefix), uplink(dev, f_port=1, payload=b"\x00", f_cnt=8, time=T0), qos=1
        )
    events = await read_events(bridge_settings, bridge_settings.topic("device-events.v1"), 2)
    assert [e.data.f_cnt for e in events] == [7, 8]  # type: ignore[attr-defined]
    metric = running_bridge.metrics.registry.get_sample_value(
        "parkstream_bridge_mqtt_messages_total", {"event": "up", "outcome": "ignored"}
    )
    assert metric == 2


async def test_a_downlink_record_becomes_exactly_the_chirpstack_command(
    running_bridge: Bridge, bridge_settings: Settings
) -> None:
    prefix = bridge_settings.topic_prefix
    app = "17c82e96-be03-4f38-aef3-f83d48582d97"
    eui = "2020204100c30a01"
    command_topic = f"application/{app}/device/{eui}/command/down"
    record = DownlinkRequested(
        event_id="e-1",
        dev_eui=eui,
        occurred_at=T0,
        recorded_at=T0,
        source=Source(kind="kafka"),
        data=DownlinkData(
            command_id="5f9a7b52-8b1e-4a8c-9a51-3c6c1d1f0e01",
            f_port=15,
            data_b64="AAD//wA=",
            application_id=app,
            expires_at=datetime.now(UTC) + timedelta(minutes=5),
        ),
    )
    invalid = record.model_copy(
        update={"data": record.data.model_copy(update={"f_port": 15, "data_b64": "!!"})}
    )
    async with mqtt_client(bridge_settings, f"{prefix}-sub") as sub:
        await sub.subscribe(command_topic, qos=1)
        await produce(
            bridge_settings,
            bridge_settings.topic("downlinks.v1"),
            [(eui.encode(), encode(invalid)), (eui.encode(), encode(record))],
        )
        message = await asyncio.wait_for(anext(aiter(sub.messages)), 20)
    body = orjson.loads(message.payload)  # type: ignore[arg-type]
    assert message.topic.value == command_topic
    assert body["id"] == "5f9a7b52-8b1e-4a8c-9a51-3c6c1d1f0e01"
    assert body["devEui"] == eui
    assert body["fPort"] == 15
    assert body["data"] == "AAD//wA="
    assert body["confirmed"] is False
    assert body["expiresAt"].endswith("Z")
    assert set(body) == {"id", "devEui", "confirmed", "fPort", "data", "expiresAt"}
    letters = await read_cloudevents(bridge_settings, "deadletter.v1", 1)
    assert letters[0].data.reason == "bad_base64"  # type: ignore[attr-defined]
    assert letters[0].data.stage == "bridge-downlink"  # type: ignore[attr-defined]
