"""Prometheus metrics of the bridge, on a registry of its own (one per bridge instance)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class BridgeMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages = Counter(
            "parkstream_bridge_mqtt_messages",
            "MQTT messages received, by ChirpStack event and outcome",
            ["event", "outcome"],
            registry=r,
        )
        self.produced = Counter(
            "parkstream_bridge_records_produced",
            "Records produced to Kafka, by topic",
            ["topic"],
            registry=r,
        )
        self.rejected = Counter(
            "parkstream_bridge_rejected",
            "Messages sent to the dead-letter topic, by reason",
            ["reason"],
            registry=r,
        )
        self.latency = Histogram(
            "parkstream_bridge_mqtt_to_kafka_seconds",
            "From receiving an MQTT message to Kafka acknowledging what it produced",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.reconnects = Counter(
            "parkstream_bridge_reconnects",
            "Reconnections after losing a broker",
            ["broker"],
            registry=r,
        )
        self.downlinks = Counter(
            "parkstream_bridge_downlinks",
            "Downlink commands, by outcome (published, rejected)",
            ["outcome"],
            registry=r,
        )
        self.in_flight = Gauge(
            "parkstream_bridge_in_flight",
            "MQTT messages received and not yet acknowledged",
            registry=r,
        )
