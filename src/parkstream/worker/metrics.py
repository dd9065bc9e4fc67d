"""Prometheus metrics of the stream worker."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class WorkerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.inputs = Counter(
            "parkstream_worker_inputs", "Inputs folded, by record type", ["type"], registry=r
        )
        self.outputs = Counter(
            "parkstream_worker_outputs", "Records emitted, by record type", ["type"], registry=r
        )
        self.rejected = Counter(
            "parkstream_worker_rejected", "Inputs sent to dead-letter", ["stage"], registry=r
        )
        self.routed = Counter(
            "parkstream_worker_routed", "Device events by routing outcome", ["outcome"], registry=r
        )
        self.fold_seconds = Histogram(
            "parkstream_worker_fold_seconds",
            "Time to fold one batch, per input",
            buckets=(1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2),
            registry=r,
        )
        self.batch_size = Histogram(
            "parkstream_worker_batch_size",
            "Inputs per processed batch",
            buckets=(1, 2, 5, 10, 50, 100, 500, 1000, 5000),
            registry=r,
        )
        self.spaces = Gauge("parkstream_worker_spaces", "Bays in the local state table", registry=r)
        self.devices = Gauge(
            "parkstream_worker_registry_devices", "Devices in the local registry table", registry=r
        )
        self.ticks = Counter("parkstream_worker_ticks", "Tick commands emitted", registry=r)
        self.lag = Gauge(
            "parkstream_worker_consumer_lag",
            "Records not yet read per assigned partition: the high watermark of the last fetch "
            "response minus the next offset to read",
            ["topic", "partition"],
            registry=r,
        )
