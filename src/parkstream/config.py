"""One settings class for every parkstream process.

Values come from arguments, then ``PARKSTREAM_*`` environment variables, then
``PARKSTREAM_*_FILE`` variables naming a file that holds the value (for secrets
mounted by Docker or Kubernetes), then the defaults below. Nothing here is read
at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "PARKSTREAM_"

Profile = Literal["production", "dev", "test"]


class FileSecretsSource(PydanticBaseSettingsSource):
    """``PARKSTREAM_<NAME>_FILE=/run/secrets/x`` sets ``<name>`` to the file's content."""

    def __init__(self, settings_cls: type[BaseSettings], environ: dict[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        var = f"{ENV_PREFIX}{field_name.upper()}_FILE"
        path = self._environ.get(var)
        if not path:
            return None, field_name, False
        try:
            content = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"{var}={path!r} cannot be read: {exc.strerror}") from exc
        return content.rstrip("\r\n"), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class Settings(BaseSettings):
    """Configuration of every parkstream process (see README, "Configuration")."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        frozen=True,
        case_sensitive=False,
    )

    profile: Profile = Field(
        default="production",
        description="production, or dev/test: the latter turn on workarounds for the "
        "embedded Kafka-protocol test broker and readable console logs.",
    )

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_replication_factor: int | None = Field(
        default=None,
        ge=1,
        description="Replicas of every topic parkstream creates (the catalogue's and the "
        "worker's changelogs); unset: the catalogue's (3), or 1 in the dev and test profiles. "
        "Set 1 for a single broker.",
    )
    topic_prefix: str = "parkstream"

    # PostgreSQL
    database_url: SecretStr = SecretStr("postgresql://127.0.0.1:5432/parkstream")

    # MQTT
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_ca_file: Path | None = None

    mqtt_client_id: str = Field(
        default="parkstream-bridge",
        description="Stable client id: the broker keeps the persistent session under it.",
    )
    mqtt_subscriptions: list[str] = Field(
        default_factory=lambda: ["application/+/device/+/event/+"],
        description="ChirpStack event topic filters (v3 before 3.11: application/+/device/+/+).",
    )
    mqtt_shared_group: str | None = Field(
        default=None,
        description="Subscribe as $share/<group>/<filter> so several bridges split the load.",
    )
    mqtt_keepalive_s: int = Field(default=30, ge=5, le=3600)

    # Bridge
    downlink_dialect: Literal["v4", "v3"] = "v4"
    downlink_application_id: str | None = Field(
        default=None,
        description="ChirpStack application for downlinks to devices the bridge has not heard.",
    )
    downlink_expiry: bool = Field(
        default=True, description="Send expiresAt (ChirpStack >= 4.14) with each downlink."
    )
    dedup_window: int = Field(default=100_000, ge=0)
    dedup_max_age_s: int = Field(default=3600, ge=1)
    state_dir: Path = Field(
        default=Path(".parkstream-state"),
        description="Where the bridge keeps its dedup window and device->application map.",
    )
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Prometheus endpoint; unset = off."
    )

    # HTTP API
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    api_cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (CORS); empty = none.",
    )
    api_rate_read_key: str = Field(
        default="1200/minute", description="Reads per API key (limits notation)."
    )
    api_rate_read_tenant: str = Field(default="6000/minute", description="Reads per tenant.")
    api_rate_write_key: str = Field(default="120/minute", description="Writes per API key.")
    api_rate_write_tenant: str = Field(default="600/minute", description="Writes per tenant.")
    api_rate_storage: str = Field(
        default="memory://",
        description="limits storage URI; memory:// counts per API process, "
        "redis://host:port shares the counts between replicas.",
    )
    api_command_wait_s: float = Field(
        default=5.0,
        ge=0.0,
        le=60.0,
        description="How long a reservation request waits for the fold's decision "
        "before answering 202 with a status link.",
    )
    api_key_cache_s: float = Field(
        default=5.0,
        ge=0.0,
        le=300.0,
        description="How long a verified API key is trusted without reading it again "
        "(a revocation takes effect within this time).",
    )

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console", "auto"] = "auto"

    @model_validator(mode="after")
    def _check_sasl(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL") and not self.kafka_sasl_username:
            raise ValueError("kafka_sasl_username is required with a SASL security protocol")
        return self

    @property
    def is_dev_profile(self) -> bool:
        """The embedded test broker's quirks are worked around only in these profiles."""
        return self.profile in ("dev", "test")

    def replication_factor(self, catalogue: int) -> int:
        """Replicas of a topic the catalogue gives ``catalogue``: the setting, else 1 in the
        dev and test profiles (one embedded broker), else the catalogue's."""
        if self.kafka_replication_factor is not None:
            return self.kafka_replication_factor
        return 1 if self.is_dev_profile else catalogue

    @property
    def effective_log_format(self) -> Literal["json", "console"]:
        if self.log_format != "auto":
            return self.log_format
        return "console" if self.is_dev_profile else "json"

    def topic(self, name: str) -> str:
        """Full topic name for a catalogue entry, e.g. ``device-events.v1``."""
        return f"{self.topic_prefix}.{name}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            FileSecretsSource(settings_cls, dict(os.environ)),
        )


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment; keyword arguments win."""
    return Settings(**overrides)
