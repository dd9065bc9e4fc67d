"""Prometheus metrics of the projector."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class ProjectorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.records = Counter(
            "parkstream_projector_records",
            "Records read from space-events and device-events",
            registry=r,
        )
        self.events = Counter(
            "parkstream_projector_events", "Events applied by at least one projection", registry=r
        )
        self.rows = Counter(
            "parkstream_projector_rows", "Rows merged or inserted, by table", ["table"], registry=r
        )
        self.rejected = Counter(
            "parkstream_projector_rejected",
            "Records sent to the dead-letter topic, by reason",
            ["reason"],
            registry=r,
        )
        self.resyncs = Counter(
            "parkstream_projector_resyncs",
            "Partitions re-read from the offsets stored in PostgreSQL",
            registry=r,
        )
        self.batch_seconds = Histogram(
            "parkstream_projector_batch_seconds",
            "Time to apply one batch (one transaction)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.batch_size = Histogram(
            "parkstream_projector_batch_size",
            "Records per batch",
            buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000),
            registry=r,
        )
        self.lag = Gauge(
            "parkstream_projector_lag",
            "Records behind the fetch high-watermark, by topic and partition",
            ["topic", "partition"],
            registry=r,
        )
