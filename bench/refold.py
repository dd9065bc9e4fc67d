"""``parkstream refold`` against the raw aiokafka loop, on the same input set and broker.

Both read a pre-produced ``worker-space-inputs.v1`` (the workload of ``bench/worker.py``:
bays set up with a sensor and a light, then readings, txacks, ticks, reservations) with a
consumer that has every partition assigned by hand, and fold it with
:func:`parkstream.worker.fold.fold_batch`:

- ``raw``: the loop of ``bench/worker.py``: getmany -> fold_batch -> send every output
  (space events, downlinks, registry changes) -> flush per batch;
- ``refold``: :func:`parkstream.refold.refold` as ``parkstream refold`` runs it: the end of
  each partition from its first fetch response, the time filter, space events only, into a
  new topic it creates, acknowledgements awaited one batch later.

Timed alike, from the first acknowledged batch to the last (see ``bench/worker.py``); the
goal is the refold at >= 0.5 of the raw loop. ``transport`` is the raw loop with a trivial
fold (orjson.loads and a dict update, one record out per input): what Kafka I/O in Python
costs here, the ceiling for any fold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.common import CpuSnapshot, Result
from bench.worker import (
    INPUT_TOPIC,
    RAW_BATCH,
    RAW_PRODUCER,
    UNIT,
    Clock,
    Run,
    Workload,
    bench_settings,
    build_workload,
    kafka_broker,
    measure,
    produce_inputs,
    quiet_logs,
    raw_run,
)
from parkstream.config import Settings
from parkstream.kafka_profile import aiokafka_consumer_kwargs, aiokafka_producer_kwargs
from parkstream.refold import RefoldOptions, RefoldProgress, output_topic, refold

NAME = "refold"
GOAL = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inputs", type=int, default=50_000, help="traffic inputs after the set-up (50000)"
    )
    parser.add_argument("--bays", type=int, default=1000, help="bays (1000; 3 set-up inputs each)")
    parser.add_argument("--rounds", type=int, default=2, help="raw+refold pairs (2)")
    parser.add_argument(
        "--budget", type=float, default=120.0, metavar="S", help="give up a run after S s (120)"
    )


async def refold_run(settings: Settings, workload: Workload, budget_s: float) -> Run:
    latest: list[RefoldProgress] = []
    target = output_topic(settings, "space-events.v2-refold")
    clock = Clock(cpu=CpuSnapshot.now())

    def progress(p: RefoldProgress) -> None:
        clock.first = p.started  # the refold's loop started: just before its first fetch
        latest[:] = [p]

    task = asyncio.create_task(refold(settings, RefoldOptions(to_topic=target), progress))

    def done() -> int:
        if task.done() and task.exception() is not None:
            task.result()
        return latest[-1].inputs if latest else 0

    run = Run("refold", len(workload.records))
    try:
        await measure(run, clock, done, budget_s)
        report = await asyncio.wait_for(task, 30)
        run.note = (
            f"{report.events} space events ({run.done and report.events / run.done:.2f} per "
            f"input), {report.events_per_s:,.0f} events/s over the whole command"
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return run


async def transport_loop(settings: Settings, clock: Clock, done: list[int]) -> None:
    """consume -> orjson.loads + a dict update -> one record out per input -> flush per batch."""
    source_topic = settings.topic(INPUT_TOPIC)
    target = settings.topic("space-events.v1")
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
        last: dict[str, Any] = {}
        while True:
            batch = await consumer.getmany(timeout_ms=100, max_records=RAW_BATCH)
            if batch:
                clock.mark()
            n = 0
            for part in batch.values():
                for r in part:
                    doc = orjson.loads(r.value)
                    last[doc["space_id"]] = doc["event_id"]
                    await producer.send(target, r.value, key=r.key)
                    n += 1
            if n:
                await producer.flush()
                done[0] += n
    finally:
        await producer.stop()
        await consumer.stop()


async def transport_run(settings: Settings, workload: Workload, budget_s: float) -> Run:
    done, clock = [0], Clock()
    run = Run("transport", len(workload.records))
    task = asyncio.create_task(transport_loop(settings, clock, done))
    try:
        await measure(run, clock, lambda: done[0], budget_s)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return run


VARIANTS: dict[str, Callable[[Settings, Workload, float], Awaitable[Run]]] = {
    "raw": raw_run,
    "refold": refold_run,
    "transport": transport_run,
}


async def _one(kind: str, settings: Settings, workload: Workload, budget_s: float) -> Run:
    await produce_inputs(settings, workload)
    return await VARIANTS[kind](settings, workload, budget_s)


def run(args: argparse.Namespace) -> list[Result]:
    quiet_logs()
    started = time.monotonic()
    workload = build_workload(args.inputs, args.bays)
    print(f"workload: {workload.describe()} (planned in {time.monotonic() - started:.1f} s)")
    bench_id = secrets.token_hex(3)
    runs: list[Run] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-refold-") as tmp,
        kafka_broker() as (bootstrap, what),
    ):
        print(f"broker: {what}; profile: test (producers of both: linger 5 ms, 1 MiB batches)")
        for round_no in range(args.rounds):
            for kind in ("raw", "refold") + (("transport",) if round_no == 0 else ()):
                settings = bench_settings(
                    bootstrap, f"bench-{bench_id}-{kind}{round_no}", Path(tmp)
                )
                result = asyncio.run(_one(kind, settings, workload, args.budget))
                runs.append(result)
                print(result.describe())

    def best(kind: str) -> Run | None:
        done = [r for r in runs if r.kind == kind and r.complete]
        return max(done, key=lambda r: r.rate) if done else None

    raw, folded, transport = best("raw"), best("refold"), best("transport")
    if raw is None or folded is None:
        return [Result(NAME, 0.0, UNIT, None, GOAL, "runs did not complete")]
    ceiling = f"; transport ceiling {transport.rate:,.0f} {UNIT}" if transport else ""
    note = (
        f"best of {args.rounds} runs each, {raw.total} fold inputs; CPU per input: refold "
        f"{folded.cpu_us:.0f} us, raw {raw.cpu_us:.0f} us{ceiling}"
    )
    return [Result("refold vs raw aiokafka", folded.rate, UNIT, raw.rate, GOAL, note)]
