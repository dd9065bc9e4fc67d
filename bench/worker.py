"""The stream worker's fold: inputs/s of the real worker, a naive Faust agent and a raw loop.

All three consume the same pre-produced input set from ``worker-space-inputs.v1`` (the
worker's internal topic holding every fold input in its final per-bay order: commands,
ticks and routed device events) on the same broker, in the same run, and write the same
outputs (space events, downlinks, registry changes) to the same topics of their own prefix:

- ``worker``: the real app of ``parkstream worker`` (:func:`parkstream.worker.app.create_worker`,
  ``ticks=False``), in this process: agents route, forward and fold, the ``spaces`` table with
  its changelog, the fold topic's records in batches of a fetch (its batching consumer), outputs
  flushed before the table writes. Only its
  fold has work: the inputs are already routed. Routing is a separate stage of its
  own (a device lookup per event); pre-producing the routed inputs measures the fold stage,
  which is what the two baselines do, and what the issue's figures are about.
- ``naive``: a Faust agent as one would first write it: one event at a time
  (``stream.events()``), decode, ``decide_and_evolve``, a Table write, ``await
  topic.send(...)`` per output; the profile's Faust settings, Faust defaults otherwise
  (``producer_linger`` 0).
- ``raw``: aiokafka without Faust: a consumer with every partition assigned by hand,
  ``getmany`` -> :func:`parkstream.worker.fold.fold_batch` (bay states in a dict, no
  changelog) -> ``send`` without awaiting each -> ``flush`` per batch; its producer batches
  (``linger_ms`` 5, 1 MiB batches).

Timing: from the moment a variant consumed its first input (the worker: its first call of
``Worker.fold``; the others: their first record) to the moment all inputs are folded and
their outputs acknowledged by Kafka, polled every 10 ms. The worker counts inputs in
``parkstream_worker_inputs_total``, incremented after a batch's outputs were flushed; the
naive agent counts per event and its producer is flushed before the clock stops; the raw
loop counts after each flush. Process CPU per input is sampled at both ends.

Also, without Kafka: the decider alone (``decide_and_evolve`` over the decoded inputs, as
``bench/decider.py`` times it) and the whole pure fold (``fold_batch``: decode, decide,
encode the outputs), which bounds any of the three.

Profile: the dev/test profile (the harness's broker is the Kafka-protocol test broker).
Its workaround ``producer_max_batch_size=1`` (one record per producer batch, so the
broker's ListOffsets answers stay right for Faust's changelog recovery) applies to both
Faust apps and makes Faust's producer slow; ``--faust-batches`` gives both Faust apps
Faust's default batch size (16 KiB, the production setting) instead.

``--profile FILE`` samples the worker and the naive agent with py-spy and prints where the
CPU goes per input.

Workload: ``--bays`` bays of one tenant, each registered with a parking sensor and a light;
then a stream of sensor readings (every bay in turn, in a shuffled order, about 30 % of the
readings changing occupancy), the lights' txacks a few inputs after each downlink request
(2 % lost: the resend comes from a tick), ticks at the bays' deadlines (as the worker's
timers send them), and a few reservations and maintenance overrides. It is planned by
deciding it once (untimed), so txacks carry the real command ids.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import heapq
import logging
import math
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.common import CpuSnapshot, Profile, Result, py_spy
from parkstream.catalogue import topic_spec
from parkstream.config import Settings
from parkstream.domain import commands as cmd
from parkstream.domain import device_events as dev
from parkstream.domain.contract import decode, encode
from parkstream.domain.decider import decide_and_evolve
from parkstream.domain.effective import next_deadline
from parkstream.domain.envelope import Envelope, Source
from parkstream.domain.space import Space, initial_state
from parkstream.domain.states import SpaceState
from parkstream.harness import ServicesHarness
from parkstream.kafka_profile import (
    aiokafka_consumer_kwargs,
    aiokafka_producer_kwargs,
    faust_settings,
)
from parkstream.logging import configure_logging
from parkstream.topics_admin import apply_topics
from parkstream.worker.fold import Output, fold_batch, outputs_for
from parkstream.worker.metrics import WorkerMetrics

NAME = "worker"
UNIT = "inputs/s"
GOAL_VS_NAIVE = 3.0
GOAL_DECIDER = 200_000
INPUT_TOPIC = "worker-space-inputs.v1"
OUTPUT_TOPICS = ("space-events.v1", "downlinks.v1", "worker-registry.v1", "deadletter.v1")
# The raw loop's producer and fetch sizes (also the refold's, see parkstream/refold.py).
RAW_PRODUCER: dict[str, Any] = {"linger_ms": 5, "max_batch_size": 1024 * 1024}
RAW_BATCH = 5000
FAUST_DEFAULT_BATCH = 16384  # faust-streaming's default producer_max_batch_size

# --- the workload ----------------------------------------------------------------------------

TENANT = "t-bench"
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
STEP = timedelta(seconds=1)  # stream time between two inputs
MQTT = Source(kind="mqtt", topic="application/app-1/device/x/event/up")
API = Source(kind="api")
TIMER = Source(kind="timer")
DEVICE = dev.DeviceInfo(device_profile_name="Bosch TPS110", application_id="app-1")
LIGHT = dev.DeviceInfo(device_profile_name="Kuando Busylight", application_id="app-1")
MIX = (("reading", 0.975), ("reservation", 0.015), ("override", 0.01))
CHANGE_SHARE = 0.30  # readings that flip the bay's occupancy; the others repeat it
TXACK_DELAY = (1, 10)  # inputs between a downlink request and its txack
TXACK_LOST = 0.02
TIMER_HORIZON = timedelta(hours=2)


def space_id(bay: int) -> str:
    return f"bay-{bay:04d}"


def sensor_eui(bay: int) -> str:
    return f"a1b2c3d4{bay:08x}"


def light_eui(bay: int) -> str:
    return f"20202041{bay:08x}"


@dataclass(frozen=True)
class Workload:
    """Fold inputs in their order: (bay, envelope, encoded record); what folding them emits."""

    bays: int
    inputs: list[tuple[int, Envelope]]
    records: list[tuple[bytes, bytes]]  # (key = space id, value)
    by_type: dict[str, int]
    events: int  # space events the fold emits
    downlinks: int

    def describe(self) -> str:
        mean = sum(len(v) for _, v in self.records) / max(1, len(self.records))
        kinds = ", ".join(f"{t} {n}" for t, n in sorted(self.by_type.items(), key=lambda i: -i[1]))
        return (
            f"{len(self.records)} fold inputs of {mean:.0f} bytes for {self.bays} bays ({kinds}); "
            f"folding them emits {self.events} space events "
            f"({self.events / len(self.records):.2f} per input) and {self.downlinks} downlinks"
        )


@dataclass
class _Planner:
    rng: random.Random
    bays: int
    now: datetime = T0
    serial: int = 0
    states: list[Space] = field(default_factory=list)
    occupied: list[bool] = field(default_factory=list)
    f_cnt: list[int] = field(default_factory=list)
    round: list[int] = field(default_factory=list)
    scheduled: list[tuple[int, int, int, str]] = field(default_factory=list)
    timers: dict[int, int] = field(default_factory=dict)
    inputs: list[tuple[int, Envelope]] = field(default_factory=list)
    events: int = 0
    downlinks: int = 0

    def __post_init__(self) -> None:
        self.states = [initial_state(space_id(b)) for b in range(self.bays)]
        self.occupied = [False] * self.bays
        self.f_cnt = [0] * self.bays

    def _base(self, source: Source) -> dict[str, Any]:
        self.serial += 1
        return {
            "event_id": f"in-{self.serial}",
            "occurred_at": self.now,
            "recorded_at": self.now,
            "source": source,
        }

    def command(self, cls: type[Envelope], bay: int, data: Any) -> Envelope:
        return cls(**self._base(API), tenant_id=TENANT, space_id=space_id(bay), data=data)

    def routed(self, cls: type[Envelope], eui: str, bay: int, data: Any) -> Envelope:
        """A device event as the router writes it: addressed to its bay and tenant."""
        return cls(
            **self._base(MQTT), dev_eui=eui, space_id=space_id(bay), tenant_id=TENANT, data=data
        )

    def setup(self, bay: int) -> None:
        config = cmd.SpaceConfig(debounce_s=30.0 if bay % 5 == 0 else 0.0)
        data = cmd.RegisterSpaceData(
            site_id="site-1", name=f"Bay {bay}", code=f"B{bay}", config=config
        )
        self.decided(-1, bay, self.command(cmd.RegisterSpace, bay, data))
        for eui, role in ((sensor_eui(bay), "sensor"), (light_eui(bay), "display")):
            assign = cmd.AssignDeviceData(dev_eui=eui, role=role)
            self.decided(-1, bay, self.command(cmd.AssignDevice, bay, assign))

    def next_input(self, step: int) -> tuple[int, Envelope]:
        while self.scheduled and self.scheduled[0][0] <= step:
            due, _, bay, kind = heapq.heappop(self.scheduled)
            inp = self._scheduled(due, bay, kind)
            if inp is not None:
                return bay, inp
        kind = self.rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        if kind == "reading":
            return self._reading()
        bay = self.rng.randrange(self.bays)
        if kind == "reservation":
            starts = self.now + timedelta(minutes=self.rng.randint(-5, 60))
            data = cmd.CreateReservationData(
                reservation_id=f"r-{self.serial}",
                request_id=f"q-{self.serial}",
                starts_at=starts,
                ends_at=starts + timedelta(minutes=self.rng.choice([30, 60, 120])),
            )
            return bay, self.command(cmd.CreateReservation, bay, data)
        if self.states[bay].override is not None:
            return bay, self.command(cmd.ClearOverride, bay, cmd.ClearOverrideData())
        override = cmd.SetOverrideData(
            state=SpaceState.MAINTENANCE, reason="cleaning", until=self.now + timedelta(hours=1)
        )
        return bay, self.command(cmd.SetOverride, bay, override)

    def _scheduled(self, due: int, bay: int, kind: str) -> Envelope | None:
        if kind == "tick":
            if self.timers.get(bay) != due:
                return None  # the timer was moved since
            del self.timers[bay]
            base = self._base(TIMER)
            return cmd.Tick(**base, space_id=space_id(bay), data=cmd.TickData(due_at=self.now))
        pending = self.states[bay].display.pending_command_id
        if pending is None:
            return None
        data = dev.TxAckData(device=LIGHT, queue_item_id=pending, gateway_id="gw-1")
        return self.routed(dev.DownlinkTransmitted, light_eui(bay), bay, data)

    def _reading(self) -> tuple[int, Envelope]:
        if not self.round:
            self.round = list(range(self.bays))
            self.rng.shuffle(self.round)
        bay = self.round.pop()
        if self.f_cnt[bay] and self.rng.random() < CHANGE_SHARE:
            self.occupied[bay] = not self.occupied[bay]
        self.f_cnt[bay] += 1
        occupied = self.occupied[bay]
        reading = dev.Reading(decoder="bosch_tps110", kind="parking_status", occupied=occupied)
        data = dev.UplinkData(
            device=DEVICE, f_port=1, f_cnt=self.f_cnt[bay], data_b64="AQ==", reading=reading
        )
        return bay, self.routed(dev.UplinkObserved, sensor_eui(bay), bay, data)

    def decided(self, step: int, bay: int, inp: Envelope) -> None:
        """Fold the input (as the worker will); schedule its txack and the bay's next tick."""
        self.inputs.append((bay, inp))
        self.states[bay], out = decide_and_evolve(self.states[bay], inp, inp.recorded_at)
        self.events += len(out)
        requested = sum(e.type == "display.change_requested" for e in out)
        self.downlinks += requested
        if step < 0:
            return
        if requested and self.rng.random() >= TXACK_LOST:
            due = step + self.rng.randint(*TXACK_DELAY)
            heapq.heappush(self.scheduled, (due, self.serial, bay, "txack"))
        deadline = next_deadline(self.states[bay])
        if deadline is None or deadline <= self.now or deadline - self.now > TIMER_HORIZON:
            self.timers.pop(bay, None)
        else:
            tick = step + max(1, math.ceil((deadline - self.now) / STEP))
            if self.timers.get(bay) != tick:
                self.timers[bay] = tick
                heapq.heappush(self.scheduled, (tick, self.serial, bay, "tick"))


def build_workload(inputs: int, bays: int, seed: int = 7) -> Workload:
    """``bays`` bays set up (3 commands each), then ``inputs`` inputs of traffic."""
    plan = _Planner(random.Random(seed), bays)
    for bay in range(bays):
        plan.setup(bay)
    for step in range(inputs):
        plan.now += STEP
        bay, inp = plan.next_input(step)
        plan.decided(step, bay, inp)
    records = [(space_id(bay).encode(), encode(inp)) for bay, inp in plan.inputs]
    return Workload(
        bays=bays,
        inputs=plan.inputs,
        records=records,
        by_type=dict(Counter(inp.type for _, inp in plan.inputs)),
        events=plan.events,
        downlinks=plan.downlinks,
    )


# --- Kafka: brokers, settings, input set ------------------------------------------------------


@contextlib.contextmanager
def kafka_broker() -> Iterator[tuple[str, str]]:
    """The harness's Kafka-protocol broker (or PARKSTREAM_KAFKA_BOOTSTRAP): (bootstrap, what)."""
    with ServicesHarness(os.environ, need=("kafka",)) as services:
        yield (
            services.kafka_bootstrap,
            services.descriptions.get("kafka", f"external {services.kafka_bootstrap}"),
        )


def bench_settings(bootstrap: str, prefix: str, tmp: Path) -> Settings:
    return Settings(
        profile="test",
        kafka_bootstrap=bootstrap,
        topic_prefix=prefix,
        state_dir=tmp / prefix,
        log_level="WARNING",
    )


async def produce_inputs(settings: Settings, workload: Workload) -> None:
    """The catalogue's topics, and the input set in ``worker-space-inputs.v1`` (untimed)."""
    await apply_topics(settings)
    producer = AIOKafkaProducer(
        **aiokafka_producer_kwargs(settings, linger_ms=20, max_batch_size=1024 * 1024)
    )
    await producer.start()
    try:
        topic = settings.topic(INPUT_TOPIC)
        for key, value in workload.records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


# --- timing -----------------------------------------------------------------------------------


@dataclass
class Run:
    """One variant's run: inputs folded (and acknowledged) over the timed window."""

    kind: str
    total: int
    done: int = 0
    seconds: float = float("nan")
    cpu_s: float = float("nan")
    machine_busy: float | None = None
    note: str = ""

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def complete(self) -> bool:
        return self.done >= self.total

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.done * 1e6 if self.done > 0 else float("nan")

    def describe(self) -> str:
        line = (
            f"{self.kind:>16}: {self.done} of {self.total} inputs in {self.seconds:.2f} s = "
            f"{self.rate:,.0f} {UNIT}; {self.cpu_s / self.seconds:.0%} of a core, "
            f"{self.cpu_us:.0f} us CPU/input"
        )
        if self.machine_busy is not None:
            line += f", machine {self.machine_busy:.0%} busy"
        if self.note:
            line += f"; {self.note}"
        if not self.complete:
            line += f"  INCOMPLETE ({self.done} done)"
        return line


@dataclass
class Clock:
    """The moment (and CPU counters) a variant consumed its first input."""

    first: float | None = None
    cpu: CpuSnapshot | None = None

    def mark(self) -> None:
        if self.first is None:
            self.first, self.cpu = time.monotonic(), CpuSnapshot.now()


async def measure(
    run: Run,
    clock: Clock,
    done: Callable[[], int],
    budget_s: float,
    finish: Callable[[], Awaitable[None]] | None = None,
    interval: float = 0.01,
) -> Run:
    """Poll ``done()`` until ``run.total`` (or ``budget_s``); the window starts at
    ``clock.first`` (set by the variant) and ends when all are done and ``finish`` returned."""
    deadline = time.monotonic() + budget_s
    while True:
        if done() >= run.total or time.monotonic() > deadline:
            break
        await asyncio.sleep(interval)
    if finish is not None:
        await finish()
    end, cpu = time.monotonic(), CpuSnapshot.now()
    run.done = done()
    if clock.first is not None and clock.cpu is not None:
        run.seconds = end - clock.first
        run.cpu_s = cpu.process - clock.cpu.process
        total = cpu.machine_total - clock.cpu.machine_total
        if total > 0:
            run.machine_busy = (cpu.machine_busy - clock.cpu.machine_busy) / total
    return run


def counter_total(metric: Any) -> int:
    """Sum of a labelled Prometheus counter over its label sets, read from its children
    (``collect()`` costs ~0.2 ms: polled every few ms it would load the measured process)."""
    children = getattr(metric, "_metrics", None)
    if children is None:
        return int(metric._value.get())
    return int(sum(child._value.get() for child in list(children.values())))


# --- the three variants -----------------------------------------------------------------------


async def worker_run(
    settings: Settings, workload: Workload, budget_s: float, *, batches: bool = False
) -> Run:
    """The real ``parkstream worker`` app in this process."""
    from parkstream.worker.app import create_worker

    metrics = WorkerMetrics()
    worker = create_worker(settings, datadir=settings.state_dir, metrics=metrics, ticks=False)
    if batches:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # set before the producer exists: it takes effect
            worker.app.conf.producer_max_batch_size = FAUST_DEFAULT_BATCH
    run, clock = Run("worker" + (" +batches" if batches else ""), len(workload.records)), Clock()
    fold = worker.fold

    async def timed_fold(messages: Any) -> None:  # the consumer calls worker.fold(messages)
        clock.mark()
        await fold(messages)

    worker.fold = timed_fold  # type: ignore[method-assign]
    anomalies: list[str] = []
    worker.on_fatal = anomalies.append  # in-process: record, do not exit
    await worker.app.start()
    try:
        await measure(run, clock, lambda: counter_total(metrics.inputs), budget_s)
        emitted = counter_total(metrics.outputs)
        sizes = next(iter(metrics.batch_size.collect())).samples
        count = next(s.value for s in sizes if s.name.endswith("_count"))
        total = next(s.value for s in sizes if s.name.endswith("_sum"))
        run.note = f"{emitted} events, {total / max(1, count):.0f} inputs per batch"
        if anomalies:
            run.note += f"; CONSUMER ANOMALY: {anomalies[0]}"
            run.done = 0  # not a valid run
    finally:
        await worker.app.stop()
    return run


def create_naive(settings: Settings, clock: Clock) -> tuple[Any, list[int]]:
    """A Faust app folding one event at a time with a Table; returns (app, [inputs done])."""
    import faust

    import parkstream.worker.app  # noqa: F401  (registers the bay-state table codec)

    partitions = topic_spec(INPUT_TOPIC).partitions
    app = faust.App(
        f"{settings.topic_prefix}-naive",
        **faust_settings(
            settings,
            store="memory://",
            datadir=str(settings.state_dir),
            web_enabled=False,
            topic_partitions=partitions,
            topic_replication_factor=1,
            table_standby_replicas=0,
        ),
    )

    def topic(name: str) -> Any:
        return app.topic(
            settings.topic(name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=topic_spec(name).partitions,
        )

    outputs = {name: topic(name) for name in OUTPUT_TOPICS}
    spaces: Any = app.Table("spaces", partitions=partitions, key_type=str)
    spaces.value_serializer = "parkstream_space"  # the worker's bay-state codec
    done = [0]

    @app.agent(topic(INPUT_TOPIC), name="fold")
    async def fold(stream: Any) -> None:
        async for event in stream.events():
            clock.mark()
            inp = decode(event.value)
            sid = inp.space_id or ""
            m = event.message
            source = Source(kind="kafka", topic=m.topic, partition=m.partition, offset=m.offset)
            state = spaces.get(sid) or initial_state(sid)
            state, events = decide_and_evolve(state, inp, inp.recorded_at, source)
            spaces[sid] = state
            for out in outputs_for(events, state):
                await outputs[out.topic].send(key=out.key, value=out.value, headers=out.headers)
            done[0] += 1

    return app, done


async def naive_run(
    settings: Settings, workload: Workload, budget_s: float, *, batches: bool = False
) -> Run:
    clock = Clock()
    app, done = create_naive(settings, clock)
    if batches:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # set before the producer exists: it takes effect
            app.conf.producer_max_batch_size = FAUST_DEFAULT_BATCH
    run = Run("naive" + (" +batches" if batches else ""), len(workload.records))
    await app.start()
    try:
        await measure(run, clock, lambda: done[0], budget_s, finish=app.producer.flush)
    finally:
        await app.stop()
    return run


async def raw_loop(settings: Settings, clock: Clock, done: list[int], outputs: list[int]) -> None:
    """consume (manual assignment) -> fold_batch -> send each output -> flush per batch."""
    source_topic = settings.topic(INPUT_TOPIC)
    names = {name: settings.topic(name) for name in OUTPUT_TOPICS}
    consumer = AIOKafkaConsumer(
        **aiokafka_consumer_kwargs(
            settings,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
    )
    producer = AIOKafkaProducer(**aiokafka_producer_kwargs(settings, **RAW_PRODUCER))
    await consumer.start()
    await producer.start()
    try:
        await consumer.topics()
        partitions = consumer.partitions_for_topic(source_topic) or set()
        consumer.assign([TopicPartition(source_topic, p) for p in sorted(partitions)])
        states: dict[str, Space] = {}
        while True:
            batch = await consumer.getmany(timeout_ms=100, max_records=RAW_BATCH)
            records = [
                (
                    r.value,
                    Source(kind="kafka", topic=r.topic, partition=r.partition, offset=r.offset),
                )
                for part in batch.values()
                for r in part
            ]
            if not records:
                continue
            clock.mark()
            result = fold_batch(records, states.get)
            states.update(result.states)
            for out in result.outputs:
                await producer.send(names[out.topic], out.value, key=out.key, headers=out.headers)
            await producer.flush()
            done[0] += len(records)
            outputs[0] += len(result.outputs)
    finally:
        await producer.stop()
        await consumer.stop()


async def raw_run(settings: Settings, workload: Workload, budget_s: float) -> Run:
    done, outputs, clock = [0], [0], Clock()
    run = Run("raw", len(workload.records))
    task = asyncio.create_task(raw_loop(settings, clock, done, outputs))
    try:
        await measure(run, clock, lambda: done[0] if not task.done() else _raise(task), budget_s)
        run.note = f"{outputs[0]} outputs"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return run


def _raise(task: asyncio.Task[None]) -> int:
    task.result()
    raise RuntimeError(f"{task.get_name()} ended")


# --- without Kafka ------------------------------------------------------------------------------


@contextlib.contextmanager
def workload_frozen() -> Iterator[None]:
    """Keep the pre-built workload out of the collector's scans while timing (a streaming
    process holds a few inputs at a time, not the whole run)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def decider_alone(workload: Workload) -> float:
    """``decide_and_evolve`` over the decoded inputs from fresh bays: inputs/s."""
    states = {space_id(b): initial_state(space_id(b)) for b in range(workload.bays)}
    with workload_frozen():
        start = time.perf_counter()
        for bay, inp in workload.inputs:
            sid = space_id(bay)
            states[sid], _ = decide_and_evolve(states[sid], inp, inp.recorded_at)
        seconds = time.perf_counter() - start
    return len(workload.inputs) / seconds


def fold_alone(workload: Workload, batch: int = 1000) -> float:
    """``fold_batch`` over the encoded inputs in batches (decode, decide, encode): inputs/s."""
    source = [
        (value, Source(kind="kafka", topic="bench", partition=0, offset=n))
        for n, (_, value) in enumerate(workload.records)
    ]
    states: dict[str, Space] = {}
    outputs: list[Output] = []
    with workload_frozen():
        start = time.perf_counter()
        for i in range(0, len(source), batch):
            result = fold_batch(source[i : i + batch], states.get)
            states.update(result.states)
            outputs.extend(result.outputs)
        seconds = time.perf_counter() - start
    return len(source) / seconds


# --- the benchmark ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inputs", type=int, default=50_000, help="traffic inputs after the set-up (50000)"
    )
    parser.add_argument("--bays", type=int, default=1000, help="bays (1000; 3 set-up inputs each)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each variant (1)")
    parser.add_argument(
        "--faust-batches",
        action="store_true",
        help="every Faust app (naive and worker) with Faust's default producer batch size "
        "(the production setting) instead of the test profile's one record per batch",
    )
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop of every variant (asyncio, as `parkstream worker` runs)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="then run the worker and the naive agent once more each under py-spy, write "
        "their collapsed stacks to FILE (FILE-naive) and print where the CPU goes per input",
    )
    parser.add_argument(
        "--budget", type=float, default=120.0, metavar="S", help="give up a run after S s (120)"
    )


def quiet_logs() -> None:
    """WARNING logs, without Faust's "producer buffer full" line per full buffer."""
    configure_logging("WARNING", "console")
    logging.getLogger("faust.transport.producer").setLevel(logging.ERROR)


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "asyncio":
        return None
    import uvloop

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


@dataclass(frozen=True)
class Variant:
    base: str  # raw, naive or worker
    batches: bool = False  # Faust's default producer batches (--faust-batches)

    @property
    def kind(self) -> str:
        return self.base + (" +batches" if self.batches else "")

    @property
    def slug(self) -> str:
        return self.base + ("-batches" if self.batches else "")


def run(args: argparse.Namespace) -> list[Result]:
    quiet_logs()
    started = time.monotonic()
    workload = build_workload(args.inputs, args.bays)
    print(f"workload: {workload.describe()} (planned in {time.monotonic() - started:.1f} s)")
    decider = decider_alone(workload)
    fold = fold_alone(workload)
    print(f"without Kafka: decider alone {decider:,.0f} {UNIT}, fold_batch {fold:,.0f} {UNIT}")
    bench_id = secrets.token_hex(3)
    batches = args.faust_batches
    variants = [Variant("raw"), Variant("naive", batches), Variant("worker", batches)]
    runs: list[Run] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp,
        kafka_broker() as (bootstrap, what),
    ):
        batching = (
            "Faust's default producer batches (--faust-batches)"
            if args.faust_batches
            else "Faust producer_max_batch_size=1"
        )
        print(f"broker: {what}; profile: test ({batching}); {args.loop}")
        for round_no in range(args.rounds):
            for variant in variants:
                prefix = f"bench-{bench_id}-{variant.slug}-{round_no}"
                settings = bench_settings(bootstrap, prefix, Path(tmp))
                with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
                    result = runner.run(_one(variant, settings, workload, args.budget))
                runs.append(result)
                print(result.describe())
        if args.profile is not None:
            profile_runs(
                args.profile, bootstrap, Path(tmp), bench_id, workload, args.budget, variants
            )
    return results(runs, variants, decider, fold, workload)


async def run_variant(
    variant: Variant, settings: Settings, workload: Workload, budget_s: float
) -> Run:
    if variant.base == "raw":
        return await raw_run(settings, workload, budget_s)
    if variant.base == "naive":
        return await naive_run(settings, workload, budget_s, batches=variant.batches)
    return await worker_run(settings, workload, budget_s, batches=variant.batches)


async def _one(variant: Variant, settings: Settings, workload: Workload, budget_s: float) -> Run:
    await produce_inputs(settings, workload)
    return await run_variant(variant, settings, workload, budget_s)


def best(runs: list[Run], kind: str) -> Run | None:
    done = [r for r in runs if r.kind == kind and r.complete]
    return max(done, key=lambda r: r.rate) if done else None


def results(
    runs: list[Run], variants: list[Variant], decider: float, fold: float, workload: Workload
) -> list[Result]:
    _, naive_v, worker_v = variants
    worker, naive, raw = best(runs, worker_v.kind), best(runs, naive_v.kind), best(runs, "raw")
    batching = (
        "Faust's default producer batches"
        if worker_v.batches
        else "test profile: Faust one record per producer batch"
    )
    out: list[Result] = []
    if worker is None or naive is None or raw is None:
        missing = [k for k, r in (("worker", worker), ("naive", naive), ("raw", raw)) if r is None]
        out.append(Result(NAME, 0.0, UNIT, note=f"runs did not complete: {', '.join(missing)}"))
    else:
        n = len([r for r in runs if r.kind == worker.kind])
        cpu = {
            r.kind: statistics.median(x.cpu_us for x in runs if x.kind == r.kind)
            for r in (worker, naive, raw)
        }
        out.append(
            Result(
                f"{worker.kind} vs {naive.kind} Faust",
                worker.rate,
                UNIT,
                naive.rate,
                GOAL_VS_NAIVE,
                f"best of {n} runs of {workload.bays} bays, {worker.total} fold inputs each, "
                f"{batching}; CPU per input: worker {cpu[worker.kind]:.0f} us, naive "
                f"{cpu[naive.kind]:.0f} us, raw {cpu['raw']:.0f} us",
            )
        )
        out.append(
            Result(
                f"{worker.kind} vs raw aiokafka",
                worker.rate,
                UNIT,
                raw.rate,
                None,
                "raw: consume -> fold_batch -> produce, no changelog, batched producer",
            )
        )
    out.append(
        Result(
            "decider alone",
            decider,
            UNIT,
            GOAL_DECIDER,
            1.0,
            f"decide_and_evolve over the decoded inputs; baseline = the goal figure; "
            f"fold_batch (decode + decide + encode) {fold:,.0f} {UNIT}",
        )
    )
    return out


# --- profile -----------------------------------------------------------------------------------

# Where the worker's time goes: each sample counts for the first rule matching a frame of its
# stack, so specific rules come first.
STAGES: list[tuple[str, Callable[[str], bool]]] = [
    ("decider: decide_and_evolve", lambda f: f.startswith("decide_and_evolve ")),
    ("fold: decode inputs", lambda f: f.startswith("decode (parkstream/domain")),
    ("fold: encode outputs", lambda f: f.startswith("encode (parkstream/domain")),
    ("fold: rest of fold_batch, outputs_for", lambda f: "(parkstream/worker/fold.py" in f),
    ("table: bay state codec", lambda f: "SpaceCodec" in f),
    ("table: Table writes (faust/tables)", lambda f: "(faust/tables/" in f),
    ("table: changelog sends (producer buffer)", lambda f: f.startswith("ProducerBuffer.")),
    ("outputs: Faust topic.send", lambda f: "(faust/topics.py" in f or "(faust/channels" in f),
    ("aiokafka producer incl. socket writes", lambda f: "(aiokafka/producer/" in f),
    ("aiokafka consumer (Faust's thread)", lambda f: "(aiokafka/consumer/" in f),
    ("aiokafka: records, protocol, conn", lambda f: "(aiokafka/" in f),
    ("metrics (prometheus_client)", lambda f: "(prometheus_client/" in f),
    ("worker: own code (app.py)", lambda f: "(parkstream/worker/" in f),
    ("naive agent: own loop", lambda f: f.startswith("create_naive.<locals>.fold ")),
    ("Faust: streams, conductor, events", lambda f: "(faust/" in f),
    ("mode: services, threads", lambda f: "(mode/" in f),
]
#: Leaf frames of a thread waiting for I/O: py-spy samples them as active; they are not CPU.
WAITING = ("EpollSelector.select ", "select (selectors.py")


def profile_runs(
    path: Path,
    bootstrap: str,
    tmp: Path,
    bench_id: str,
    workload: Workload,
    budget_s: float,
    variants: list[Variant],
) -> None:
    """The worker and the naive agent once more each under py-spy; stacks in ``path`` and
    ``path``-naive."""
    _, naive, worker = variants
    chosen = [("worker", worker), ("naive", naive)]
    profiles: dict[str, tuple[Run, Profile | None]] = {}
    for label, variant in chosen:
        suffix = "" if label == "worker" else f"-{label}"
        out = path.with_name(f"{path.stem}{suffix}{path.suffix}")
        settings = bench_settings(bootstrap, f"bench-{bench_id}-profiled-{variant.slug}", tmp)
        result = asyncio.run(_profiled(variant, settings, workload, budget_s, out))
        print(f"profiled {result.describe()} (slowed by sampling; stacks in {out})")
        profiles[label] = (result, busy_profile(out) if out.exists() else None)
    print(format_profiles(profiles))


def busy_profile(path: Path) -> Profile:
    """The samples of ``path`` without those waiting in the event loop's selector."""
    profile = Profile.load(path)
    profile.stacks = [(f, n) for f, n in profile.stacks if not f[-1].startswith(WAITING)]
    return profile


@contextlib.contextmanager
def py_spy_gil(output: Path, rate: int = 250) -> Iterator[bool]:
    """:func:`bench.common.py_spy` with ``--gil``: only samples of the thread holding the GIL,
    so neither waiting in the selector nor waiting for the GIL (Faust's consumer thread takes
    it in turns with the event loop) is counted as work of the code it happens in."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.access(binary, os.X_OK):
        with py_spy(output, rate) as running:  # prints why there is no profile
            yield running
        return
    argv = [binary, "record", "--pid", str(os.getpid()), "--rate", str(rate), "--gil"]
    argv += ["--format", "raw", "--output", str(output)]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # attaching takes a moment
    try:
        yield spy.poll() is None
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            spy.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.communicate()


async def _profiled(
    variant: Variant, settings: Settings, workload: Workload, budget_s: float, out: Path
) -> Run:
    await produce_inputs(settings, workload)
    with py_spy_gil(out) as running:
        result = await run_variant(variant, settings, workload, budget_s)
    result.note += "" if running else " (py-spy did not run)"
    return result


def format_profiles(profiles: dict[str, tuple[Run, Profile | None]]) -> str:
    """Per stage: share of samples and us of CPU per input (share x measured CPU/input).

    Samples (py-spy --gil: the thread holding the GIL) cover the process from before the app
    started to after it stopped (start-up and group join are mostly waiting)."""
    loaded = {k: (r, p) for k, (r, p) in profiles.items() if p is not None}
    if not loaded:
        return "no profile"
    shares = {k: p.breakdown(STAGES) for k, (_, p) in loaded.items()}
    per_input = {k: r.cpu_us for k, (r, _) in loaded.items()}
    width = max(len(label) for label, _ in STAGES)
    head = "".join(f"  {k + ' %':>9}  {k + ' us':>9}" for k in loaded)
    lines = ["", "where the CPU goes, per input (py-spy samples):", f"{'stage':<{width}}{head}"]
    for label in [*(lb for lb, _ in STAGES), "other"]:
        if not any(shares[k][label] for k in loaded):
            continue
        cells = "".join(
            f"  {shares[k][label]:9.1%}  {shares[k][label] * per_input[k]:9.1f}" for k in loaded
        )
        lines.append(f"{label:<{width}}{cells}")
    total = "".join(f"  {1:9.1%}  {per_input[k]:9.1f}" for k in loaded)
    lines.append(f"{'total (process CPU per input)':<{width}}{total}")
    for kind, (_, prof) in loaded.items():
        lines.append(f"\n{kind}: functions with most samples of their own")
        lines.extend(f"  {share:6.1%}  {name}" for name, share in prof.top(20, self_time=True))
        lines.append(f"{kind}: functions with most samples anywhere on the stack")
        lines.extend(f"  {share:6.1%}  {name}" for name, share in prof.top(25, self_time=False))
    return "\n".join(lines)
