"""End to end: a sensor uplink on MQTT to the light's downlink on MQTT, through the real processes.

The path measured is the one a car arriving takes in production::

    ChirpStack event/up --MQTT--> parkstream bridge --device-events--> parkstream worker
        --downlinks--> parkstream bridge --MQTT--> ChirpStack command/down

``parkstream bridge`` and ``parkstream worker`` run as child processes started from the CLI
(as ``parkstream dev`` starts them), in the dev profile, against Tansu from the services
harness and a private Mosquitto (:func:`bench.common.start_brokers`). ``--bays`` bays of
the dev seed (:mod:`parkstream.dev.seed`) each have a Bosch TPS110 sensor and a Kuando light.

The probe (this process, two paho clients) first reports every bay free and waits until
every light was sent the free colour (this also waits for the processes to be ready);
then it publishes ``--rate`` ChirpStack v4 uplinks a second for ``--seconds``, at QoS 1,
round robin over the bays, each flipping its bay (occupied, free, occupied, ...), so each
one makes the worker request a new colour. Per uplink, the latency is from the publish
call to the arrival of its ``command/down`` at the probe's subscriber: the n-th downlink of
a light with a bay's n-th expected colour (repeated command ids are skipped). Percentiles
are of the uplinks that got their downlink; the others are reported as missing.

Baselines in the same run, on the same brokers, with the same uplinks at the same rate:

- ``raw``: two minimal aiokafka/aiomqtt processes shaped like the pipeline: an edge
  (MQTT -> ``device-events`` topic, and ``downlinks`` topic -> MQTT ``command/down``) and a
  middle (``device-events`` -> ``downlinks``), no parsing, aiokafka's producer defaults
  (no linger, 16 KiB batches) and the dev profile's consumer settings;
- ``mqtt``: the edge alone, republishing each uplink to ``command/down`` at once: the
  MQTT round trip and the probe's own share.

The table's p99 row compares parkstream's p99 to the raw loop's; its goal is p99 <= 50 ms.
The rate row is the downlinks/s parkstream delivered against the uplinks/s offered.

``--fetch-wait-ms MS`` is a what-if: the test broker answers a fetch only when its
``fetch_max_wait_ms`` is over (not when a record arrives); the dev profile gives the
worker's Faust consumer 5 ms and plain aiokafka consumers (the bridge's downlink consumer,
the raw loop) 50 ms; the option gives every Kafka consumer of the child processes ``MS``
instead (:data:`FETCH_WAIT_PATCH`, a ``sitecustomize`` on their path; the source is not
changed).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import math
import os
import secrets
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.common import (
    MQTT_CHOICES,
    Brokers,
    CpuSnapshot,
    Result,
    histogram_quantile,
    start_brokers,
)
from parkstream.config import Settings
from parkstream.domain.display import DEFAULT_POLICY
from parkstream.domain.states import SpaceState
from parkstream.harness.process import ManagedProcess, free_port, spawn
from parkstream.logging import configure_logging
from parkstream.simulate.lot import DEFAULT_APPLICATION_ID, LotConfig
from parkstream.simulate.messages import SimDevice, dedup_id, uplink

NAME = "e2e"
LIMIT_P99_MS = 50.0  # the goal: p99 <= 50 ms at 500 uplinks/s
GOAL_RATE = 0.99  # downlinks/s delivered per uplink/s offered
UP_FILTER = "application/+/device/+/event/up"
DOWN_FILTER = "application/+/device/+/command/down"
FREE = DEFAULT_POLICY.frame_for(SpaceState.FREE).payload
OCCUPIED = DEFAULT_POLICY.frame_for(SpaceState.OCCUPIED).payload
TENANT = "bench"
WARMUP_RESEND_S = 10.0
QUIET_S = 3.0
# The baselines' producers: aiokafka's defaults (no linger, 16 KiB batches) instead of the dev
# profile's one record per batch, which only Faust's changelogs need (as bridge and worker do).
RAW_PRODUCER: dict[str, Any] = {
    "linger_ms": 0,
    "max_batch_size": 16384,
}  # after the last uplink: stop waiting once no downlink came for this long


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=500.0, help="uplinks/s offered (500)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds (20)")
    parser.add_argument("--bays", type=int, default=1000, help="bays, one sensor each (1000)")
    parser.add_argument(
        "--baselines",
        default="raw,mqtt",
        help="comma-separated baselines to run first: raw, mqtt, or none (raw,mqtt)",
    )
    parser.add_argument(
        "--mqtt",
        choices=MQTT_CHOICES,
        default="tuned",
        help="tuned: private Mosquitto with max_inflight_messages 1000 (default); "
        "harness: the harness's Mosquitto as it is",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=180.0,
        metavar="S",
        help="give up when the lights have not all turned free after S seconds (180)",
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=30.0,
        metavar="S",
        help="wait at most S seconds after the last uplink for downlinks (30)",
    )
    parser.add_argument("--logs", type=Path, metavar="DIR", help="keep the processes' logs in DIR")
    parser.add_argument(
        "--fetch-wait-ms",
        type=int,
        metavar="MS",
        help="what-if: every Kafka consumer (bridge, worker and the raw loop) waits at most MS "
        "for a fetch, patched in when each process starts (the source is not changed); "
        "in the dev profile the worker's Faust consumer waits 5 ms, aiokafka consumers "
        "50 ms, and Tansu answers a waiting fetch only when its wait is over",
    )


# --- latency figures -------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of ``values``: a value that was measured."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Sent:
    """One uplink of the measured phase: its bay, the colour it should cause, when it went."""

    bay: int
    frame: bytes
    at: float
    dedup_id: str


@dataclass(frozen=True)
class Received:
    """One ``command/down`` message as the probe's subscriber got it."""

    at: float
    topic: str
    payload: bytes


@dataclass(frozen=True)
class Matched:
    latencies: list[float]  # seconds, one per uplink that got its downlink
    missing: int  # uplinks without their downlink
    extra: int  # downlinks that answered no uplink (resends, other colours)
    repeated: int  # downlinks whose command id was seen before

    def quantile_ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


def match_by_colour(
    sent: Sequence[Sent], received: Sequence[Received], lights: Mapping[str, int]
) -> Matched:
    """Per bay, the n-th downlink showing an expected colour answers the earliest uplink
    still unanswered that expects that colour; uplinks skipped over are missing."""
    queues: dict[int, list[Sent]] = defaultdict(list)
    for s in sent:
        queues[s.bay].append(s)
    position: dict[int, int] = defaultdict(int)
    seen: set[str] = set()
    latencies: list[float] = []
    extra = repeated = 0
    for r in received:
        doc = orjson.loads(r.payload)
        command_id = doc.get("id", "")
        if command_id and command_id in seen:
            repeated += 1
            continue
        seen.add(command_id)
        bay = lights.get(doc.get("devEui", ""))
        frame = _frame(doc)
        queue = queues.get(bay, []) if bay is not None else []
        start = position[bay] if bay is not None else 0
        hit = next(
            (
                i
                for i in range(start, len(queue))
                if queue[i].frame == frame and queue[i].at <= r.at
            ),
            None,
        )
        if bay is None or hit is None:
            extra += 1
            continue
        latencies.append(r.at - queue[hit].at)
        position[bay] = hit + 1
    return Matched(latencies, len(sent) - len(latencies), extra, repeated)


def match_by_id(sent: Sequence[Sent], received: Sequence[Received]) -> Matched:
    """The echo baselines send each uplink back as it came: match on its deduplicationId."""
    when = {s.dedup_id: s.at for s in sent}
    latencies: list[float] = []
    extra = repeated = 0
    done: set[str] = set()
    for r in received:
        key = orjson.loads(r.payload).get("deduplicationId", "")
        if key in done:
            repeated += 1
        elif key in when:
            done.add(key)
            latencies.append(r.at - when[key])
        else:
            extra += 1
    return Matched(latencies, len(sent) - len(latencies), extra, repeated)


# --- the probe: publishes uplinks, receives downlinks -------------------------------------------


class Probe:
    """Two paho clients of this process: a QoS-1 publisher and a ``command/down`` subscriber.

    Times are ``time.monotonic()``; the subscriber only appends what arrives (parsed later)."""

    def __init__(self, brokers: Brokers, name: str) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.received: list[Received] = []
        self._subscribed = threading.Event()
        self.publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-pub")
        self.publisher.max_inflight_messages_set(1000)
        self.publisher.max_queued_messages_set(0)
        self.subscriber = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-sub")
        self.subscriber.on_message = self._on_message
        self.subscriber.on_subscribe = lambda *_: self._subscribed.set()
        self.brokers = brokers

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        self.received.append(Received(time.monotonic(), message.topic, message.payload))

    def __enter__(self) -> Probe:
        for client in (self.publisher, self.subscriber):
            client.connect(self.brokers.mqtt_host, self.brokers.mqtt_port)
            client.loop_start()
        self.subscriber.subscribe(DOWN_FILTER, qos=1)
        if not self._subscribed.wait(10):
            raise RuntimeError("the probe's subscription was not acknowledged")
        return self

    def __exit__(self, *exc: object) -> None:
        for client in (self.publisher, self.subscriber):
            client.disconnect()
            client.loop_stop()

    def publish(self, topic: str, payload: bytes) -> float:
        at = time.monotonic()
        self.publisher.publish(topic, payload, qos=1)
        return at


@dataclass
class Load:
    """The uplinks of one run: bay ``i % bays`` flips at every ``bays``-th uplink."""

    bays: int
    run_id: str
    lot: LotConfig = field(init=False)
    sensors: list[SimDevice] = field(init=False)
    f_cnt: list[int] = field(init=False)
    ids: dict[str, int] = field(default_factory=dict)  # deduplicationId -> bay, of every uplink

    def __post_init__(self) -> None:
        self.lot = LotConfig(bays=self.bays)
        self.sensors = [
            SimDevice(
                self.lot.sensor_eui(i), application_id=DEFAULT_APPLICATION_ID, name=f"bay-{i}"
            )
            for i in range(self.bays)
        ]
        self.f_cnt = [0] * self.bays

    @property
    def lights(self) -> dict[str, int]:
        return {self.lot.light_eui(i): i for i in range(self.bays)}

    def uplink(self, bay: int, occupied: bool) -> tuple[str, bytes, str]:
        """(topic, body, deduplicationId) of a TPS110 parking-status frame, timed now."""
        device = self.sensors[bay]
        f_cnt = self.f_cnt[bay]
        self.f_cnt[bay] += 1
        dedup = dedup_id(device, f_cnt, self.run_id)
        self.ids[dedup] = bay
        body = uplink(
            device,
            f_port=1,
            payload=bytes([int(occupied)]),
            f_cnt=f_cnt,
            time=datetime.now(UTC),
            deduplication_id=dedup,
        )
        return device.topic("up"), body, dedup


@dataclass(frozen=True)
class Paced:
    sent: list[Sent]
    seconds: float  # first to last publish
    late_max: float  # the worst delay of a publish behind its schedule


def publish_paced(probe: Probe, load: Load, rate: float, count: int) -> Paced:
    """``count`` uplinks at ``rate``/s, round robin over the bays, each flipping its bay."""
    sent: list[Sent] = []
    late_max = 0.0
    start = time.monotonic()
    for i in range(count):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            late_max = max(late_max, -delay)
        bay, flip = i % load.bays, i // load.bays
        occupied = flip % 2 == 0  # every bay was free before the measured phase
        topic, body, dedup = load.uplink(bay, occupied)
        at = probe.publish(topic, body)
        sent.append(Sent(bay, OCCUPIED if occupied else FREE, at, dedup))
    return Paced(sent, sent[-1].at - sent[0].at if sent else 0.0, late_max)


# --- child processes ---------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


@dataclass
class Children:
    """The processes of one run, stopped (SIGTERM, then SIGKILL) on exit."""

    workdir: Path
    env: dict[str, str]
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    def start(self, name: str, argv: Sequence[str]) -> None:
        self.processes[name] = spawn(
            name, argv, cwd=self.workdir, log_path=self.workdir / f"{name}.log", env=self.env
        )

    def check(self) -> None:
        for name, process in self.processes.items():
            if process.exited():
                raise RuntimeError(f"{name} exited early; its log ends:\n{process.log_tail(20)}")

    def cpu(self) -> dict[str, float]:
        return {name: _cpu_seconds(p.pid) for name, p in self.processes.items()}

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop(timeout=20)


@contextlib.contextmanager
def children(workdir: Path, env: dict[str, str], keep: Path | None) -> Iterator[Children]:
    group = Children(workdir, env)
    try:
        yield group
    finally:
        group.stop()
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for log in workdir.glob("*.log"):
                (keep / log.name).write_bytes(log.read_bytes())


#: ``sitecustomize`` of the ``--fetch-wait-ms`` what-if: every aiokafka consumer of the
#: process gets the given ``fetch_max_wait_ms``; the worker's Faust consumer, which sets
#: its wait after creating its aiokafka consumer, through the profile's constant.
FETCH_WAIT_PATCH = """\
import aiokafka

import parkstream.kafka_profile

_init = aiokafka.AIOKafkaConsumer.__init__


def _patched(self, *topics, **kwargs):
    kwargs["fetch_max_wait_ms"] = {ms}
    _init(self, *topics, **kwargs)


aiokafka.AIOKafkaConsumer.__init__ = _patched
parkstream.kafka_profile.DEV_FAUST_FETCH_MAX_WAIT_MS = {ms}
"""


def _python_path(*dirs: Path) -> str:
    """``PYTHONPATH`` with ``dirs`` ahead of what this process was given."""
    return os.pathsep.join(p for p in (*map(str, dirs), os.environ.get("PYTHONPATH", "")) if p)


def _fetch_wait_patch(workdir: Path, ms: int | None) -> list[Path]:
    """The directory holding the ``--fetch-wait-ms`` patch, if asked for (else nothing)."""
    if ms is None:
        return []
    directory = workdir / "patch"
    directory.mkdir()
    (directory / "sitecustomize.py").write_text(FETCH_WAIT_PATCH.format(ms=int(ms)))
    return [directory]


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKSTREAM_")}
    return {**env, **extra}


# --- metrics of the processes ------------------------------------------------------------------

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def histogram_between(before: Samples, after: Samples, name: str) -> list[tuple[float, float]]:
    """Cumulative ``(le, count)`` buckets of a histogram's observations between two scrapes."""
    buckets = [
        (float(dict(labels)["le"]), value - before.get((sample, labels), 0.0))
        for (sample, labels), value in after.items()
        if sample == f"{name}_bucket"
    ]
    return sorted(buckets)


def mean_between(before: Samples, after: Samples, name: str) -> float | None:
    def delta(suffix: str) -> float:
        key = (f"{name}_{suffix}", ())
        return after.get(key, 0.0) - before.get(key, 0.0)

    count = delta("count")
    return delta("sum") / count if count > 0 else None


# --- one run -----------------------------------------------------------------------------------


@dataclass
class Run:
    kind: str  # "parkstream", "raw" or "mqtt"
    offered: float
    paced: Paced
    matched: Matched
    received_seconds: float  # first uplink to last matched downlink
    cpu_us: dict[str, float]  # CPU per uplink of each child process
    machine_busy: float | None
    details: list[str] = field(default_factory=list)
    fetch_wait_ms: int | None = None  # the --fetch-wait-ms what-if, if on

    @property
    def delivered_rate(self) -> float:
        n = len(self.matched.latencies)
        return n / self.received_seconds if self.received_seconds > 0 else 0.0

    def describe(self) -> str:
        m = self.matched
        sent = len(self.paced.sent)
        lines = [
            f"{self.kind:>10}: {sent} uplinks in {self.paced.seconds:.1f} s "
            f"({sent / max(self.paced.seconds, 1e-9):,.0f}/s offered {self.offered:,.0f}/s, "
            f"publisher at most {self.paced.late_max * 1000:.1f} ms behind schedule); "
            f"{len(m.latencies)} answered ({self.delivered_rate:,.0f}/s), {m.missing} missing, "
            f"{m.extra} extra, {m.repeated} repeated",
            f"{'':>10}  latency p50 {m.quantile_ms(0.5):.1f} ms, p90 {m.quantile_ms(0.9):.1f} ms, "
            f"p99 {m.quantile_ms(0.99):.1f} ms, max {m.quantile_ms(1.0):.1f} ms",
        ]
        cpu = ", ".join(f"{name} {us:.0f} us" for name, us in self.cpu_us.items())
        busy = f"; machine {self.machine_busy:.0%} busy" if self.machine_busy is not None else ""
        lines.append(f"{'':>10}  CPU per uplink: {cpu}{busy}")
        lines += [f"{'':>10}  {d}" for d in self.details]
        return "\n".join(lines)


def warm_up(
    what: str,
    probe: Probe,
    load: Load,
    answered: Callable[[Received], int | None],
    args: argparse.Namespace,
    group: Children,
) -> float:
    """Report every bay free until each got its answer (``answered`` names the bay a
    downlink answers); uplinks lost before the processes subscribed are sent again."""
    done: set[int] = set()
    seen = 0
    started = time.monotonic()
    next_send = started
    while len(done) < load.bays:
        group.check()
        for r in probe.received[seen:]:
            bay = answered(r)
            if bay is not None:
                done.add(bay)
        seen = len(probe.received)
        now = time.monotonic()
        if now - started > args.ready_timeout:
            raise RuntimeError(
                f"timed out after {args.ready_timeout:.0f} s waiting for {what} "
                f"({len(done)} of {load.bays} bays)"
            )
        if now >= next_send:
            for bay in sorted(set(range(load.bays)) - done):
                probe.publish(*load.uplink(bay, False)[:2])
            next_send = now + WARMUP_RESEND_S
        time.sleep(0.05)
    return time.monotonic() - started


def _frame(doc: Mapping[str, Any]) -> bytes:
    return base64.b64decode(doc.get("data", ""))


def _measure(
    kind: str,
    args: argparse.Namespace,
    probe: Probe,
    load: Load,
    group: Children,
    match: Callable[[Sequence[Sent], Sequence[Received]], Matched],
) -> Run:
    """The measured phase: paced uplinks, then wait for their downlinks."""
    count = max(1, round(args.rate * args.seconds))
    time.sleep(1.0)  # let stragglers of the warm-up arrive before the cut
    cut = len(probe.received)
    cpu_before, machine_before = group.cpu(), CpuSnapshot.now()
    # The probe must not pause itself while it stamps sends and arrivals: a full collection
    # here would be charged to the system measured. The run's records fit in memory.
    gc.collect()
    gc.disable()
    try:
        paced = publish_paced(probe, load, args.rate, count)
        last_count, last_change = len(probe.received), time.monotonic()
        deadline = time.monotonic() + args.drain
        while len(probe.received) - cut < count and time.monotonic() < deadline:
            time.sleep(0.05)
            if len(probe.received) != last_count:
                last_count, last_change = len(probe.received), time.monotonic()
            elif time.monotonic() - last_change > QUIET_S:
                break
    finally:
        gc.enable()
    cpu_after, machine_after = group.cpu(), CpuSnapshot.now()
    received = probe.received[cut:]
    matched = match(paced.sent, received)
    last = max((r.at for r in received), default=paced.sent[0].at)
    total = machine_after.machine_total - machine_before.machine_total
    busy = machine_after.machine_busy - machine_before.machine_busy
    return Run(
        kind,
        args.rate,
        paced,
        matched,
        last - paced.sent[0].at,
        {name: (cpu_after[name] - cpu_before[name]) / count * 1e6 for name in cpu_after},
        busy / total if total > 0 else None,
    )


def _echo_run(
    kind: str, args: argparse.Namespace, brokers: Brokers, tmp: Path, bench_id: str
) -> Run:
    """The raw loop (``raw``) or the MQTT round trip alone (``mqtt``)."""
    prefix = f"bench-{bench_id}-{kind}"
    settings = Settings(profile="dev", kafka_bootstrap=brokers.kafka_bootstrap, topic_prefix=prefix)
    if kind == "raw":
        from parkstream.catalogue import topic_spec
        from parkstream.topics_admin import apply_topics

        specs = (topic_spec("device-events.v1"), topic_spec("downlinks.v1"))
        asyncio.run(apply_topics(settings, specs))
    workdir = tmp / kind
    workdir.mkdir()
    common = [
        *("--kafka", brokers.kafka_bootstrap, "--prefix", prefix),
        *("--mqtt-host", brokers.mqtt_host, "--mqtt-port", str(brokers.mqtt_port)),
    ]
    load = Load(args.bays, f"{bench_id}-{kind}")
    # The baselines' processes run this module: the repository root goes on their path.
    root = Path(__file__).resolve().parents[1]
    patch = _fetch_wait_patch(workdir, args.fetch_wait_ms)
    env = _child_env({"PYTHONPATH": _python_path(*patch, root)})
    with children(workdir, env, args.logs and args.logs / kind) as group:
        module = [sys.executable, "-m", "bench.e2e"]
        group.start("edge", [*module, "edge", *common, *(["--direct"] if kind == "mqtt" else [])])
        if kind == "raw":
            group.start("middle", [*module, "middle", *common])
        with Probe(brokers, prefix) as probe:

            def echoed(r: Received) -> int | None:
                return load.ids.get(orjson.loads(r.payload).get("deduplicationId", ""))

            warm_up(f"the {kind} echo of every bay's uplink", probe, load, echoed, args, group)
            return _measure(kind, args, probe, load, group, match_by_id)


def _parkstream_run(args: argparse.Namespace, brokers: Brokers, tmp: Path, bench_id: str) -> Run:
    from parkstream.dev.seed import seed_commands, send_seed
    from parkstream.topics_admin import apply_topics

    prefix = f"bench-{bench_id}-parkstream"
    settings = Settings(profile="dev", kafka_bootstrap=brokers.kafka_bootstrap, topic_prefix=prefix)
    asyncio.run(apply_topics(settings))
    load = Load(args.bays, f"{bench_id}-parkstream")
    asyncio.run(send_seed(settings, seed_commands(load.lot, datetime.now(UTC), tenant=TENANT)))
    workdir = tmp / "parkstream"
    workdir.mkdir()
    ports = {"bridge": free_port(), "worker": free_port()}
    base = {
        "PARKSTREAM_PROFILE": "dev",
        "PARKSTREAM_KAFKA_BOOTSTRAP": brokers.kafka_bootstrap,
        "PARKSTREAM_MQTT_URL": brokers.mqtt_url,
        "PARKSTREAM_TOPIC_PREFIX": prefix,
        "PARKSTREAM_MQTT_CLIENT_ID": f"{prefix}-bridge",
        "PARKSTREAM_DOWNLINK_APPLICATION_ID": DEFAULT_APPLICATION_ID,
        "PARKSTREAM_STATE_DIR": str(workdir / "state"),
        "PARKSTREAM_LOG_FORMAT": "json",
    }
    if patch := _fetch_wait_patch(workdir, args.fetch_wait_ms):
        base["PYTHONPATH"] = _python_path(*patch)
    lights = load.lights
    with children(workdir, _child_env(base), args.logs and args.logs / "parkstream") as group:
        for name in ("bridge", "worker"):
            group.env["PARKSTREAM_METRICS_PORT"] = str(ports[name])
            group.start(name, [sys.executable, "-m", "parkstream", name])
        with Probe(brokers, prefix) as probe:

            def turned_free(r: Received) -> int | None:
                doc = orjson.loads(r.payload)
                return lights.get(doc.get("devEui", "")) if _frame(doc) == FREE else None

            ready = warm_up("every light to turn free", probe, load, turned_free, args, group)
            before = {name: scrape(port) for name, port in ports.items()}
            run = _measure(
                "parkstream",
                args,
                probe,
                load,
                group,
                lambda sent, received: match_by_colour(sent, received, lights),
            )
            after = {name: scrape(port) for name, port in ports.items()}
    run.fetch_wait_ms = args.fetch_wait_ms
    run.details = [f"ready (every light free) {ready:.1f} s after the processes started"]
    run.details += _stages(before, after)
    return run


def _stages(before: Mapping[str, Samples], after: Mapping[str, Samples]) -> list[str]:
    """What the processes' own metrics say about the measured phase."""
    lines = []
    b, a = before.get("bridge", {}), after.get("bridge", {})
    buckets = histogram_between(b, a, "parkstream_bridge_mqtt_to_kafka_seconds")
    p50, p99 = histogram_quantile(buckets, 0.5), histogram_quantile(buckets, 0.99)
    if p50 is not None and p99 is not None:
        lines.append(
            f"bridge MQTT->Kafka ack (its histogram): p50 {p50 * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms"
        )
    b, a = before.get("worker", {}), after.get("worker", {})
    size = mean_between(b, a, "parkstream_worker_batch_size")
    fold = mean_between(b, a, "parkstream_worker_fold_seconds")
    if size is not None:
        per = f", fold {fold * 1e6:.0f} us per input" if fold is not None else ""
        lines.append(f"worker batches: {size:.1f} inputs on average{per}")
    return lines


# --- the benchmark -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> list[Result]:
    configure_logging("WARNING", "console")
    baselines = [b for b in args.baselines.split(",") if b and b != "none"]
    if unknown := set(baselines) - {"raw", "mqtt"}:
        raise SystemExit(f"unknown baselines: {', '.join(sorted(unknown))}")
    bench_id = secrets.token_hex(3)
    with (
        tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp,
        start_brokers(args.mqtt) as brokers,
    ):
        print(f"brokers: {brokers.description}")
        print(
            f"load: {args.rate:,.0f} uplinks/s for {args.seconds:.0f} s over {args.bays} bays "
            f"(each bay flips every {args.bays / args.rate:.1f} s)"
        )
        if args.fetch_wait_ms is not None:
            print(f"what-if: every Kafka consumer's fetch_max_wait_ms is {args.fetch_wait_ms}")
        runs: dict[str, Run] = {}
        for kind in baselines:
            runs[kind] = _echo_run(kind, args, brokers, Path(tmp), bench_id)
            print(runs[kind].describe())
        runs["parkstream"] = _parkstream_run(args, brokers, Path(tmp), bench_id)
        print(runs["parkstream"].describe())
    return results(runs)


def results(runs: Mapping[str, Run]) -> list[Result]:
    """p99 against the raw loop's (limit 50 ms), and downlinks/s against uplinks/s offered."""
    ours = runs["parkstream"]
    raw = runs.get("raw")
    parts = [f"{len(ours.paced.sent)} uplinks at {ours.offered:,.0f}/s"]
    if ours.fetch_wait_ms is not None:
        parts.append(f"what-if: consumers' fetch_max_wait_ms {ours.fetch_wait_ms}")
    for kind in ("parkstream", "raw", "mqtt"):
        if kind in runs:
            m = runs[kind].matched
            parts.append(
                f"{kind} p50 {m.quantile_ms(0.5):.1f} / p99 {m.quantile_ms(0.99):.1f} / "
                f"max {m.quantile_ms(1.0):.1f} ms, {m.missing} missing"
            )
    return [
        Result(
            NAME,
            ours.matched.quantile_ms(0.99),
            "ms p99",
            raw.matched.quantile_ms(0.99) if raw is not None else None,
            note="; ".join(parts),
            limit=LIMIT_P99_MS,
        ),
        Result(NAME, ours.delivered_rate, "downlinks/s", ours.offered, GOAL_RATE),
    ]


# --- the baselines' processes ------------------------------------------------------------------


async def _edge(ns: argparse.Namespace) -> None:
    """MQTT ``event/up`` -> Kafka ``device-events`` (key: the MQTT topic); Kafka ``downlinks``
    -> MQTT ``command/down`` of the same device. ``--direct``: MQTT straight back."""
    import aiomqtt
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    from parkstream.kafka_profile import aiokafka_consumer_kwargs, aiokafka_producer_kwargs

    settings = Settings(profile="dev", kafka_bootstrap=ns.kafka, topic_prefix=ns.prefix)
    tasks: set[asyncio.Task[Any]] = set()

    def later(coro: Any) -> None:
        task = asyncio.create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def down_topic(up: str) -> str:
        return up.removesuffix("/event/up") + "/command/down"

    async with aiomqtt.Client(ns.mqtt_host, ns.mqtt_port, identifier=f"{ns.prefix}-edge") as client:
        await client.subscribe(UP_FILTER, qos=1)
        if ns.direct:
            print("ready", flush=True)
            async for message in client.messages:
                later(client.publish(down_topic(str(message.topic)), message.payload, qos=1))
            return
        producer = AIOKafkaProducer(**aiokafka_producer_kwargs(settings, **RAW_PRODUCER))
        consumer = AIOKafkaConsumer(
            **aiokafka_consumer_kwargs(settings, group_id=None, auto_offset_reset="earliest")
        )
        await producer.start()
        await consumer.start()
        downlinks = settings.topic("downlinks.v1")
        partitions = consumer.partitions_for_topic(downlinks) or set()
        consumer.assign([TopicPartition(downlinks, p) for p in partitions])
        device_events = settings.topic("device-events.v1")

        async def up() -> None:
            async for message in client.messages:
                await producer.send(device_events, message.payload, key=str(message.topic).encode())

        async def down() -> None:
            while True:
                batch = await consumer.getmany(timeout_ms=100)
                for records in batch.values():
                    for rec in records:
                        later(client.publish(down_topic(rec.key.decode()), rec.value, qos=1))

        print("ready", flush=True)
        try:
            await asyncio.gather(up(), down())
        finally:
            await consumer.stop()
            await producer.stop()


async def _middle(ns: argparse.Namespace) -> None:
    """Kafka ``device-events`` -> ``downlinks``, record by record, as it came."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    from parkstream.kafka_profile import aiokafka_consumer_kwargs, aiokafka_producer_kwargs

    settings = Settings(profile="dev", kafka_bootstrap=ns.kafka, topic_prefix=ns.prefix)
    producer = AIOKafkaProducer(**aiokafka_producer_kwargs(settings, **RAW_PRODUCER))
    consumer = AIOKafkaConsumer(
        **aiokafka_consumer_kwargs(settings, group_id=None, auto_offset_reset="earliest")
    )
    await producer.start()
    await consumer.start()
    source, target = settings.topic("device-events.v1"), settings.topic("downlinks.v1")
    consumer.assign(
        [TopicPartition(source, p) for p in consumer.partitions_for_topic(source) or ()]
    )
    print("ready", flush=True)
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for rec in records:
                    await producer.send(target, rec.value, key=rec.key)
    finally:
        await consumer.stop()
        await producer.stop()


def main(argv: Sequence[str]) -> int:
    """``python -m bench.e2e edge|middle --kafka K --prefix P --mqtt-host H --mqtt-port N``"""
    p = argparse.ArgumentParser(prog="python -m bench.e2e")
    p.add_argument("role", choices=("edge", "middle"))
    p.add_argument("--kafka", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--mqtt-host", required=True)
    p.add_argument("--mqtt-port", type=int, required=True)
    p.add_argument("--direct", action="store_true")
    ns = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_edge(ns) if ns.role == "edge" else _middle(ns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
