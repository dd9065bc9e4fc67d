"""Kafka client settings per profile: aiokafka keyword arguments and Faust app settings.

Security (``kafka_security_protocol``, SASL mechanism/username/password, TLS
with ``kafka_ssl_cafile``) applies in every profile.

The ``dev``/``test`` profiles also work around the quirks of the embedded
Kafka-protocol broker (Tansu, see architecture.md); ``production`` gets none
of these:

- one record per producer batch (aiokafka ``max_batch_size=1``, Faust
  ``producer_max_batch_size=1``): with multi-record batches the broker reports
  a wrong end offset from ListOffsets and Faust's changelog recovery stops
  early, silently losing the tail of a table;
- no idempotent producer (InitProducerId fails against it): ``enable_idempotence``
  off; production producers are idempotent (``acks="all"`` in both);
- a short consumer group session (10 s; the broker holds a join for half the
  session timeout, so this also keeps start-up and rebalances fast) and, for
  plain aiokafka consumers, a 50 ms fetch max wait so tests see records quickly;
- a 5 ms fetch max wait for the worker's Faust consumer
  (:func:`faust_consumer_fetch_max_wait_ms`): the broker answers a fetch only
  when its wait is over, not when a record arrives, so every record waits for
  the rest of the pending wait. Faust hard-codes its consumer's
  ``fetch_max_wait_ms`` (1500 ms) and has no setting for it; the worker's
  consumer (``parkstream.worker.consumer``) replaces it. Production keeps
  Faust's 1500 ms: Apache Kafka answers a fetch as soon as data is there.

Measured with this broker, not worked around here: a group's first generation
is 0 (Kafka starts at 1), and aiokafka sends LeaveGroup only for generation > 0,
so the first member of a group leaves without telling the broker; the next
member to join waits until that member's session times out (~session timeout)
plus one more join delay (half the session timeout).

Faust setting names are those of faust-streaming 0.15 (``faust/types/settings/settings.py``).
"""

from __future__ import annotations

import ssl
from typing import Any

from parkstream.config import Settings

DEV_SESSION_TIMEOUT_S = 10
DEV_FETCH_MAX_WAIT_MS = 50
DEV_FAUST_FETCH_MAX_WAIT_MS = 5


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS context for SSL and SASL_SSL (CA from ``kafka_ssl_cafile``, else the system's)."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)


def aiokafka_security_kwargs(settings: Settings) -> dict[str, Any]:
    """``security_protocol``, ``ssl_context`` and SASL arguments for aiokafka clients."""
    kwargs: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = kafka_ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        kwargs.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            # aiokafka uses the *_plain_* arguments for PLAIN and SCRAM alike.
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=password.get_secret_value() if password else None,
        )
    return kwargs


def aiokafka_client_kwargs(settings: Settings) -> dict[str, Any]:
    """Bootstrap servers and security: what every aiokafka client (admin too) needs."""
    return {"bootstrap_servers": settings.kafka_bootstrap, **aiokafka_security_kwargs(settings)}


def aiokafka_producer_kwargs(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``aiokafka.AIOKafkaProducer``; ``overrides`` win."""
    kwargs = aiokafka_client_kwargs(settings)
    kwargs["acks"] = "all"
    if settings.is_dev_profile:
        kwargs.update(enable_idempotence=False, max_batch_size=1)
    else:
        kwargs["enable_idempotence"] = True
    kwargs.update(overrides)
    return kwargs


def aiokafka_consumer_kwargs(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``aiokafka.AIOKafkaConsumer``; ``overrides`` win
    (``group_id``, ``auto_offset_reset``, ``enable_auto_commit`` are the caller's)."""
    kwargs = aiokafka_client_kwargs(settings)
    if settings.is_dev_profile:
        kwargs.update(
            session_timeout_ms=DEV_SESSION_TIMEOUT_S * 1000,
            heartbeat_interval_ms=3000,
            fetch_max_wait_ms=DEV_FETCH_MAX_WAIT_MS,
        )
    kwargs.update(overrides)
    return kwargs


def faust_credentials(settings: Settings) -> Any:
    """``faust.SASLCredentials`` / ``faust.SSLCredentials`` for Faust, or None for PLAINTEXT."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    import faust  # only processes that use Faust pay for importing it

    context = kafka_ssl_context(settings)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    password = settings.kafka_sasl_password
    # SASLCredentials means SASL_SSL exactly when it gets an ssl_context.
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        ssl_context=context,
        mechanism=settings.kafka_sasl_mechanism,
    )


def faust_settings(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``faust.App`` (besides its id); ``overrides`` win."""
    conf: dict[str, Any] = {
        "broker": [f"kafka://{address.strip()}" for address in settings.kafka_bootstrap.split(",")],
        "processing_guarantee": "at_least_once",
        "producer_acks": -1,
    }
    credentials = faust_credentials(settings)
    if credentials is not None:
        conf["broker_credentials"] = credentials
    if settings.is_dev_profile:
        conf.update(
            producer_max_batch_size=1,
            broker_session_timeout=DEV_SESSION_TIMEOUT_S,
        )
    conf.update(overrides)
    return conf


def latency_consumer_overrides(settings: Settings) -> dict[str, Any]:
    """For consumers on the uplink-to-light path (the bridge's downlinks): the test
    broker holds each fetch for its full wait, so in dev/test they wait 5 ms, like the
    worker's Faust consumer; production keeps aiokafka's default (the broker answers as
    soon as records arrive)."""
    return {"fetch_max_wait_ms": DEV_FAUST_FETCH_MAX_WAIT_MS} if settings.is_dev_profile else {}


def faust_consumer_fetch_max_wait_ms(settings: Settings) -> int | None:
    """``fetch_max_wait_ms`` for a Faust app's consumer, or None to keep Faust's (1500 ms)."""
    return DEV_FAUST_FETCH_MAX_WAIT_MS if settings.is_dev_profile else None
