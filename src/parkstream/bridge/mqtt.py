"""MQTT connections of the bridge: URL parsing, TLS and credentials from settings."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiomqtt

from parkstream.config import Settings

# Publishes awaiting their PUBACK beyond which aiomqtt logs a warning.
PENDING_PUBLISHES_WARNING = 5_000


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    host: str
    port: int
    tls: bool


def parse_mqtt_url(url: str) -> MqttEndpoint:
    """``mqtt://host:1883`` or ``mqtts://host:8883`` (``tcp://``/``ssl://`` also accepted)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("mqtt", "mqtts", "tcp", "ssl", "tls"):
        raise ValueError(f"unsupported MQTT URL scheme {parts.scheme!r} in {url!r}")
    tls = scheme in ("mqtts", "ssl", "tls")
    if not parts.hostname:
        raise ValueError(f"no host in MQTT URL {url!r}")
    return MqttEndpoint(parts.hostname, parts.port or (8883 if tls else 1883), tls)


def make_client(settings: Settings, *, client_id: str, clean_session: bool) -> aiomqtt.Client:
    endpoint = parse_mqtt_url(settings.mqtt_url)
    tls_context: ssl.SSLContext | None = None
    if endpoint.tls or settings.mqtt_ca_file is not None:
        cafile = str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None
        tls_context = ssl.create_default_context(cafile=cafile)
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    client = aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        username=settings.mqtt_username,
        password=password,
        identifier=client_id,
        clean_session=clean_session,
        keepalive=settings.mqtt_keepalive_s,
        tls_context=tls_context,
        timeout=10,
    )
    # aiomqtt logs a warning on every publish while more than this many await their
    # PUBACK (10 by default). The downlink pump publishes a whole fetched batch at once,
    # so at a few hundred downlinks/s that warning fired for most publishes and formatting
    # it cost the bridge about a twelfth of its CPU. Warn only when publishes truly pile up.
    client.pending_calls_threshold = PENDING_PUBLISHES_WARNING
    return client


def enable_manual_ack(client: aiomqtt.Client) -> None:
    """Acknowledge QoS-1 messages only when we say so.

    aiomqtt 2.5 has no option for it (its PR #346 is open); the paho-mqtt 2.x client it
    wraps has ``manual_ack_set`` and ``ack(mid, qos)``. Reaching that client is the
    smallest way to get at-least-once from MQTT to Kafka while keeping aiomqtt's
    asyncio integration; it must happen before connecting, because a persistent
    session's queued messages arrive right after CONNACK.
    """
    client._client.manual_ack_set(True)


def ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    if message.qos > 0:
        client._client.ack(message.mid, message.qos)
