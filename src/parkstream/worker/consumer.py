"""Faust's aiokafka consumer, handing the records of chosen topics to a handler in batches.

Faust delivers every record on its own: its fetch loop awaits
``wait_first(callback(message), suspend_flow.wait())`` per record (two tasks and an
``asyncio.wait``), then the conductor and the stream pass it on one by one -- about
70 us per record, more than folding it (measured with ``python -m bench worker
--profile``). :class:`BatchingConsumer` keeps everything else of Faust's consumer (group
membership, the assignment shared with the tables, recovery pausing the partitions,
flow control and generation checks in ``getmany``, read offsets, gaps, acks and commits)
and changes one thing: the records of ``batch_handlers``' topics of one fetch go to
their handler as one list (in the order of the fetch, topics with the same handler
together), tracked as in flight until it returns and then acknowledged, so a rebalance
waits for the batch (``wait_empty``) and commits only what was handled. A batch is
handed over as soon as its fetch returns: no window to wait for.

Records of other topics are delivered exactly as Faust does.

Faust creates its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no setting to
change it; :class:`FetchWaitConsumerThread` replaces it with ``fetch_max_wait_ms`` of
the consumer when that is set (the dev/test profile: the test broker answers a fetch only
when its wait is over, see :mod:`parkstream.kafka_profile`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP, Message

BatchHandler = Callable[[Sequence[Message]], Awaitable[None]]


class FetchWaitConsumerThread(AIOKafkaConsumerThread):
    """Faust's consumer thread, its aiokafka consumer waiting at most the consumer's
    ``fetch_max_wait_ms`` for a fetch (when not None) instead of Faust's 1500 ms."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait = getattr(self.consumer, "fetch_max_wait_ms", None)
        if wait is not None:
            # Read by AIOKafkaConsumer.start() when it creates its fetcher (aiokafka 0.14).
            consumer._fetch_max_wait_ms = wait
        return consumer


class BatchingConsumer(AIOKafkaConsumer):
    """See the module docstring. ``batch_handlers``: topic name -> handler;
    ``fetch_max_wait_ms``: the fetch wait, or None for Faust's."""

    batch_handlers: dict[str, BatchHandler]
    fetch_max_wait_ms: int | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_handlers = {}
        self.fetch_max_wait_ms = None
        self.positions: dict[TP, int] = {}  # next offset to read, after a record was read

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return FetchWaitConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def lag(self) -> dict[TP, int]:
        """Records not yet read, per assigned partition: the high watermark of the last
        fetch response minus the next offset to read. Partitions without both (nothing
        fetched and read since the assignment) are left out: the high watermark comes from
        fetch responses, as ListOffsets answers of the test broker are not trusted."""
        out: dict[TP, int] = {}
        for tp in self.assignment():
            position = self.positions.get(tp)
            highwater = self.highwater(tp)
            if position is not None and highwater is not None and highwater >= 0:
                out[tp] = max(0, highwater - position)
        return out

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self.positions.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - needs Kafka
        """Faust's fetch loop (``Consumer._drain_messages`` of faust-streaming 0.15), with
        the batched topics' records collected per fetch and handed over together."""
        callback = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = self._read_offset
        positions = self.positions
        acks_enabled_for = self.app.topics.acks_enabled_for
        handlers = self.batch_handlers
        yield_every = 100
        since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                generation = self.app.consumer_generation_id
                batches: dict[BatchHandler, list[Message]] = {}
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in self.getmany(timeout=1.0):
                        offset = message.offset
                        r_offset = read_offset[tp]
                        if r_offset is not None and offset < r_offset:
                            continue  # Faust drops a record read already
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await self._add_gap(tp, r_offset + 1, offset)
                        handler = handlers.get(message.topic)
                        if handler is not None:
                            batches.setdefault(handler, []).append(message)
                        else:
                            since_yield += 1
                            if since_yield > yield_every:
                                await self.sleep(0)
                                since_yield = 0
                            if self._commit_every is not None and (
                                self._n_acked >= self._commit_every
                            ):
                                self._n_acked = 0
                                await self.commit()
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                        read_offset[tp] = offset
                        positions[tp] = offset + 1
                    for handler, messages in batches.items():
                        await self._handle_batch(handler, messages, generation)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _handle_batch(
        self, handler: BatchHandler, messages: list[Message], generation: int
    ) -> None:
        """Hand ``messages`` over unless a rebalance began since they were fetched (the new
        assignment reads them again from the committed offsets)."""
        if not self.flow_active or generation != self.app.consumer_generation_id:
            return
        unacked = self._unacked_messages
        for message in messages:
            unacked.add(message)  # a revocation waits for them
        try:
            await handler(messages)
        except BaseException:
            for message in messages:
                unacked.discard(message)
            raise
        for message in messages:
            self.ack(message)
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()
