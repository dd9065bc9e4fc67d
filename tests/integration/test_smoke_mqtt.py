"""QoS-1 publish/subscribe and persistent sessions through the harness's MQTT broker.

Each test runs against the broker of the ``services`` fixture (Mosquitto here)
and against the pure-Python fallback (amqtt) the harness uses without Mosquitto.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiomqtt
import pytest

from parkstream.harness import ServicesHarness
from parkstream.harness.mqtt import parse_mqtt_url

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def amqtt_url() -> Iterator[str]:
    with ServicesHarness(environ={}, need=("mqtt",), mqtt="amqtt") as services:
        yield services.mqtt_url


@pytest.fixture(params=["harness-broker", "amqtt"])
def broker(request: pytest.FixtureRequest) -> tuple[str, int]:
    url: str = request.getfixturevalue(
        "mqtt_url" if request.param == "harness-broker" else "amqtt_url"
    )
    host, port, _tls = parse_mqtt_url(url)
    return host, port


async def next_message(client: aiomqtt.Client, within: float = 10.0) -> aiomqtt.Message:
    async with asyncio.timeout(within):
        async for message in client.messages:
            return message
    raise AssertionError("the message stream ended")


async def test_qos1_round_trip(broker: tuple[str, int], unique_topic_prefix: str) -> None:
    host, port = broker
    topic = f"{unique_topic_prefix}/application/1/device/0011223344556677/event/up"
    async with aiomqtt.Client(host, port, identifier=f"{unique_topic_prefix}-sub") as subscriber:
        await subscriber.subscribe(topic, qos=1)
        async with aiomqtt.Client(host, port, identifier=f"{unique_topic_prefix}-pub") as publisher:
            await publisher.publish(topic, b'{"fPort": 1}', qos=1)
        message = await next_message(subscriber)
    assert message.topic.value == topic
    assert message.payload == b'{"fPort": 1}'
    assert message.qos == 1


async def test_persistent_session_receives_what_was_published_while_away(
    broker: tuple[str, int], unique_topic_prefix: str
) -> None:
    host, port = broker
    topic = f"{unique_topic_prefix}/application/1/device/+/event/up"
    sent_to = topic.replace("+", "0011223344556677")
    client_id = f"{unique_topic_prefix}-bridge"

    async with aiomqtt.Client(host, port, identifier=client_id, clean_session=False) as client:
        await client.subscribe(topic, qos=1)
    # Disconnected now; the broker keeps the session and queues QoS-1 messages.
    async with aiomqtt.Client(host, port, identifier=f"{unique_topic_prefix}-pub") as publisher:
        await publisher.publish(sent_to, b"while-away", qos=1)

    async with aiomqtt.Client(host, port, identifier=client_id, clean_session=False) as client:
        message = await next_message(client)
    assert message.topic.value == sent_to
    assert message.payload == b"while-away"
    assert message.qos == 1
