"""Fold the worker's inputs again, outside Faust, into a new space-events topic.

``parkstream refold`` is the bulk path for reprocessing after a decider change: it reads
``worker-space-inputs.v1`` (every input of the space fold, in its final per-bay order:
commands, ticks and routed device events) with a plain aiokafka consumer (no consumer
group, every partition assigned by hand), folds it with the same pure
:func:`parkstream.worker.fold.fold_batch` the worker uses, and produces the resulting
space events to a new, versioned topic (for example ``parkstream.space-events.v2-refold``)
that a projector can be rebuilt from. It writes nothing else: no downlinks (a refold never
drives the lights), no registry changes, no dead letters (inputs the fold rejects are
counted; the worker dead-lettered them when it first saw them).

Range and end
    It reads each partition from its beginning, or from ``from_time`` (Kafka record
    timestamps: when the worker routed or forwarded the input, not the inputs'
    ``recorded_at``), and stops at the end of the input *as it was when it started*: the
    high-watermark that the first fetch response of each partition carries
    (``consumer.highwater(tp)``), or an earlier offset given in ``until_offsets``. Records
    timestamped before ``from_time`` or at/after ``until_time`` are skipped. ``end_offsets()``
    is never used: the Kafka-protocol test broker answers it wrongly when producers send
    multi-record batches (see architecture.md). ``offsets_for_times`` only positions the
    consumer; the timestamp filter decides, so a broker that answers too early (the test
    broker answers offset 0 whatever the time) only costs reading more.

State
    Bays start from :func:`parkstream.domain.space.initial_state` and are kept in a dict.
    A refold of the whole topic therefore yields exactly the worker's space events (same
    event ids: ids derive from the inputs and their Kafka source, which a refold reads
    back unchanged). A refold that starts later (``from_time``) folds as if every bay
    were new at that time: use it only where that is what is wanted. The inputs topic
    keeps 30 days (streams/topics.toml): older inputs are gone.

Idempotence
    Running a refold twice into the same topic produces the same records again, with the
    same event ids. Kafka keeps both copies; consumers of space events drop repeats by
    ``event_id`` (every parkstream consumer is idempotent, see architecture.md), so the
    second run changes no read model.

Records are sent without awaiting each one and acknowledged per batch (the acks of one
batch are awaited after the next batch was folded and sent, so folding and producing
overlap); the producer batches records (``linger_ms``, ``max_batch_size``) in every
profile: this producer writes no Faust changelog, which is what the test profile's
one-record batches protect.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from parkstream.catalogue import TopicSpec, for_profile, topic_spec
from parkstream.config import Settings
from parkstream.domain.envelope import Source
from parkstream.domain.space import Space
from parkstream.kafka_profile import (
    aiokafka_client_kwargs,
    aiokafka_consumer_kwargs,
    aiokafka_producer_kwargs,
)
from parkstream.worker.fold import fold_batch

INPUT_TOPIC = "worker-space-inputs.v1"
OUTPUT_SPEC = "space-events.v1"  # the catalogue entry whose settings a new target gets
TOPIC_ALREADY_EXISTS = 36
FETCH_MAX_WAIT_MS = 50  # an idle partition must not hold a fetch of the others for long
BATCH_MAX = 5000  # records per getmany (one fold_batch call, one ack wait)
PRODUCER_SETTINGS: dict[str, Any] = {"linger_ms": 5, "max_batch_size": 1024 * 1024}


class RefoldError(RuntimeError):
    """The refold cannot start (bad target, missing input topic) or a send failed."""


@dataclass(frozen=True)
class RefoldOptions:
    """What to refold, and where to."""

    to_topic: str  # full topic name
    from_time: datetime | None = None
    until_time: datetime | None = None
    until_offsets: Mapping[int, int] | None = None  # partition -> stop before this offset
    batch_max: int = BATCH_MAX


@dataclass
class RefoldProgress:
    """Counts so far; ``inputs`` and ``events`` count acknowledged batches only."""

    inputs: int = 0
    events: int = 0
    rejected: int = 0
    skipped: int = 0  # outside the time range
    remaining: int | None = None  # input offsets left before the ends (None: ends unknown yet)
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


@dataclass
class RefoldReport:
    input_topic: str
    output_topic: str
    created: bool
    starts: dict[int, int]
    ends: dict[int, int]
    inputs: int
    events: int
    rejected: int
    skipped: int
    bays: int
    seconds: float

    @property
    def inputs_per_s(self) -> float:
        return self.inputs / self.seconds if self.seconds > 0 else 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (
            f"refolded {self.inputs} inputs of {len(self.ends)} partitions "
            f"({self.skipped} outside the time range, {self.rejected} rejected) "
            f"into {self.events} space events for {self.bays} bays in {self.seconds:.2f} s: "
            f"{self.inputs_per_s:,.0f} inputs/s, {self.events_per_s:,.0f} events/s "
            f"-> {self.output_topic}{' (created)' if self.created else ''}"
        )


def output_topic(settings: Settings, name: str, prefix: str | None = None) -> str:
    """The full name of the target: ``name`` under ``prefix`` (default: the settings' prefix);
    a ``name`` that already starts with that prefix is taken as it is."""
    prefix = settings.topic_prefix if prefix is None else prefix
    if not name or name.startswith(".") or name.endswith("."):
        raise RefoldError(f"invalid topic name {name!r}")
    return name if name.startswith(f"{prefix}.") else f"{prefix}.{name}"


def check_target(settings: Settings, target: str) -> None:
    """A refold writes a new topic: never the worker's live topics or its own input."""
    from parkstream.catalogue import load_catalogue

    taken = {spec.full_name(settings) for spec in load_catalogue()}
    if target in taken:
        raise RefoldError(
            f"{target} is a topic of the catalogue; a refold writes a new versioned topic "
            f"(e.g. {settings.topic('space-events.v2-refold')})"
        )


async def ensure_topic(settings: Settings, name: str, spec: TopicSpec | None = None) -> bool:
    """Create ``name`` with the settings of ``spec`` (default: the catalogue's space events,
    adapted to the profile) unless it exists; True when it was created here."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    spec = for_profile(spec or topic_spec(OUTPUT_SPEC), settings)
    admin = AIOKafkaAdminClient(**aiokafka_client_kwargs(settings))
    await admin.start()
    try:
        if name in set(await admin.list_topics()):
            return False
        response = await admin.create_topics(
            [
                NewTopic(
                    name=name,
                    num_partitions=spec.partitions,
                    replication_factor=spec.replication_factor,
                    topic_configs=dict(spec.config),
                )
            ]
        )
        for error in response.topic_errors:
            code = int(error[1])
            if code == TOPIC_ALREADY_EXISTS:
                return False  # created meanwhile by someone else
            if code != 0:
                message = error[2] if len(error) > 2 else ""
                raise RefoldError(f"cannot create {name}: {message} (error {code})")
        return True
    finally:
        await admin.close()


def _millis(at: datetime | None) -> int | None:
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp() * 1000)


async def refold(
    settings: Settings,
    options: RefoldOptions,
    progress: Callable[[RefoldProgress], None] | None = None,
) -> RefoldReport:
    """Refold the inputs topic into ``options.to_topic``; ``progress`` is called after each
    acknowledged batch (keep it cheap)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    source_topic = settings.topic(INPUT_TOPIC)
    target = options.to_topic
    check_target(settings, target)
    from_ms, until_ms = _millis(options.from_time), _millis(options.until_time)
    if from_ms is not None and until_ms is not None and until_ms <= from_ms:
        raise RefoldError("the end time must be later than the start time")

    consumer = AIOKafkaConsumer(
        **aiokafka_consumer_kwargs(
            settings,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
    )
    await consumer.start()
    try:
        tps = [TopicPartition(source_topic, n) for n in await _partitions(consumer, source_topic)]
        created = await ensure_topic(settings, target)
        producer = AIOKafkaProducer(**aiokafka_producer_kwargs(settings, **PRODUCER_SETTINGS))
        await producer.start()
        try:
            consumer.assign(tps)
            empty = await _seek(consumer, tps, from_ms)
            run = _Run(
                consumer=consumer,
                producer=producer,
                target=target,
                options=options,
                from_ms=from_ms,
                until_ms=until_ms,
                progress=progress,
            )
            for tp in tps:
                run.starts[tp.partition] = await consumer.position(tp)
            await run.run(tps, empty)
        finally:
            await producer.stop()
    finally:
        await consumer.stop()
    counts = run.counts
    return RefoldReport(
        input_topic=source_topic,
        output_topic=target,
        created=created,
        starts=dict(sorted(run.starts.items())),
        ends=dict(sorted(run.ends.items())),
        inputs=counts.inputs,
        events=counts.events,
        rejected=counts.rejected,
        skipped=counts.skipped,
        bays=len(run.states),
        seconds=counts.seconds,
    )


async def _partitions(consumer: Any, topic: str) -> list[int]:
    await consumer.topics()  # a metadata request for every topic
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise RefoldError(f"no topic {topic}: nothing to refold")
    return sorted(partitions)


async def _seek(consumer: Any, tps: list[Any], from_ms: int | None) -> set[Any]:
    """Position every partition; returns those with no record at or after ``from_ms``."""
    await consumer.seek_to_beginning(*tps)
    if from_ms is None:
        return set()
    try:
        found = await consumer.offsets_for_times(dict.fromkeys(tps, from_ms))
    except Exception:  # a broker without timestamp lookups: read from the start, filter
        return set()
    empty = set()
    for tp in tps:
        if tp not in found:
            continue
        hit = found[tp]
        if hit is None:
            empty.add(tp)
        else:
            consumer.seek(tp, hit.offset)
    return empty


@dataclass
class _Run:
    consumer: Any
    producer: Any
    target: str
    options: RefoldOptions
    from_ms: int | None
    until_ms: int | None
    progress: Callable[[RefoldProgress], None] | None
    states: dict[str, Space] = field(default_factory=dict)
    starts: dict[int, int] = field(default_factory=dict)
    ends: dict[int, int] = field(default_factory=dict)
    counts: RefoldProgress = field(default_factory=RefoldProgress)

    async def run(self, tps: list[Any], empty: set[Any]) -> None:
        consumer = self.consumer
        limits = dict(self.options.until_offsets or {})
        positions = {tp: self.starts[tp.partition] for tp in tps}
        for tp in empty:  # nothing at or after the start time
            self.ends[tp.partition] = positions[tp]
        pending = set(tps)
        self.counts = RefoldProgress()
        unacked: _Sent | None = None
        while pending:
            batch = await consumer.getmany(timeout_ms=200, max_records=self.options.batch_max)
            for tp in pending:
                if tp.partition not in self.ends:
                    highwater = consumer.highwater(tp)
                    if highwater is not None:  # set by the first fetch response of tp
                        limit = limits.get(tp.partition)
                        end = highwater if limit is None else min(limit, highwater)
                        self.ends[tp.partition] = end
            records: list[tuple[bytes, Source]] = []
            for tp, part in batch.items():
                end = self.ends.get(tp.partition)
                for r in part:
                    if end is not None and r.offset >= end:
                        break
                    ts = r.timestamp
                    if (self.from_ms is not None and ts < self.from_ms) or (
                        self.until_ms is not None and ts >= self.until_ms
                    ):
                        self.counts.skipped += 1
                        continue
                    source = Source(
                        kind="kafka", topic=r.topic, partition=r.partition, offset=r.offset
                    )
                    records.append((r.value or b"", source))
            for tp in list(pending):
                end = self.ends.get(tp.partition)
                if end is None:
                    continue
                positions[tp] = await consumer.position(tp)
                if positions[tp] >= end:
                    pending.discard(tp)
                    consumer.pause(tp)  # nothing after the end is fetched
            sent = await self._fold_and_send(records) if records else None
            if unacked is not None:  # the previous batch's acks, after this batch was sent
                await self._acknowledged(unacked)
            unacked = sent
            if self.progress is not None and records:
                self._report(tps, positions)
        if unacked is not None:
            await self._acknowledged(unacked)
        if self.progress is not None:
            self._report(tps, positions)

    def _report(self, tps: list[Any], positions: dict[Any, int]) -> None:
        assert self.progress is not None
        known = len(self.ends) == len(tps)
        self.counts.remaining = (
            sum(max(0, self.ends[tp.partition] - positions[tp]) for tp in tps) if known else None
        )
        self.progress(self.counts)

    async def _fold_and_send(self, records: list[tuple[bytes, Source]]) -> _Sent:
        result = fold_batch(records, self.states.get)
        self.states.update(result.states)
        self.counts.rejected += result.rejected
        send = self.producer.send
        target = self.target
        acks = []
        for out in result.outputs:
            if out.topic == OUTPUT_SPEC:
                acks.append(await send(target, out.value, key=out.key, headers=out.headers))
        return _Sent(acks, len(records) - result.rejected)

    async def _acknowledged(self, sent: _Sent) -> None:
        for ack in sent.acks:  # mostly done already: awaiting a done future does not suspend
            try:
                await ack
            except Exception as exc:
                raise RefoldError(f"a space event could not be written: {exc!r}") from exc
        self.counts.inputs += sent.inputs
        self.counts.events += len(sent.acks)


@dataclass(frozen=True)
class _Sent:
    """A batch's records in the producer, and the inputs they came from."""

    acks: list[asyncio.Future[Any]]
    inputs: int
