"""The bridge's uplinks/s against a raw aiomqtt -> orjson -> aiokafka loop, same brokers, same run.

Both consumers subscribe at QoS 1 with a persistent session before the feeders start,
produce to a device-events topic of the catalogue (same partitions) with the bridge's
producer settings, and are timed from the first message received to the last record
acknowledged by Kafka. They run alternately; the best run of each is compared.

The raw loop is the issue's baseline: it acknowledges MQTT automatically (on receipt),
does no validation, and forwards the payload as it came, one ``producer.send`` per
message as aiomqtt hands them out. The bridge parses and decodes every message, writes
a device event with its CloudEvents headers, and acknowledges each message only after
Kafka acknowledged it. ``--raw burst`` gives the raw loop the bridge's way of taking
messages (bursts gathered while they keep arriving, see ``bridge/uplink.py``), to show
how much of the bridge's figure that is worth.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import statistics
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
from aiokafka import AIOKafkaProducer

from bench.common import (
    MQTT_CHOICES,
    Brokers,
    Feed,
    Profile,
    Result,
    Timing,
    histogram_quantile,
    py_spy,
    start_brokers,
    watch,
)
from parkstream.bridge.app import Bridge
from parkstream.bridge.uplink import BURST_TARGET, DRAIN_BURST
from parkstream.catalogue import topic_spec
from parkstream.config import Settings
from parkstream.kafka_profile import aiokafka_producer_kwargs
from parkstream.logging import configure_logging
from parkstream.topics_admin import apply_topics

NAME = "bridge"
GOAL = 0.8
UNIT = "uplinks/s"
# The bridge's producer settings (bridge/app.py, Bridge._start_producer): keep them equal,
# the raw loop must batch like the bridge.
PRODUCER_OVERRIDES: dict[str, Any] = {"linger_ms": 2, "max_batch_size": 256 * 1024}
READY_TIMEOUT_S = 30.0
# Where the consumers' time goes, for the profile summary: each sample counts for the first
# rule matching a frame of its stack, so specific rules come first.
STAGES: list[tuple[str, Callable[[str], bool]]] = [
    ("ingest: check_tree (payload limits)", lambda f: f.startswith("check_tree ")),
    ("encode (model_dump + orjson.dumps)", lambda f: f.startswith("encode (parkstream/domain")),
    ("ingest: pydantic model validation", lambda f: "(pydantic" in f),
    ("ingest: derive_id (uuid5 event id)", lambda f: f.startswith("derive_id ")),
    ("ingest: parse_rfc3339", lambda f: f.startswith("parse_rfc3339 ")),
    ("ingest: parse_topic", lambda f: f.startswith("parse_topic ")),
    ("ingest: sensor decoder", lambda f: "(parkstream/decoders/" in f),
    ("ingest: one-pass uplink reader (fields)", lambda f: "(parkstream/ingest/fast_path" in f),
    ("ingest: rest of parse_message (fields)", lambda f: "(parkstream/ingest/" in f),
    ("aiokafka: producer.send", lambda f: f.startswith("AIOKafkaProducer.send ")),
    ("bridge: produce batches", lambda f: "(parkstream/bridge/batches" in f),
    ("CloudEvents headers", lambda f: "(parkstream/domain/cloudevents" in f),
    ("aiokafka: sender, connection", lambda f: "(aiokafka/" in f),
    ("paho-mqtt: read, decode, PUBACK", lambda f: "(paho/" in f),
    ("aiomqtt: queue, asyncio.wait per msg", lambda f: "(aiomqtt/" in f),
    ("bridge: ack/account, metrics", lambda f: "(prometheus_client/" in f or "._ac" in f),
    ("bridge: handle/_read (own code)", lambda f: "(parkstream/bridge/" in f),
    ("raw loop: orjson.loads, key", lambda f: "loop (bench/bridge.py" in f),
]


@dataclass
class Run:
    kind: str  # "raw" or "bridge"
    timing: Timing
    latency_p50: float | None = None
    latency_p99: float | None = None
    unexpected: str = ""  # bridge outcomes other than accepted uplinks, if any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=20_000, help="uplinks per run (20000)")
    parser.add_argument("--devices", type=int, default=4, help="devices = feeder processes (4)")
    parser.add_argument("--rounds", type=int, default=3, help="raw+bridge pairs (3)")
    parser.add_argument(
        "--mqtt",
        choices=MQTT_CHOICES,
        default="tuned",
        help="tuned: private Mosquitto with max_inflight_messages 1000 (default); "
        "harness: the harness's Mosquitto as it is (in-flight window 20)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="then run the raw loop and the bridge once more each under py-spy (pip install "
        "py-spy), write the bridge's collapsed stacks to FILE (the raw loop's to FILE-raw) and "
        "print where each spends its CPU per message",
    )
    parser.add_argument(
        "--raw",
        choices=("plain", "burst"),
        default="plain",
        help="plain: the raw loop takes messages one by one from aiomqtt (the baseline, "
        "default); burst: it gathers bursts as the bridge does",
    )
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop of both consumers (asyncio, as `parkstream bridge` runs; uvloop "
        "needs pip install uvloop)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=120.0,
        metavar="S",
        help="give up a run after S seconds (120)",
    )


def run(args: argparse.Namespace) -> list[Result]:
    configure_logging("WARNING", "console")
    with (
        tempfile.TemporaryDirectory(prefix="bench-bridge-") as tmp,
        start_brokers(args.mqtt) as brokers,
    ):
        print(f"brokers: {brokers.description}; event loop: {args.loop}")
        feed = Feed.generate(Path(tmp), args.messages, args.devices)
        print(
            f"feed: {feed.messages} ChirpStack v4 uplinks of {feed.mean_bytes:.0f} bytes, "
            f"{len(feed.devices)} Bosch TPS110 devices, one QoS-1 feeder process each"
        )
        with asyncio.Runner(loop_factory=_loop_factory(args.loop)) as runner:
            return runner.run(_main(args, brokers, feed, Path(tmp)))


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError as exc:
        raise SystemExit("--loop uvloop needs uvloop (pip install uvloop)") from exc
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _main(args: argparse.Namespace, brokers: Brokers, feed: Feed, tmp: Path) -> list[Result]:
    bench_id = secrets.token_hex(3)
    runs: list[Run] = []
    for round_no in range(args.rounds):
        for kind in ("raw", "bridge"):
            settings = _settings(brokers, f"bench-{bench_id}-{kind}{round_no}", tmp)
            if kind == "raw":
                result = await _raw_run(settings, brokers, feed, args.budget, args.raw)
            else:
                result = await _bridge_run(settings, brokers, feed, args.budget)
            runs.append(result)
            print(_describe(result))
    if args.profile is not None:
        await _profiled_run(args, brokers, feed, tmp, bench_id)

    raw = [r.timing.rate for r in runs if r.kind == "raw" and r.timing.complete]
    bridge = [r for r in runs if r.kind == "bridge" and r.timing.complete]
    if not raw or not bridge:
        return [Result(NAME, 0.0, UNIT, max(raw, default=None), GOAL, "runs did not complete")]
    best = max(bridge, key=lambda r: r.timing.rate)
    median_ratio = statistics.median(r.timing.rate for r in bridge) / statistics.median(raw)
    cpu_bridge = _median_cpu(bridge)
    cpu_raw = _median_cpu([r for r in runs if r.kind == "raw" and r.timing.complete])
    note = (
        f"best of {len(bridge)} bridge / {len(raw)} raw runs, {feed.messages} uplinks each; "
        f"median ratio {median_ratio:.2f}; CPU per uplink {cpu_bridge:.0f} us bridge, "
        f"{cpu_raw:.0f} us raw (ratio {cpu_raw / cpu_bridge:.2f}); bridge MQTT->Kafka latency "
        f"p50 {_ms(best.latency_p50)} p99 {_ms(best.latency_p99)} (histogram buckets)"
    )
    return [Result(NAME, best.timing.rate, UNIT, max(raw), GOAL, note)]


def _median_cpu(runs: list[Run]) -> float:
    """Median process CPU per uplink: steadier than uplinks/s when other work shares the CPU."""
    values = [r.timing.cpu_us_per_message for r in runs]
    return statistics.median(v for v in values if v is not None) if any(values) else float("nan")


def _settings(brokers: Brokers, prefix: str, tmp: Path) -> Settings:
    return Settings(
        profile="test",  # the Tansu workarounds: no idempotent producer
        kafka_bootstrap=brokers.kafka_bootstrap,
        mqtt_url=brokers.mqtt_url,
        topic_prefix=prefix,
        mqtt_subscriptions=[f"{prefix}/application/+/device/+/event/+"],
        mqtt_client_id=f"{prefix}-bridge",
        state_dir=tmp / prefix,
        log_level="WARNING",
    )


async def _raw_run(
    settings: Settings, brokers: Brokers, feed: Feed, budget_s: float, take: str = "plain"
) -> Run:
    """aiomqtt (QoS 1, persistent session, auto-ack) -> orjson.loads -> AIOKafkaProducer.send.

    ``take="burst"``: messages are taken in bursts, as the bridge takes them.
    """
    topic = settings.topic("device-events.v1")
    await apply_topics(settings, (topic_spec("device-events.v1"),))
    producer = AIOKafkaProducer(**aiokafka_producer_kwargs(settings, **PRODUCER_OVERRIDES))
    await producer.start()
    received = acked = 0

    def on_ack(future: asyncio.Future[Any]) -> None:
        nonlocal acked
        if not future.cancelled() and future.exception() is None:
            acked += 1

    client = aiomqtt.Client(
        brokers.mqtt_host,
        brokers.mqtt_port,
        identifier=f"{settings.topic_prefix}-raw",
        clean_session=False,
    )
    try:
        async with client:
            await client.subscribe(settings.mqtt_subscriptions[0], qos=1)

            async def forward(message: aiomqtt.Message) -> None:
                nonlocal received
                payload = message.payload
                assert isinstance(payload, bytes)
                doc = orjson.loads(payload)
                key = doc["deviceInfo"]["devEui"].encode()
                future = await producer.send(topic, payload, key=key)
                future.add_done_callback(on_ack)
                received += 1

            async def loop() -> None:
                async for message in client.messages:
                    if take == "plain":
                        await forward(message)
                        continue
                    for each in await _burst(client, message):
                        await forward(each)

            timing = await _timed(
                loop(), lambda: received, lambda: acked, feed, brokers, settings, budget_s
            )
    finally:
        await producer.stop()
    return Run("raw", timing)


async def _burst(client: aiomqtt.Client, first: aiomqtt.Message) -> list[aiomqtt.Message]:
    """What has arrived after ``first``, and what keeps arriving turn by turn (up to the
    bridge's burst target), as ``UplinkPump._read`` takes it."""
    incoming = client._queue
    burst = [first]
    while True:
        while len(burst) < DRAIN_BURST and not incoming.empty():
            burst.append(incoming.get_nowait())
        if len(burst) >= BURST_TARGET:
            return burst
        await asyncio.sleep(0)
        if incoming.empty():
            return burst


async def _bridge_run(settings: Settings, brokers: Brokers, feed: Feed, budget_s: float) -> Run:
    """``parkstream.bridge.app.Bridge`` in this process, fed by the feeder processes."""
    await apply_topics(settings)
    bridge = Bridge(settings)
    m = bridge.metrics

    def received() -> float:
        return _sample(m.in_flight) + _sample(m.messages)

    timing = await _timed(
        bridge.run(),
        received,
        lambda: _sample(m.messages),
        feed,
        brokers,
        settings,
        budget_s,
        bridge,
    )
    buckets = [
        (float(s.labels["le"]), s.value)
        for metric in m.latency.collect()
        for s in metric.samples
        if s.name.endswith("_bucket")
    ]
    outcomes = {
        f"{s.labels['event']}/{s.labels['outcome']}": s.value
        for family in m.messages.collect()
        for s in family.samples
        if s.name.endswith("_total")
    }
    unexpected = ", ".join(f"{k} {v:.0f}" for k, v in outcomes.items() if k != "up/accepted")
    return Run(
        "bridge",
        timing,
        histogram_quantile(buckets, 0.5),
        histogram_quantile(buckets, 0.99),
        unexpected,
    )


async def _timed(
    consumer: Coroutine[Any, Any, None],
    received: Callable[[], float],
    done: Callable[[], float],
    feed: Feed,
    brokers: Brokers,
    settings: Settings,
    budget_s: float,
    bridge: Bridge | None = None,
) -> Timing:
    """Start the consumer, wait until it is subscribed, feed it, time it, stop it."""
    task = asyncio.create_task(consumer)
    try:
        if bridge is not None:
            await _until_ready(bridge, task)
        else:
            await asyncio.sleep(0)  # the raw loop subscribed before it was created
        publishers = feed.start(brokers, settings.topic_prefix)
        try:
            return await watch(received, done, feed.messages, publishers, budget_s=budget_s)
        finally:
            publishers.stop()
    finally:
        if bridge is not None:
            bridge.stop.set()
            await asyncio.wait_for(task, 30)
        else:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _until_ready(bridge: Bridge, task: asyncio.Task[None]) -> None:
    ready = asyncio.create_task(bridge.ready.wait())
    done, _ = await asyncio.wait(
        {task, ready}, timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
    )
    if task in done:
        ready.cancel()
        task.result()
        raise RuntimeError("the bridge stopped before subscribing")
    if ready not in done:
        ready.cancel()
        raise RuntimeError(f"the bridge did not subscribe within {READY_TIMEOUT_S:.0f} s")


async def _profiled_run(
    args: argparse.Namespace, brokers: Brokers, feed: Feed, tmp: Path, bench_id: str
) -> None:
    """One more run of each under py-spy: the bridge's stacks go to ``--profile FILE``,
    the raw loop's next to it; then where each spends its CPU per message."""
    profiles: dict[str, tuple[Run, Profile | None]] = {}
    for kind in ("raw", "bridge"):
        path = args.profile if kind == "bridge" else _raw_profile_path(args.profile)
        settings = _settings(brokers, f"bench-{bench_id}-profiled-{kind}", tmp)
        with py_spy(path) as running:
            if kind == "raw":
                result = await _raw_run(settings, brokers, feed, args.budget, args.raw)
            else:
                result = await _bridge_run(settings, brokers, feed, args.budget)
        print(f"profiled {_describe(result)} (slowed by sampling; stacks in {path})")
        profiles[kind] = (result, Profile.load(path) if running and path.exists() else None)
    print(format_profiles(profiles))


def _raw_profile_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}-raw{path.suffix}")


def format_profiles(profiles: dict[str, tuple[Run, Profile | None]]) -> str:
    """Per stage: share of samples and µs of CPU per message (share x measured CPU/msg)."""
    loaded = {kind: (run, prof) for kind, (run, prof) in profiles.items() if prof is not None}
    if not loaded:
        return "no profile"
    kinds = list(loaded)
    shares = {kind: prof.breakdown(STAGES) for kind, (_, prof) in loaded.items()}
    per_msg = {kind: run.timing.cpu_us_per_message or 0.0 for kind, (run, _) in loaded.items()}
    width = max(len(label) for label, _ in STAGES)
    head = "".join(f"  {kind + ' %':>9}  {kind + ' us':>9}" for kind in kinds)
    lines = ["", "where the CPU goes, per message (py-spy samples):", f"{'stage':<{width}}{head}"]
    for label in [*(lb for lb, _ in STAGES), "other"]:
        if not any(shares[kind][label] for kind in kinds):
            continue
        cells = "".join(
            f"  {shares[kind][label]:9.1%}  {shares[kind][label] * per_msg[kind]:9.1f}"
            for kind in kinds
        )
        lines.append(f"{label:<{width}}{cells}")
    total = "".join(f"  {1:9.1%}  {per_msg[kind]:9.1f}" for kind in kinds)
    lines.append(f"{'total (process CPU per message)':<{width}}{total}")
    if "bridge" in loaded:
        lines.append("\nbridge: functions with most samples of their own")
        for name, share in loaded["bridge"][1].top(15, self_time=True):
            lines.append(f"  {share:6.1%}  {name}")
    return "\n".join(lines)


def _sample(metric: Any) -> float:
    """Sum of a counter's (every label set) or a gauge's current value."""
    total: float = sum(
        s.value
        for family in metric.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    )
    return total


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f} ms"


def _describe(run: Run) -> str:
    t = run.timing
    line = f"{run.kind:>6}: {t.done} of {t.messages} in {t.seconds:.2f} s = {t.rate:,.0f} {UNIT}"
    if t.feed_seconds is not None:
        line += f" (feeders done after {t.feed_seconds:.2f} s)"
        if t.feed_seconds > 0.8 * t.seconds:
            line += " FEED-BOUND: the feeders, not the consumer, set this figure"
    if cpu := t.describe_cpu():
        line += f"; {cpu}"
    if run.latency_p50 is not None:
        line += f", latency p50 {_ms(run.latency_p50)} p99 {_ms(run.latency_p99)}"
    if run.unexpected:
        line += f"  NOT ALL ACCEPTED: {run.unexpected}"
    if not t.complete:
        line += "  INCOMPLETE"
    return line
