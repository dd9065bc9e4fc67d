"""Settings: environment, *_FILE secrets, profiles."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from parkstream.config import Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("PARKSTREAM_"):
            monkeypatch.delenv(name)


def test_defaults_listen_on_loopback_only() -> None:
    settings = Settings()
    assert settings.api_host == "127.0.0.1"
    assert settings.profile == "production"
    assert settings.effective_log_format == "json"


def test_environment_variables_with_the_prefix_configure_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARKSTREAM_KAFKA_BOOTSTRAP", "10.0.0.1:9093")
    monkeypatch.setenv("PARKSTREAM_PROFILE", "dev")
    settings = load_settings()
    assert settings.kafka_bootstrap == "10.0.0.1:9093"
    assert settings.is_dev_profile
    assert settings.effective_log_format == "console"


def test_a_secret_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "db"
    secret.write_text("postgresql://app:s3cret@db:5432/parkstream\n")
    monkeypatch.setenv("PARKSTREAM_DATABASE_URL_FILE", str(secret))
    settings = load_settings()
    assert settings.database_url.get_secret_value() == "postgresql://app:s3cret@db:5432/parkstream"
    assert "s3cret" not in repr(settings)


def test_the_environment_wins_over_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file")
    monkeypatch.setenv("PARKSTREAM_MQTT_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("PARKSTREAM_MQTT_PASSWORD", "from-env")
    settings = load_settings()
    assert settings.mqtt_password is not None
    assert settings.mqtt_password.get_secret_value() == "from-env"


def test_an_unreadable_secret_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARKSTREAM_KAFKA_SASL_PASSWORD_FILE", "/nonexistent/secret")
    with pytest.raises(ValueError, match="PARKSTREAM_KAFKA_SASL_PASSWORD_FILE"):
        load_settings()


def test_sasl_needs_a_username() -> None:
    with pytest.raises(ValidationError, match="kafka_sasl_username"):
        Settings(kafka_security_protocol="SASL_SSL")


def test_topic_names_carry_the_prefix() -> None:
    assert Settings(topic_prefix="acme").topic("space-events.v1") == "acme.space-events.v1"


def test_only_the_dev_profiles_shorten_the_downlink_consumers_fetch_wait() -> None:
    from parkstream.kafka_profile import aiokafka_consumer_kwargs, latency_consumer_overrides

    dev = Settings(profile="dev")
    assert (
        aiokafka_consumer_kwargs(dev, **latency_consumer_overrides(dev))["fetch_max_wait_ms"] == 5
    )
    production = Settings(profile="production")
    assert latency_consumer_overrides(production) == {}
    assert "fetch_max_wait_ms" not in aiokafka_consumer_kwargs(production)


def test_topics_get_the_catalogues_replicas_one_in_dev_or_as_set() -> None:
    from parkstream.catalogue import for_profile, topic_spec

    spec = topic_spec("space-events.v1")
    assert spec.replication_factor == 3
    assert spec.config["min.insync.replicas"] == "2"
    assert for_profile(spec, Settings()) == spec
    for settings in (Settings(profile="dev"), Settings(kafka_replication_factor=1)):
        one = for_profile(spec, settings)
        assert (one.replication_factor, one.config["min.insync.replicas"]) == (1, "1")
        assert one.partitions == spec.partitions
    five = for_profile(spec, Settings(kafka_replication_factor=5))
    assert (five.replication_factor, five.config["min.insync.replicas"]) == (5, "2")
    with pytest.raises(ValidationError, match="kafka_replication_factor"):
        Settings(kafka_replication_factor=0)


def test_the_worker_creates_its_changelogs_with_the_same_replicas(tmp_path: Path) -> None:
    from parkstream.worker.app import create_worker

    for settings, replicas in (
        (Settings(), 3),
        (Settings(profile="test"), 1),
        (Settings(kafka_replication_factor=1), 1),
    ):
        worker = create_worker(settings, datadir=tmp_path, ticks=False)
        assert worker.app.conf.topic_replication_factor == replicas
