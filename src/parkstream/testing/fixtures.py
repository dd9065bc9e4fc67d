"""pytest fixtures backed by the services harness (:mod:`parkstream.harness`).

- ``services`` (session): the harness, started once per test session. Services
  named by ``PARKSTREAM_KAFKA_BOOTSTRAP`` / ``PARKSTREAM_DATABASE_URL`` /
  ``PARKSTREAM_MQTT_URL`` are used as they are; the others are started and
  stopped again at the end of the session. A service that cannot be provided
  fails the tests using it with the harness's explanation (nothing is skipped).
- ``kafka_bootstrap``, ``database_url``, ``mqtt_url`` (session): the three URLs.
- ``unique_topic_prefix`` (per test): a prefix for Kafka topics, consumer
  groups, Faust app ids and MQTT topics that no other test (or run) shares.
- ``settings`` (per test): :class:`parkstream.config.Settings` with
  ``profile="test"``, pointing at the services, ``topic_prefix`` set to the
  test's unique prefix.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from parkstream.config import Settings
from parkstream.harness import HarnessError, Services, ServicesHarness


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    harness = ServicesHarness(os.environ)
    try:
        started = harness.start()
    except HarnessError as exc:
        pytest.fail(f"the services harness could not provide the services: {exc}", pytrace=False)
    try:
        yield started
    finally:
        harness.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(services: Services) -> str:
    return services.kafka_bootstrap


@pytest.fixture(scope="session")
def database_url(services: Services) -> str:
    return services.database_url


@pytest.fixture(scope="session")
def mqtt_url(services: Services) -> str:
    return services.mqtt_url


@pytest.fixture
def unique_topic_prefix(request: pytest.FixtureRequest) -> str:
    """``t-<test name>-<random>``: letters, digits and dashes only."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:40].rstrip("-")
    return f"t-{name}-{secrets.token_hex(4)}"


@pytest.fixture
def settings(services: Services, unique_topic_prefix: str) -> Settings:
    return Settings(
        profile="test",
        kafka_bootstrap=services.kafka_bootstrap,
        database_url=SecretStr(services.database_url),
        mqtt_url=services.mqtt_url,
        topic_prefix=unique_topic_prefix,
    )
