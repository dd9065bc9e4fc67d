"""The Faust app of ``parkstream worker``, built by :func:`create_worker` from settings.

Three stages, each a thin shell around pure code:

1. ``route`` (device-events + worker-registry, keyed by device): keeps the device
   registry table and forwards each device event to its bay, or reports an orphan;
2. ``forward`` (space-commands, keyed by bay): forwards commands, ticks included;
3. ``fold`` (worker-space-inputs, keyed by bay): folds every input with the decider
   into the ``spaces`` table and emits space events, downlinks and registry changes.

Routing and commands meet in one internal topic so every bay has exactly one input
order: after a crash, an input is decided again on the same state, and gives the same
events. Each batch's outputs are flushed to Kafka *before* its table writes, so a
state can never hold the effect of an input whose events were lost.

Faust keeps group membership, the tables and their recovery; the per-record work around
it is batched (measured with ``python -m bench worker``):

- every record the worker emits goes through :class:`OutputProducer`, a plain aiokafka
  producer that batches (1 MiB, no linger: a batch's records are all added before it
  is flushed, so lingering would only delay them) and is flushed before ``send`` returns:
  Faust's ``topic.send`` costs about 100 us per record in its own machinery, and in the
  dev/test profile Faust's producer sends one record per batch (a workaround for the
  test broker that only the changelogs need);
- the fold writes bay states into the table's store and sends their changelog records
  itself (:meth:`Worker.write_states`): the topic, partition, key and value that
  ``Table.__setitem__`` sends, without Faust's producer buffer (one task publishing one
  message at a time; the stream stops consuming while over 100 are pending);
- every stage's records reach it (:meth:`Worker.route`, :meth:`Worker.forward`,
  :meth:`Worker.fold`) as the batches Kafka returns (up to 5,000 per fetch), straight
  from the consumer (:class:`BatchingConsumer`), not one by one through Faust's
  conductor and a stream (about 70 us per record), and as soon as the fetch returns,
  not after a batch window (a route stage taking its stream's events every 50 ms
  added up to 50 ms to every uplink's way to its downlink).

Records on public topics carry their CloudEvents attributes as headers
(:mod:`parkstream.domain.cloudevents`); the consumer lag per partition is a gauge.

A timer emits tick commands for due deadlines, so every time-driven change is an event.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
import mode
from faust.serializers import codecs
from faust.streams import _current_event

from parkstream.catalogue import load_catalogue, topic_spec
from parkstream.config import Settings
from parkstream.domain import commands as cmd
from parkstream.domain.contract import ContractError, decode, encode
from parkstream.domain.effective import next_deadline
from parkstream.domain.envelope import Source
from parkstream.domain.ids import derive_id
from parkstream.domain.space import Space, construct
from parkstream.kafka_profile import (
    aiokafka_producer_kwargs,
    faust_consumer_fetch_max_wait_ms,
    faust_settings,
)
from parkstream.logging import get_logger
from parkstream.worker.consumer import BatchingConsumer
from parkstream.worker.fold import Output, fold_batch, rejected_input
from parkstream.worker.metrics import WorkerMetrics
from parkstream.worker.routing import (
    Assignment,
    RegistryChange,
    apply_change,
    orphan_due,
    orphan_seen,
    routed,
)

log = get_logger("parkstream.worker")

EXIT_INCONSISTENT = 70  # EX_SOFTWARE: stopped on a consumer anomaly, safe to restart
BATCH_MAX = 5000
# Batched in every profile: the test broker's ListOffsets quirk only matters for the
# changelogs (Faust's recovery), which Faust's own producer keeps writing.
OUTPUT_PRODUCER: dict[str, Any] = {"linger_ms": 0, "max_batch_size": 1024 * 1024}
TICK_INTERVAL_S = 0.5
RESYNC_INTERVAL_S = 30.0
LAG_INTERVAL_S = 5.0
FOLD_TOPIC = "worker-space-inputs.v1"
# Replicas of the topics Faust creates itself (the tables' changelogs), as the catalogue's.
WORKER_TOPIC_REPLICAS = 3


class SpaceCodec(codecs.Codec):
    """Table values: a bay's state as its pydantic JSON."""

    def _dumps(self, obj: Any) -> bytes:
        return obj.model_dump_json().encode() if isinstance(obj, Space) else bytes(obj)

    def _loads(self, s: bytes) -> Any:
        return Space.model_validate_json(s)


codecs.register("parkstream_space", SpaceCodec())


class WorkerApp(faust.App):
    """A Faust app whose consumer hands the fold topic's records over in batches."""

    batch_handlers: dict[str, Any]
    fetch_max_wait_ms: int | None = None  # the consumer's fetch wait; None: Faust's 1500 ms

    def _new_consumer(self) -> Any:
        self.transport.Consumer = BatchingConsumer  # type: ignore[misc]
        consumer = super()._new_consumer()
        assert isinstance(consumer, BatchingConsumer)
        consumer.batch_handlers = self.batch_handlers
        consumer.fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


@contextmanager
def as_current(event: Any) -> Iterator[None]:
    """Make ``event`` Faust's current event, so a table write goes to its partition."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def _source_of(m: Any) -> Source:
    """The input's origin (``Source(kind="kafka", ...)``, built without re-validating)."""
    return construct(Source, kind="kafka", topic=m.topic, partition=m.partition, offset=m.offset)


class OutputProducer(mode.Service):
    """The aiokafka producer of every record the worker emits; a dependency of the app
    (started before its agents, stopped after them)."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.names = {spec.name: settings.topic(spec.name) for spec in load_catalogue()}
        self.producer: Any = None

    async def on_start(self) -> None:
        from aiokafka import AIOKafkaProducer

        self.producer = AIOKafkaProducer(
            **aiokafka_producer_kwargs(self.settings, **OUTPUT_PRODUCER)
        )
        await self.producer.start()

    async def on_stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def send(self, outputs: Sequence[Output]) -> None:
        """Send every record without awaiting each; return when Kafka acknowledged all."""
        if not outputs:
            return
        send, names = self.producer.send, self.names
        for out in outputs:
            await send(names[out.topic], out.value, key=out.key, headers=out.headers)
        await self.producer.flush()


@dataclass
class Worker:
    settings: Settings
    app: faust.App
    metrics: WorkerMetrics
    topics: dict[str, Any]
    spaces: Any
    registry: Any
    orphans: Any
    outputs: OutputProducer
    due: dict[str, datetime] = field(default_factory=dict)
    ticked: dict[str, datetime] = field(default_factory=dict)
    next_offset: dict[tuple[str, int], int] = field(default_factory=dict)
    on_fatal: Callable[[str], None] = field(default=lambda reason: _exit_now(reason))
    _changelog_acks: list[Awaitable[Any]] = field(default_factory=list)

    async def send(self, outputs: Sequence[Output]) -> None:
        """Produce ``outputs``; returns when Kafka acknowledged every one."""
        await self.outputs.send(outputs)

    async def write_states(self, states: dict[str, Space], messages: Sequence[Any]) -> None:
        """``spaces[id] = state`` for each bay, in the partition of its last input, without
        Faust's per-message changelog machinery: the state goes into the table's store and
        its changelog record (same topic, partition, key and value bytes as Faust's) straight
        to Faust's aiokafka producer. The previous batch's records are acknowledged first;
        Faust flushes its producer before committing offsets, as for its own writes.

        Valid for the memory store: a RocksDB store would also need ``set_persisted_offset``
        per acknowledged record (what ``Table._on_changelog_sent`` does)."""
        if self._changelog_acks:
            await asyncio.gather(*self._changelog_acks)
        last: dict[str, Any] = {}
        for m in messages:
            if isinstance(m.key, bytes | str):
                last[m.key.decode() if isinstance(m.key, bytes) else m.key] = m
        table, serializers = self.spaces, self.app.serializers
        topic = table.changelog_topic.get_topic_name()
        send = self.app.producer.send
        acks = []
        for space_id, state in states.items():
            partition = last.get(space_id, messages[-1]).partition
            table.data[space_id] = state
            key = serializers.dumps_key(table.key_type, space_id, serializer=table.key_serializer)
            value = serializers.dumps_value(
                table.value_type, state, serializer=table.value_serializer
            )
            acks.append(await send(topic, key, value, partition, None, None))
            self.index(space_id, state)
        self._changelog_acks = acks

    def load(self, space_id: str) -> Space | None:
        """A bay's stored state. Written with the bay codec; recovered from the changelog
        by Faust's JSON codec as a plain dict, which is validated back into a state."""
        value = self.spaces.get(space_id)
        if value is None or isinstance(value, Space):
            return value
        if isinstance(value, bytes | str):
            return Space.model_validate_json(value)
        return Space.model_validate(value)

    def index(self, space_id: str, state: Space) -> None:
        due = next_deadline(state)
        if due is None:
            self.due.pop(space_id, None)
        else:
            self.due[space_id] = due

    # --- agents ---------------------------------------------------------------------

    def check_order(self, messages: Sequence[Any]) -> None:
        """Refuse to fold an input ahead of its partition's order.

        Faust can hand a stream an event it prefetched before a rebalance, ahead of the
        events between the committed offset and it (faust-streaming issue 221). Folding
        it would decide it on the wrong state, and acknowledging it would skip the ones
        in between. Nothing is folded then: the worker stops at once, without committing,
        and starts again from the committed offsets with the recovered states.
        """
        for m in messages:
            tp = (m.topic, m.partition)
            expected = self.next_offset.get(tp)
            if expected is not None and m.offset > expected:
                self.on_fatal(
                    f"{m.topic}[{m.partition}] delivered offset {m.offset}, expected {expected}"
                )
            # An offset below the expected one is a redelivery after a seek to the
            # committed offset: its input is already in the state and is decided as a repeat.
            self.next_offset[tp] = m.offset + 1

    async def expect_committed(self, assigned: Any) -> None:
        """After an assignment, the first input of a partition must be its committed offset."""
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.structs import TopicPartition

        from parkstream.kafka_profile import aiokafka_client_kwargs

        inputs = self.settings.topic("worker-space-inputs.v1")
        tps = [TopicPartition(tp.topic, tp.partition) for tp in assigned if tp.topic == inputs]
        if not tps:
            return
        admin = AIOKafkaAdminClient(**aiokafka_client_kwargs(self.settings))
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(self.app.conf.id, partitions=tps)
        finally:
            await admin.close()
        for tp, meta in offsets.items():
            if meta is not None and meta.offset >= 0:
                self.next_offset[(tp.topic, tp.partition)] = meta.offset

    async def fold(self, messages: Sequence[Any]) -> None:
        """Fold a batch of ``worker-space-inputs`` records (Faust messages, in partition
        order, from :class:`BatchingConsumer`)."""
        self.check_order(messages)
        started = time.perf_counter()
        result = fold_batch(((m.value, _source_of(m)) for m in messages), self.load)
        await self.send(result.outputs)  # durable before the states that imply them
        await self.write_states(result.states, messages)
        m = self.metrics
        for t, n in result.inputs_by_type.items():
            m.inputs.labels(t).inc(n)
        for t, n in result.outputs_by_type.items():
            m.outputs.labels(t).inc(n)
        if result.rejected:
            m.rejected.labels("fold").inc(result.rejected)
        m.batch_size.observe(len(messages))
        m.fold_seconds.observe((time.perf_counter() - started) / max(1, len(messages)))

    async def forward(self, messages: Sequence[Any]) -> None:
        """Forward a batch of ``space-commands`` records (Faust messages, from
        :class:`BatchingConsumer`) to the fold topic."""
        outputs: list[Output] = []
        for m in messages:
            raw: bytes = m.value or b""
            try:
                inp = decode(raw)
                if inp.type not in _COMMAND_TYPES or not inp.space_id:
                    raise ContractError(f"{inp.type} is not a space command with a space_id")
            except ContractError as exc:
                outputs.append(self._dead(raw, m, str(exc)))
                continue
            outputs.append(Output("worker-space-inputs.v1", inp.space_id.encode(), raw))
        await self.send(outputs)

    async def route(self, messages: Sequence[Any]) -> None:
        """Route a batch of ``device-events`` and ``worker-registry`` records (Faust
        messages in the order of their fetch, from :class:`BatchingConsumer`)."""
        outputs: list[Output] = []
        registry_writes: list[tuple[Any, str, Assignment | None]] = []
        pending: dict[str, Assignment | None] = {}
        orphan_writes: list[tuple[Any, str, str]] = []
        registry_topic = self.settings.topic("worker-registry.v1")
        for m in messages:
            raw: bytes = m.value or b""
            if m.topic == registry_topic:
                change = RegistryChange.from_json(raw)
                current = (
                    pending[change.dev_eui]
                    if change.dev_eui in pending
                    else self._assignment(change.dev_eui)
                )
                new = apply_change(current, change)
                pending[change.dev_eui] = new
                registry_writes.append((m, change.dev_eui, new))
                continue
            try:
                device_event = decode(raw)
                if device_event.dev_eui is None:
                    raise ContractError(f"{device_event.type} has no dev_eui")
            except ContractError as exc:
                outputs.append(self._dead(raw, m, str(exc)))
                continue
            eui = device_event.dev_eui
            assignment = pending[eui] if eui in pending else self._assignment(eui)
            if assignment is not None:
                out = routed(device_event, assignment)
                outputs.append(
                    Output("worker-space-inputs.v1", assignment.space_id.encode(), encode(out))
                )
                self.metrics.routed.labels("routed").inc()
                continue
            self.metrics.routed.labels("orphan").inc()
            last = self.orphans.get(eui)
            last_at = datetime.fromisoformat(last) if last else None
            if orphan_due(last_at, device_event.recorded_at):
                record = orphan_seen(device_event, _source_of(m))
                outputs.append(Output.of("space-events.v1", eui.encode(), record))
                orphan_writes.append((m, eui, device_event.recorded_at.isoformat()))
        await self.send(outputs)  # acknowledged before the table writes
        for m, eui, assignment in registry_writes:
            with as_current(self._event(m)):
                if assignment is None:
                    self.registry.pop(eui, None)
                else:
                    self.registry[eui] = assignment.to_json().decode()
        for m, eui, at in orphan_writes:
            with as_current(self._event(m)):
                self.orphans[eui] = at

    def _assignment(self, eui: str) -> Assignment | None:
        raw = self.registry.get(eui)
        return Assignment.from_json(raw.encode() if isinstance(raw, str) else raw) if raw else None

    def _dead(self, raw: bytes, message: Any, detail: str) -> Output:
        self.metrics.rejected.labels("route").inc()
        return rejected_input(raw, _source_of(message), detail, datetime.now(UTC))

    def _event(self, message: Any) -> faust.Event:
        """A Faust event of ``message``: a table write goes to its partition."""
        return faust.Event(self.app, message.key, message.value, message.headers, message)

    # --- timers ---------------------------------------------------------------------

    async def emit_ticks(self, now: datetime | None = None) -> int:
        """Send a tick for every bay whose next deadline has come (once per deadline)."""
        now = now or datetime.now(UTC)
        outputs = []
        for space_id, due in list(self.due.items()):
            if due > now or self.ticked.get(space_id) == due:
                continue
            tick = cmd.Tick(
                event_id=derive_id("tick", space_id, due.isoformat()),
                space_id=space_id,
                occurred_at=due,
                recorded_at=now,
                source=Source(kind="timer"),
                data=cmd.TickData(due_at=due),
            )
            outputs.append(Output("space-commands.v1", space_id.encode(), encode(tick)))
            self.ticked[space_id] = due
        await self.send(outputs)
        self.metrics.ticks.inc(len(outputs))
        return len(outputs)

    def report_lag(self) -> None:
        """The consumer lag per assigned partition (see :meth:`BatchingConsumer.lag`)."""
        consumer = self.app.consumer
        if not isinstance(consumer, BatchingConsumer):
            return
        gauge = self.metrics.lag
        gauge.clear()  # partitions assigned elsewhere since are not reported
        for tp, lag in consumer.lag().items():
            gauge.labels(tp.topic, str(tp.partition)).set(lag)

    def resync(self) -> None:
        """Rebuild the deadline index from the local table (after start or a rebalance)."""
        count = 0
        for space_id in list(self.spaces.keys()):
            state = self.load(space_id)
            if state is not None:
                self.index(space_id, state)
                count += 1
        self.metrics.spaces.set(count)
        self.metrics.devices.set(len(self.registry))


def _exit_now(reason: str) -> None:
    """Stop the process without committing offsets; a supervisor starts it again."""
    log.error("worker stopping without commit", reason=reason)
    logging.shutdown()
    os._exit(EXIT_INCONSISTENT)


_COMMAND_TYPES = frozenset(c.TYPE for c in cmd.COMMAND_TYPES)


def create_worker(
    settings: Settings,
    *,
    datadir: Path | None = None,
    metrics: WorkerMetrics | None = None,
    ticks: bool = True,
) -> Worker:
    """Build the worker's Faust app from settings (nothing connects until it starts)."""
    partitions = topic_spec("worker-space-inputs.v1").partitions
    app = WorkerApp(
        f"{settings.topic_prefix}-worker",
        **faust_settings(
            settings,
            store="memory://",
            datadir=str(datadir or settings.state_dir / "worker"),
            web_enabled=False,
            topic_partitions=partitions,
            topic_replication_factor=settings.replication_factor(WORKER_TOPIC_REPLICAS),
            table_standby_replicas=0,
            producer_linger=0.005,
            stream_buffer_maxsize=4 * BATCH_MAX,
            broker_max_poll_records=BATCH_MAX,
        ),
    )

    def topic(name: str, *, internal: bool = False) -> Any:
        return app.topic(
            settings.topic(name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=topic_spec(name).partitions,
            internal=internal,
        )

    topics = {
        name: topic(name)
        for name in (
            "device-events.v1",
            "space-commands.v1",
            "space-events.v1",
            "downlinks.v1",
            "deadletter.v1",
            "worker-space-inputs.v1",
            "worker-registry.v1",
        )
    }
    app.fetch_max_wait_ms = faust_consumer_fetch_max_wait_ms(settings)
    spaces = app.Table("spaces", partitions=partitions, key_type=str)
    # Faust derives a table's codec from its value type; bay states are pydantic models,
    # written and recovered with their own JSON (set before the changelog topic exists).
    spaces.value_serializer = "parkstream_space"  # type: ignore[attr-defined]
    registry = app.Table("registry", partitions=partitions, key_type=str, value_type=str)
    orphans = app.Table("orphans", partitions=partitions, key_type=str, value_type=str)
    outputs = OutputProducer(settings)
    app.add_dependency(outputs)  # started with the app, stopped after its agents
    worker = Worker(
        settings=settings,
        app=app,
        metrics=metrics or WorkerMetrics(),
        topics=topics,
        spaces=spaces,
        registry=registry,
        orphans=orphans,
        outputs=outputs,
    )

    routing_inputs = app.topic(
        settings.topic("device-events.v1"),
        settings.topic("worker-registry.v1"),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    async def route_batch(messages: Sequence[Any]) -> None:
        await worker.route(messages)

    async def forward_batch(messages: Sequence[Any]) -> None:
        await worker.forward(messages)

    async def fold_batch(messages: Sequence[Any]) -> None:
        await worker.fold(messages)

    app.batch_handlers = {
        settings.topic("device-events.v1"): route_batch,
        settings.topic("worker-registry.v1"): route_batch,
        settings.topic("space-commands.v1"): forward_batch,
        settings.topic(FOLD_TOPIC): fold_batch,
    }

    # The agents subscribe their topics, so Faust assigns their partitions with the
    # tables' and recovers those; the consumer hands their records to the batch handlers
    # above (BatchingConsumer), never to these streams.
    def never_streamed(stage: str) -> Callable[[Any], Awaitable[None]]:
        async def agent(stream: Any) -> None:
            async for event in stream.events():
                worker.on_fatal(
                    f"{stage} input {event.message.tp} reached the stream, not the batch"
                )

        return agent

    app.agent(routing_inputs, name="route")(never_streamed("route"))
    app.agent(topics["space-commands.v1"], name="forward")(never_streamed("forward"))
    app.agent(topics[FOLD_TOPIC], name="fold")(never_streamed("fold"))

    async def emit_ticks() -> None:
        await worker.emit_ticks()

    async def resync() -> None:
        worker.resync()

    async def on_revoked(sender: Any, *args: Any, **_: Any) -> None:
        worker.next_offset.clear()  # a new assignment starts from the committed offsets

    async def on_assigned(sender: Any, assigned: Any = (), **_: Any) -> None:
        await worker.expect_committed(assigned)

    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]

    if ticks:
        app.timer(interval=TICK_INTERVAL_S, name="ticks")(emit_ticks)
    app.timer(interval=RESYNC_INTERVAL_S, name="resync")(resync)

    async def report_lag() -> None:
        worker.report_lag()

    app.timer(interval=LAG_INTERVAL_S, name="lag")(report_lag)
    app.task(resync)
    return worker
